package inventory

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParseManifest feeds arbitrary manifests (with their true checksum,
// so the decoder itself is reached): no panic, and what is accepted is
// complete.
func FuzzParseManifest(f *testing.F) {
	for _, format := range formats {
		rep, err := ReportWriter{Format: format, SourceBucket: "src", DestinationBucket: "inv", ConfigID: "c", Created: time.Unix(1, 0)}.Write(fixtureRows())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rep.Manifest)
	}
	f.Add([]byte(`{"sourceBucket":"s","fileFormat":"ORC","fileSchema":"struct<>","files":[]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		sum := md5.Sum(doc)
		m, err := ParseManifest(doc, []byte(hex.EncodeToString(sum[:])))
		if err != nil {
			return
		}
		cols, err := m.Columns()
		if err != nil || len(cols) < 2 || cols[0] != "Bucket" || cols[1] != "Key" || m.SourceBucket == "" {
			t.Fatalf("accepted an incomplete manifest: %+v %v %v", m, cols, err)
		}
	})
}

// FuzzCSVRows feeds arbitrary CSV rows (gzipped, as S3 writes them) to the
// reader: no panic, and every row it returns has a bucket and a key.
func FuzzCSVRows(f *testing.F) {
	f.Add([]byte("\"src\",\"a+b%2Fc\",\"v1\",\"true\",\"false\",\"12\",\"2026-01-01T00:00:00.000Z\",\"e\",\"STANDARD\",\"SSE-S3\",\"\",\"\",\"OFF\",\"DISABLED\"\n"))
	f.Add([]byte("\"src\",\"%zz\",,,,,,,,,,,,\n"))
	f.Add([]byte("\"src\",\"k\",\"v\",\"true\",\"false\",\"-1\",\"not a date\",\"\",\"\",\"NOT-SSE\",\"\",\"\",\"\",\"\"\n"))
	cols := []string{"Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag", "StorageClass",
		"EncryptionStatus", "ObjectLockRetainUntilDate", "ObjectLockMode", "ObjectLockLegalHoldStatus", "BucketKeyStatus"}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, csvText []byte) {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		gz.Write(csvText)
		gz.Close()
		path := filepath.Join(dir, "rows.csv.gz")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		file, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		r, err := Open(FormatCSV, file, cols)
		if err != nil {
			return
		}
		defer r.Close()
		for range 10000 {
			row, err := r.Next()
			if errors.Is(err, io.EOF) || err != nil {
				return
			}
			if row.Bucket == "" || row.Key == "" {
				t.Fatalf("row without bucket or key: %+v", row)
			}
		}
	})
}
