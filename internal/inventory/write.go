package inventory

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/scritchley/orc"
)

// The fields ReportWriter writes, in S3's order and spelling for each
// format (a subset of what S3 Inventory can include).
var (
	csvSchema = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, " +
		"EncryptionStatus, ObjectLockRetainUntilDate, ObjectLockMode, ObjectLockLegalHoldStatus, BucketKeyStatus"
	orcSchema = "struct<bucket:string,key:string,version_id:string,is_latest:boolean,is_delete_marker:boolean,size:bigint," +
		"last_modified_date:timestamp,e_tag:string,storage_class:string,encryption_status:string," +
		"object_lock_retain_until_date:timestamp,object_lock_mode:string,object_lock_legal_hold_status:string,bucket_key_status:string>"
	parquetSchema = "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional binary version_id (UTF8); " +
		"optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS); " +
		"optional binary e_tag (UTF8); optional binary storage_class (UTF8); optional binary encryption_status (UTF8); " +
		"optional int64 object_lock_retain_until_date (TIMESTAMP_MILLIS); optional binary object_lock_mode (UTF8); " +
		"optional binary object_lock_legal_hold_status (UTF8); optional binary bucket_key_status (UTF8);}"
)

// Report is a written inventory: data files by key, then the manifest and
// its checksum, to be uploaded in that order (S3 writes manifest.checksum
// last, and that is what triggers the planner).
type Report struct {
	DataFiles    map[string][]byte
	ManifestKey  string
	Manifest     []byte
	ChecksumKey  string
	Checksum     []byte
	FileKeysUsed []string // data file keys in manifest order
}

// ReportWriter writes inventory reports the way S3 Inventory lays them
// out: prefix/source-bucket/config-id/data/<file> and
// prefix/source-bucket/config-id/<timestamp>/manifest.json.
type ReportWriter struct {
	Format            string // CSV, Parquet or ORC
	SourceBucket      string
	DestinationBucket string
	Prefix            string // destination prefix, may be empty
	ConfigID          string
	RowsPerFile       int // default 100000
	Created           time.Time
}

// Write builds the report for rows.
func (w ReportWriter) Write(rows []Row) (*Report, error) {
	per := w.RowsPerFile
	if per <= 0 {
		per = 100000
	}
	base := strings.TrimSuffix(w.Prefix, "/")
	if base != "" {
		base += "/"
	}
	base += w.SourceBucket + "/" + w.ConfigID + "/"
	ext := map[string]string{FormatCSV: ".csv.gz", FormatParquet: ".parquet", FormatORC: ".orc"}[w.Format]
	schema := map[string]string{FormatCSV: csvSchema, FormatParquet: parquetSchema, FormatORC: orcSchema}[w.Format]
	if ext == "" {
		return nil, fmt.Errorf("inventory format %q is not CSV, Parquet or ORC", w.Format)
	}
	rep := &Report{DataFiles: map[string][]byte{}}
	m := Manifest{SourceBucket: w.SourceBucket, DestinationBucket: "arn:aws:s3:::" + w.DestinationBucket, Version: "2016-11-30",
		CreationTimestamp: strconv.FormatInt(w.Created.UnixMilli(), 10), FileFormat: w.Format, FileSchema: schema}
	for start, n := 0, 0; start < len(rows) || n == 0; start, n = start+per, n+1 {
		chunk := rows[start:min(start+per, len(rows))]
		var data []byte
		var err error
		switch w.Format {
		case FormatCSV:
			data, err = writeCSV(chunk)
		case FormatParquet:
			data, err = writeParquet(chunk)
		case FormatORC:
			data, err = writeORC(chunk)
		}
		if err != nil {
			return nil, err
		}
		key := fmt.Sprintf("%sdata/%s-%04d%s", base, w.Created.UTC().Format("20060102T150405"), n, ext)
		sum := md5.Sum(data)
		rep.DataFiles[key] = data
		rep.FileKeysUsed = append(rep.FileKeysUsed, key)
		m.Files = append(m.Files, ManifestFile{Key: key, Size: int64(len(data)), MD5Checksum: hex.EncodeToString(sum[:])})
	}
	dir := base + w.Created.UTC().Format("2006-01-02T15-04Z") + "/"
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	sum := md5.Sum(manifest)
	rep.ManifestKey, rep.Manifest = dir+"manifest.json", manifest
	rep.ChecksumKey, rep.Checksum = dir+"manifest.checksum", []byte(hex.EncodeToString(sum[:]))
	return rep, nil
}

func isoMillis(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func writeCSV(rows []Row) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	c := csv.NewWriter(gz)
	for _, r := range rows {
		size := ""
		if !r.IsDeleteMarker {
			size = strconv.FormatInt(r.Size, 10)
		}
		rec := []string{r.Bucket, url.QueryEscape(r.Key), r.VersionID, strconv.FormatBool(r.IsLatest), strconv.FormatBool(r.IsDeleteMarker),
			size, isoMillis(r.LastModified), r.ETag, r.StorageClass, r.EncryptionStatus, isoMillis(r.RetainUntil), r.LockMode, r.LegalHold, r.BucketKeyStatus}
		if err := c.Write(rec); err != nil {
			return nil, err
		}
	}
	c.Flush()
	if err := c.Error(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func millisOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func writeParquet(rows []Row) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[parquetRow](&buf)
	out := make([]parquetRow, len(rows))
	for i, r := range rows {
		out[i] = parquetRow{Bucket: r.Bucket, Key: r.Key, VersionID: r.VersionID, IsLatest: r.IsLatest, IsDeleteMarker: r.IsDeleteMarker,
			LastModified: millisOrZero(r.LastModified), ETag: r.ETag, StorageClass: r.StorageClass, EncryptionStatus: r.EncryptionStatus,
			RetainUntil: millisOrZero(r.RetainUntil), LockMode: r.LockMode, LegalHold: r.LegalHold, BucketKeyStatus: r.BucketKeyStatus}
		if !r.IsDeleteMarker {
			out[i].Size = r.Size
		}
	}
	if _, err := w.Write(out); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeORC(rows []Row) ([]byte, error) {
	schema, err := orc.ParseSchema(orcSchema)
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
	orNilTime := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC()
	}
	for _, r := range rows {
		var size any = r.Size
		if r.IsDeleteMarker {
			size = nil
		}
		if err := w.Write(r.Bucket, r.Key, orNil(r.VersionID), r.IsLatest, r.IsDeleteMarker, size, orNilTime(r.LastModified),
			orNil(r.ETag), orNil(r.StorageClass), orNil(r.EncryptionStatus), orNilTime(r.RetainUntil), orNil(r.LockMode),
			orNil(r.LegalHold), orNil(r.BucketKeyStatus)); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
