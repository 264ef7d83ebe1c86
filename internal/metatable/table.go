package metatable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"
)

// TableMetadata is what is read of an Iceberg table's metadata JSON
// (Iceberg table spec, "Table Metadata Fields").
type TableMetadata struct {
	FormatVersion     int        `json:"format-version"`
	Location          string     `json:"location"`
	CurrentSnapshotID *int64     `json:"current-snapshot-id"`
	Snapshots         []Snapshot `json:"snapshots"`
	Schemas           []struct {
		SchemaID int `json:"schema-id"`
		Fields   []struct {
			Name string `json:"name"`
		} `json:"fields"`
	} `json:"schemas"`
	CurrentSchemaID int `json:"current-schema-id"`
}

// Snapshot is one snapshot of the table.
type Snapshot struct {
	ID           int64  `json:"snapshot-id"`
	TimestampMS  int64  `json:"timestamp-ms"`
	ManifestList string `json:"manifest-list"`
}

// Time is when the snapshot was committed.
func (s Snapshot) Time() time.Time { return time.UnixMilli(s.TimestampMS).UTC() }

// requiredColumns are the columns a verification needs (user guide,
// metadata-tables-inventory-schema).
var requiredColumns = []string{"key", "sequence_number", "version_id", "is_delete_marker", "encryption_status", "is_bucket_key_enabled", "kms_key_arn"}

// ParseMetadata reads a metadata JSON and checks that its current schema
// has the columns a verification reads.
func ParseMetadata(doc []byte) (*TableMetadata, error) {
	var md TableMetadata
	if err := json.Unmarshal(doc, &md); err != nil {
		return nil, fmt.Errorf("table metadata: %w", err)
	}
	if md.FormatVersion < 1 || md.FormatVersion > 2 {
		return nil, fmt.Errorf("table metadata: format version %d is not read (1 and 2 are)", md.FormatVersion)
	}
	for _, s := range md.Schemas {
		if s.SchemaID != md.CurrentSchemaID {
			continue
		}
		have := map[string]bool{}
		for _, f := range s.Fields {
			have[f.Name] = true
		}
		for _, c := range requiredColumns {
			if !have[c] {
				return nil, fmt.Errorf("table metadata: the current schema has no column %q", c)
			}
		}
		return &md, nil
	}
	return nil, fmt.Errorf("table metadata: no schema %d", md.CurrentSchemaID)
}

// Current returns the current snapshot; ok is false for an empty table.
func (md *TableMetadata) Current() (Snapshot, bool) {
	if md.CurrentSnapshotID == nil || *md.CurrentSnapshotID == -1 {
		return Snapshot{}, false
	}
	for _, s := range md.Snapshots {
		if s.ID == *md.CurrentSnapshotID {
			return s, true
		}
	}
	return Snapshot{}, false
}

// Row is one object version in the live inventory table.
type Row struct {
	Bucket           string  `parquet:"bucket"`
	Key              string  `parquet:"key"`
	SequenceNumber   string  `parquet:"sequence_number"`
	VersionID        *string `parquet:"version_id,optional"`
	IsDeleteMarker   *bool   `parquet:"is_delete_marker,optional"`
	Size             *int64  `parquet:"size,optional"`
	LastModified     *int64  `parquet:"last_modified_date,optional,timestamp(microsecond)"`
	EncryptionStatus *string `parquet:"encryption_status,optional"`
	BucketKeyEnabled *bool   `parquet:"is_bucket_key_enabled,optional"`
	KMSKeyARN        *string `parquet:"kms_key_arn,optional"`
}

// GetObjectAPI reads the table's files (never the bucket's objects).
type GetObjectAPI interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Reader reads a snapshot's rows.
type Reader struct {
	Files GetObjectAPI
	// MaxFileBytes bounds one file read into memory (default 1 GiB).
	MaxFileBytes int64
	// FilesRead counts the table files read (GET requests).
	FilesRead int64
}

// ErrDeleteFiles says a snapshot has delete files, which are not applied.
var ErrDeleteFiles = errors.New("the snapshot has delete files (merge-on-read), which this reader does not apply")

func (r *Reader) read(ctx context.Context, loc string) ([]byte, error) {
	rest, ok := strings.CutPrefix(loc, "s3://")
	if !ok {
		rest, ok = strings.CutPrefix(loc, "s3a://")
	}
	bucket, key, found := strings.Cut(rest, "/")
	if !ok || !found || bucket == "" || key == "" {
		return nil, fmt.Errorf("table file %q is not an s3:// location", loc)
	}
	limit := r.MaxFileBytes
	if limit <= 0 {
		limit = 1 << 30
	}
	r.FilesRead++
	out, err := r.Files.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get table file %s: %w", loc, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read table file %s: %w", loc, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("table file %s is over %d bytes", loc, limit)
	}
	return data, nil
}

// DataFiles lists the snapshot's live data files (manifest list, then
// manifests; entries marked deleted are left out).
func (r *Reader) DataFiles(ctx context.Context, snap Snapshot) ([]string, error) {
	if snap.ManifestList == "" {
		return nil, errors.New("the snapshot has no manifest list")
	}
	listData, err := r.read(ctx, snap.ManifestList)
	if err != nil {
		return nil, err
	}
	manifests, _, err := readAvroFile(listData)
	if err != nil {
		return nil, fmt.Errorf("manifest list %s: %w", snap.ManifestList, err)
	}
	var files []string
	for _, m := range manifests {
		if content, _ := m["content"].(int64); content != 0 {
			return nil, ErrDeleteFiles
		}
		path, _ := m["manifest_path"].(string)
		data, err := r.read(ctx, path)
		if err != nil {
			return nil, err
		}
		entries, _, err := readAvroFile(data)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", path, err)
		}
		for _, e := range entries {
			if status, _ := e["status"].(int64); status == 2 { // DELETED
				continue
			}
			df, _ := e["data_file"].(map[string]any)
			if content, _ := df["content"].(int64); content != 0 {
				return nil, ErrDeleteFiles
			}
			if f, _ := df["file_format"].(string); !strings.EqualFold(f, "PARQUET") {
				return nil, fmt.Errorf("data file format %q is not read (Parquet is)", f)
			}
			p, _ := df["file_path"].(string)
			files = append(files, p)
		}
	}
	return files, nil
}

// Scan calls fn with every row of the snapshot's data files.
func (r *Reader) Scan(ctx context.Context, snap Snapshot, fn func(Row) error) error {
	files, err := r.DataFiles(ctx, snap)
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := r.read(ctx, f)
		if err != nil {
			return err
		}
		if err := scanParquet(data, fn); err != nil {
			return fmt.Errorf("data file %s: %w", f, err)
		}
	}
	return nil
}

func scanParquet(data []byte, fn func(Row) error) (err error) {
	defer func() {
		// parquet-go panics on some corrupt files; the file is outside input.
		if p := recover(); p != nil {
			err = fmt.Errorf("unreadable Parquet: %v", p)
		}
	}()
	pr := parquet.NewGenericReader[Row](bytes.NewReader(data))
	defer pr.Close()
	buf := make([]Row, 512)
	for {
		n, rerr := pr.Read(buf)
		for i := range n {
			if err := fn(buf[i]); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
