package s3tables

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/parquet-go/parquet-go"
)

// inventoryRow is the live inventory table's Parquet row, with the column
// names and types of the user guide's metadata-tables-inventory-schema
// (object_tags and user_metadata, maps, are left out).
type inventoryRow struct {
	Bucket           string  `parquet:"bucket"`
	Key              string  `parquet:"key"`
	SequenceNumber   string  `parquet:"sequence_number"`
	ObjectJoinKey    *string `parquet:"object_join_key,optional"`
	VersionID        *string `parquet:"version_id,optional"`
	IsDeleteMarker   *bool   `parquet:"is_delete_marker,optional"`
	Size             *int64  `parquet:"size,optional"`
	LastModifiedDate *int64  `parquet:"last_modified_date,optional,timestamp(microsecond)"`
	ETag             *string `parquet:"e_tag,optional"`
	StorageClass     *string `parquet:"storage_class,optional"`
	IsMultipart      *bool   `parquet:"is_multipart,optional"`
	EncryptionStatus *string `parquet:"encryption_status,optional"`
	BucketKeyEnabled *bool   `parquet:"is_bucket_key_enabled,optional"`
	KMSKeyARN        *string `parquet:"kms_key_arn,optional"`
	ChecksumAlg      *string `parquet:"checksum_algorithm,optional"`
}

// icebergFields is the table schema in the Iceberg metadata, in the order
// and with the types of the Parquet columns.
var icebergFields = []struct {
	name, typ string
	required  bool
}{
	{"bucket", "string", true}, {"key", "string", true}, {"sequence_number", "string", true},
	{"object_join_key", "string", false}, {"version_id", "string", false}, {"is_delete_marker", "boolean", false},
	{"size", "long", false}, {"last_modified_date", "timestamp", false}, {"e_tag", "string", false},
	{"storage_class", "string", false}, {"is_multipart", "boolean", false}, {"encryption_status", "string", false},
	{"is_bucket_key_enabled", "boolean", false}, {"kms_key_arn", "string", false}, {"checksum_algorithm", "string", false},
}

func ptr[T any](v T) *T { return &v }

// tableRow turns a stored version into its inventory row.
func tableRow(bucket string, r row) inventoryRow {
	v := r.ObjectState
	out := inventoryRow{
		Bucket: bucket, Key: v.Key, SequenceNumber: fmt.Sprintf("%032x", r.seq),
		ObjectJoinKey: ptr(fmt.Sprintf("%016x", r.seq)), IsDeleteMarker: ptr(v.DeleteMarker),
		LastModifiedDate: ptr(v.LastModified.UnixMicro()), Size: ptr(int64(0)),
	}
	if v.VersionID != "null" {
		out.VersionID = ptr(v.VersionID)
	}
	if v.DeleteMarker {
		return out
	}
	out.Size, out.ETag, out.StorageClass = ptr(v.Size), ptr(v.ETag), ptr(v.StorageClass)
	out.IsMultipart, out.BucketKeyEnabled = ptr(v.Multipart), ptr(v.BucketKey)
	if v.Encryption != "NOT-SSE" && v.Encryption != "" {
		out.EncryptionStatus = ptr(v.Encryption)
	}
	if v.Encryption == "SSE-KMS" || v.Encryption == "DSSE-KMS" {
		out.KMSKeyARN = ptr(v.KMSKeyARN)
	}
	if v.Checksum != "" {
		out.ChecksumAlg = ptr(checksumName(v.Checksum))
	}
	return out
}

// checksumName is the column's spelling of an algorithm (CRC64-NVME, CRC32…).
func checksumName(alg string) string {
	switch alg {
	case "crc64nvme":
		return "CRC64-NVME"
	default:
		return string(bytes.ToUpper([]byte(alg)))
	}
}

// commit writes a new snapshot of the visible rows: a Parquet data file, a
// manifest, a manifest list and a metadata JSON, and drops the previous
// snapshot's files. The caller holds s.mu.
func (s *Service) commit(t *table) error {
	now := s.now().UTC()
	t.snapshotID = rand.Int64N(1<<62) + 1
	t.lastSequence++
	base := fmt.Sprintf("%s/metadata/%05d-%d", t.id, t.lastSequence, t.snapshotID)
	location := "s3://" + t.warehouse

	rows := t.sortedRows()
	var data bytes.Buffer
	w := parquet.NewGenericWriter[inventoryRow](&data)
	batch := make([]inventoryRow, 0, len(rows))
	for _, r := range rows {
		batch = append(batch, tableRow(t.source, r))
	}
	if _, err := w.Write(batch); err != nil {
		return fmt.Errorf("write the data file: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write the data file: %w", err)
	}
	dataKey := fmt.Sprintf("%s/data/%05d-%d.parquet", t.id, t.lastSequence, t.snapshotID)

	var entry avroEncoder
	entry.long(1) // ADDED
	entry.optionalLong(t.snapshotID)
	entry.optionalLong(t.lastSequence)
	entry.optionalLong(t.lastSequence)
	entry.long(0) // data
	entry.str(location + "/" + dataKey)
	entry.str("PARQUET")
	entry.long(int64(len(rows)))
	entry.long(int64(data.Len()))
	manifest := avroContainer(manifestSchema, map[string]string{"format-version": "2", "content": "data",
		"partition-spec-id": "0", "partition-spec": "[]"}, 1, entry.Bytes())
	manifestKey := base + "-m0.avro"

	var file avroEncoder
	file.str(location + "/" + manifestKey)
	file.long(int64(len(manifest)))
	file.long(0) // partition spec 0
	file.long(0) // data manifest
	file.long(t.lastSequence)
	file.long(t.lastSequence)
	file.long(t.snapshotID)
	file.long(1)
	file.long(0)
	file.long(0)
	file.long(int64(len(rows)))
	file.long(0)
	file.long(0)
	list := avroContainer(manifestListSchema, map[string]string{"format-version": "2",
		"snapshot-id": fmt.Sprint(t.snapshotID)}, 1, file.Bytes())
	listKey := fmt.Sprintf("%s/metadata/snap-%d-1-%05d.avro", t.id, t.snapshotID, t.lastSequence)

	metadataKey := fmt.Sprintf("%s/metadata/%05d-%s.metadata.json", t.id, t.lastSequence, t.id[:8])
	meta, err := json.Marshal(t.metadata(location, location+"/"+listKey, now))
	if err != nil {
		return fmt.Errorf("write the table metadata: %w", err)
	}
	clear(t.files)
	t.files[dataKey], t.files[manifestKey], t.files[listKey], t.files[metadataKey] = data.Bytes(), manifest, list, meta
	t.metadataKey, t.committedAt, t.dirty = metadataKey, now, false
	return nil
}

// metadata is the table metadata (Iceberg table spec, "Table Metadata
// Fields", format version 2) of the current snapshot.
func (t *table) metadata(location, manifestList string, now time.Time) map[string]any {
	fields := make([]map[string]any, len(icebergFields))
	for i, f := range icebergFields {
		fields[i] = map[string]any{"id": i + 1, "name": f.name, "required": f.required, "type": f.typ}
	}
	ms := now.UnixMilli()
	return map[string]any{
		"format-version": 2, "table-uuid": t.id, "location": location,
		"last-sequence-number": t.lastSequence, "last-updated-ms": ms, "last-column-id": len(fields),
		"current-schema-id": 0, "schemas": []any{map[string]any{"type": "struct", "schema-id": 0, "fields": fields}},
		"default-spec-id": 0, "partition-specs": []any{map[string]any{"spec-id": 0, "fields": []any{}}},
		"last-partition-id": 999, "default-sort-order-id": 0,
		"sort-orders":         []any{map[string]any{"order-id": 0, "fields": []any{}}},
		"properties":          map[string]string{"write.format.default": "parquet"},
		"current-snapshot-id": t.snapshotID,
		"snapshots": []any{map[string]any{
			"snapshot-id": t.snapshotID, "sequence-number": t.lastSequence, "timestamp-ms": ms,
			"manifest-list": manifestList, "schema-id": 0,
			"summary": map[string]string{"operation": "overwrite"},
		}},
		"snapshot-log": []any{map[string]any{"snapshot-id": t.snapshotID, "timestamp-ms": ms}},
		"metadata-log": []any{},
	}
}
