package s3

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/scritchley/orc"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// InventoryOptions describes one S3 Inventory report to publish.
type InventoryOptions struct {
	SourceBucket      string
	DestinationBucket string
	Prefix            string // destination prefix
	ConfigID          string // default "s3rekey"
	Format            string // CSV, Parquet or ORC
	CurrentOnly       bool   // "Current version only" instead of "Include all versions"
	RowsPerFile       int    // default 100,000
}

// inventoryRow is one object version as S3 Inventory reports it.
type inventoryRow struct {
	bucket, key, versionID   string
	isLatest, isDeleteMarker bool
	size                     int64
	lastModified             time.Time
	eTag, storageClass       string
	encryption               string
	retainUntil              time.Time
	lockMode, legalHold      string
	bucketKeyStatus          string
}

// The fields the emulator reports, in the order and spelling of
// storage-inventory-location.md's manifest examples (a subset of the
// optional fields). Current-version reports carry no VersionId, IsLatest
// or IsDeleteMarker (storage-inventory.md: those come with "Include all
// versions").
var (
	csvVersionFields = []string{"VersionId", "IsLatest", "IsDeleteMarker"}
	csvFields        = []string{"Size", "LastModifiedDate", "ETag", "StorageClass", "EncryptionStatus",
		"ObjectLockRetainUntilDate", "ObjectLockMode", "ObjectLockLegalHoldStatus", "BucketKeyStatus"}
)

// PublishInventory does what S3 Inventory does on its schedule: it lists
// the source bucket's versions with their encryption, bucket-key and lock
// state, writes the data files into the destination bucket, then
// manifest.json, manifest.checksum and the Hive symlink.txt, each an
// ordinary upload that fires the destination bucket's events. It returns
// the manifest's key.
func (s *Service) PublishInventory(opts InventoryOptions) (string, error) {
	if opts.ConfigID == "" {
		opts.ConfigID = "s3rekey"
	}
	if opts.RowsPerFile <= 0 {
		opts.RowsPerFile = 100000
	}
	ext, ok := map[string]string{"CSV": ".csv.gz", "Parquet": ".parquet", "ORC": ".orc"}[opts.Format]
	if !ok {
		return "", fmt.Errorf("inventory format %q is not CSV, Parquet or ORC", opts.Format)
	}
	rows, err := s.inventoryRows(opts.SourceBucket, opts.CurrentOnly)
	if err != nil {
		return "", err
	}
	created := time.Now().UTC()
	base := strings.TrimSuffix(opts.Prefix, "/")
	if base != "" {
		base += "/"
	}
	base += opts.SourceBucket + "/" + opts.ConfigID + "/"
	type file struct {
		Key         string `json:"key"`
		Size        int64  `json:"size"`
		MD5checksum string `json:"MD5checksum"`
	}
	var files []file
	var symlinks []string
	for start := 0; start < len(rows) || start == 0; start += opts.RowsPerFile {
		chunk := rows[start:min(start+opts.RowsPerFile, len(rows))]
		var data []byte
		switch opts.Format {
		case "CSV":
			data, err = inventoryCSV(chunk, opts.CurrentOnly)
		case "Parquet":
			data, err = inventoryParquet(chunk, opts.CurrentOnly)
		case "ORC":
			data, err = inventoryORC(chunk, opts.CurrentOnly)
		}
		if err != nil {
			return "", fmt.Errorf("inventory of %s: %w", opts.SourceBucket, err)
		}
		key := base + "data/" + core.NewUUID() + ext
		if err := s.putBytes(opts.DestinationBucket, key, data); err != nil {
			return "", err
		}
		sum := md5.Sum(data)
		files = append(files, file{Key: key, Size: int64(len(data)), MD5checksum: hex.EncodeToString(sum[:])})
		symlinks = append(symlinks, "s3://"+opts.DestinationBucket+"/"+key)
		if len(rows) == 0 {
			break
		}
	}
	manifest, err := json.MarshalIndent(map[string]any{
		"sourceBucket": opts.SourceBucket, "destinationBucket": "arn:aws:s3:::" + opts.DestinationBucket, "version": "2016-11-30",
		"creationTimestamp": strconv.FormatInt(created.UnixMilli(), 10), "fileFormat": opts.Format,
		"fileSchema": inventorySchema(opts.Format, opts.CurrentOnly), "files": files,
	}, "", "    ")
	if err != nil {
		return "", err
	}
	dir := base + created.Format("2006-01-02T15-04Z") + "/"
	sum := md5.Sum(manifest)
	hive := base + "hive/dt=" + created.Format("2006-01-02-15-04") + "/symlink.txt"
	if err := s.putBytes(opts.DestinationBucket, hive, []byte(strings.Join(symlinks, "\n")+"\n")); err != nil {
		return "", err
	}
	if err := s.putBytes(opts.DestinationBucket, dir+"manifest.json", manifest); err != nil {
		return "", err
	}
	// manifest.checksum last: its arrival says the report is complete.
	if err := s.putBytes(opts.DestinationBucket, dir+"manifest.checksum", []byte(hex.EncodeToString(sum[:]))); err != nil {
		return "", err
	}
	return dir + "manifest.json", nil
}

// inventorySchema is the manifest's fileSchema for the fields written.
func inventorySchema(format string, currentOnly bool) string {
	switch format {
	case "CSV":
		fields := []string{"Bucket", "Key"}
		if !currentOnly {
			fields = append(fields, csvVersionFields...)
		}
		return strings.Join(append(fields, csvFields...), ", ")
	case "ORC":
		versions := "version_id:string,is_latest:boolean,is_delete_marker:boolean,"
		if currentOnly {
			versions = ""
		}
		return "struct<bucket:string,key:string," + versions + "size:bigint,last_modified_date:timestamp,e_tag:string," +
			"storage_class:string,encryption_status:string,object_lock_retain_until_date:bigint,object_lock_mode:string," +
			"object_lock_legal_hold_status:string,bucket_key_status:string>"
	}
	versions := "optional binary version_id (UTF8); optional boolean is_latest; optional boolean is_delete_marker; "
	if currentOnly {
		versions = ""
	}
	return "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); " + versions +
		"optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8); " +
		"optional binary storage_class (UTF8); optional binary encryption_status (UTF8); " +
		"optional int64 object_lock_retain_until_date (TIMESTAMP_MILLIS); optional binary object_lock_mode (UTF8); " +
		"optional binary object_lock_legal_hold_status (UTF8); optional binary bucket_key_status (UTF8);}"
}

// inventoryRows lists a bucket as S3 Inventory sees it, newest version
// first within each key.
func (s *Service) inventoryRows(bucketName string, currentOnly bool) ([]inventoryRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return nil, fmt.Errorf("inventory of %s: %w", bucketName, apiErr)
	}
	var rows []inventoryRow
	for _, key := range b.keys() {
		vs := b.objects[key]
		for i := len(vs) - 1; i >= 0; i-- {
			v := vs[i]
			latest := i == len(vs)-1
			if currentOnly && (!latest || v.deleteMarker) {
				continue
			}
			r := inventoryRow{bucket: bucketName, key: key, versionID: v.versionID, isLatest: latest, isDeleteMarker: v.deleteMarker,
				lastModified: v.lastModified}
			if v.versionID == nullVersion {
				// storage-inventory.md: the null version (an object written
				// before versioning was enabled) has an empty VersionId.
				r.versionID = ""
			}
			if !v.deleteMarker {
				r.size, r.eTag, r.storageClass = v.size, strings.Trim(v.etag, `"`), v.storageClass
				r.encryption, r.bucketKeyStatus = string(v.env.kind), "DISABLED"
				if v.env.bucketKey {
					r.bucketKeyStatus = "ENABLED"
				}
				if v.lockMode != "" {
					r.lockMode, r.retainUntil = v.lockMode, v.retainUntil
				}
				if b.objectLock {
					// storage-inventory.md spells the status On and Off.
					r.legalHold = map[bool]string{true: "On", false: "Off"}[v.legalHold]
				}
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// isoMillis is S3 Inventory's CSV date, e.g. 2016-11-06T21:32:00.000Z.
func isoMillis(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// inventoryCSV writes gzip CSV as S3 does: no header, every field quoted,
// keys URL-encoded, booleans true/false (storage-inventory.md).
func inventoryCSV(rows []inventoryRow, currentOnly bool) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	var line strings.Builder
	for _, r := range rows {
		fields := []string{r.bucket, url.QueryEscape(r.key)}
		if !currentOnly {
			fields = append(fields, r.versionID, strconv.FormatBool(r.isLatest), strconv.FormatBool(r.isDeleteMarker))
		}
		size := ""
		if !r.isDeleteMarker {
			size = strconv.FormatInt(r.size, 10)
		}
		fields = append(fields, size, isoMillis(r.lastModified), r.eTag, r.storageClass, r.encryption, isoMillis(r.retainUntil),
			r.lockMode, r.legalHold, r.bucketKeyStatus)
		line.Reset()
		for i, f := range fields {
			if i > 0 {
				line.WriteByte(',')
			}
			line.WriteByte('"')
			line.WriteString(strings.ReplaceAll(f, `"`, `""`))
			line.WriteByte('"')
		}
		line.WriteByte('\n')
		if _, err := gz.Write([]byte(line.String())); err != nil {
			return nil, err
		}
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// parquetAllVersions and parquetCurrent are the Parquet schema of the
// manifest example in storage-inventory-location.md; absent values are
// nulls.
type parquetAllVersions struct {
	Bucket         string  `parquet:"bucket"`
	Key            string  `parquet:"key"`
	VersionID      *string `parquet:"version_id,optional"`
	IsLatest       *bool   `parquet:"is_latest,optional"`
	IsDeleteMarker *bool   `parquet:"is_delete_marker,optional"`
	parquetFields
}

type parquetCurrent struct {
	Bucket string `parquet:"bucket"`
	Key    string `parquet:"key"`
	parquetFields
}

type parquetFields struct {
	Size             *int64  `parquet:"size,optional"`
	LastModified     *int64  `parquet:"last_modified_date,optional,timestamp(millisecond)"`
	ETag             *string `parquet:"e_tag,optional"`
	StorageClass     *string `parquet:"storage_class,optional"`
	EncryptionStatus *string `parquet:"encryption_status,optional"`
	RetainUntil      *int64  `parquet:"object_lock_retain_until_date,optional,timestamp(millisecond)"`
	LockMode         *string `parquet:"object_lock_mode,optional"`
	LegalHold        *string `parquet:"object_lock_legal_hold_status,optional"`
	BucketKeyStatus  *string `parquet:"bucket_key_status,optional"`
}

func (r inventoryRow) parquetFields() parquetFields {
	f := parquetFields{LastModified: optMillis(r.lastModified), ETag: optString(r.eTag), StorageClass: optString(r.storageClass),
		EncryptionStatus: optString(r.encryption), RetainUntil: optMillis(r.retainUntil), LockMode: optString(r.lockMode),
		LegalHold: optString(r.legalHold), BucketKeyStatus: optString(r.bucketKeyStatus)}
	if !r.isDeleteMarker {
		f.Size = &r.size
	}
	return f
}

func inventoryParquet(rows []inventoryRow, currentOnly bool) ([]byte, error) {
	var buf bytes.Buffer
	if currentOnly {
		w := parquet.NewGenericWriter[parquetCurrent](&buf)
		out := make([]parquetCurrent, len(rows))
		for i, r := range rows {
			out[i] = parquetCurrent{Bucket: r.bucket, Key: r.key, parquetFields: r.parquetFields()}
		}
		if _, err := w.Write(out); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	w := parquet.NewGenericWriter[parquetAllVersions](&buf)
	out := make([]parquetAllVersions, len(rows))
	for i, r := range rows {
		latest, marker := r.isLatest, r.isDeleteMarker
		out[i] = parquetAllVersions{Bucket: r.bucket, Key: r.key, VersionID: optString(r.versionID), IsLatest: &latest,
			IsDeleteMarker: &marker, parquetFields: r.parquetFields()}
	}
	if _, err := w.Write(out); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// inventoryORC writes the ORC schema of the manifest, with the retain-until
// date as epoch milliseconds (bigint), as the Athena table S3 documents for
// its ORC reports reads it (storage-inventory-athena-query.md).
func inventoryORC(rows []inventoryRow, currentOnly bool) ([]byte, error) {
	schema, err := orc.ParseSchema(inventorySchema("ORC", currentOnly))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w, err := orc.NewWriter(&buf, orc.SetSchema(schema), orc.SetCompression(orc.CompressionZlib{}))
	if err != nil {
		return nil, err
	}
	orNil := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	for _, r := range rows {
		values := []any{r.bucket, r.key}
		if !currentOnly {
			values = append(values, orNil(r.versionID), r.isLatest, r.isDeleteMarker)
		}
		var size, modified, retain any
		if !r.isDeleteMarker {
			size = r.size
		}
		if !r.lastModified.IsZero() {
			modified = r.lastModified.UTC()
		}
		if !r.retainUntil.IsZero() {
			retain = r.retainUntil.UnixMilli()
		}
		values = append(values, size, modified, orNil(r.eTag), orNil(r.storageClass), orNil(r.encryption), retain,
			orNil(r.lockMode), orNil(r.legalHold), orNil(r.bucketKeyStatus))
		if err := w.Write(values...); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// putBytes stores an object as an upload without SSE headers would, and
// fires its events; S3 itself writes inventory reports this way.
func (s *Service) putBytes(bucketName, key string, body []byte) error {
	req, err := http.NewRequest(http.MethodPut, "/", nil)
	if err != nil {
		return err
	}
	s.mu.Lock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		s.mu.Unlock()
		return fmt.Errorf("inventory destination %s: %w", bucketName, apiErr)
	}
	v, _, apiErr := s.newVersion(b, key, req, body)
	if apiErr != nil {
		s.mu.Unlock()
		return fmt.Errorf("write s3://%s/%s: %w", bucketName, key, apiErr)
	}
	b.addVersion(v)
	ev := b.newEvent("ObjectCreated:Put", "PutObject", v)
	s.mu.Unlock()
	s.emit(ev)
	return nil
}
