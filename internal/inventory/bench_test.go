package inventory

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// BenchmarkIngest reads and filters a 1,000,000-row data file of each
// format from disk, as a file task does, and reports rows per second (the
// benchmark runs on one goroutine, so this is per core).
func BenchmarkIngest(b *testing.B) {
	const rowsPerFile = 1_000_000
	rows := make([]Row, rowsPerFile)
	mod := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		rows[i] = Row{Bucket: "source-bucket", Key: fmt.Sprintf("data/2026/%07d/part file+%d.json", i, i%13), VersionID: fmt.Sprintf("%032d", i),
			IsLatest: true, Size: int64(i), LastModified: mod, ETag: "0123456789abcdef0123456789abcdef", StorageClass: "STANDARD",
			EncryptionStatus: []string{"SSE-S3", "SSE-KMS", "NOT-SSE"}[i%3], BucketKeyStatus: "DISABLED", LegalHold: "OFF"}
	}
	filter := Filter{Bucket: policy.Bucket{Versions: policy.VersionsCurrent}, Now: time.Now()}
	for _, format := range formats {
		b.Run(format, func(b *testing.B) {
			rep, err := ReportWriter{Format: format, SourceBucket: "source-bucket", DestinationBucket: "inv", ConfigID: "c", RowsPerFile: rowsPerFile, Created: mod}.Write(rows)
			if err != nil {
				b.Fatal(err)
			}
			m, err := ParseManifest(rep.Manifest, rep.Checksum)
			if err != nil {
				b.Fatal(err)
			}
			cols, _ := m.Columns()
			path := filepath.Join(b.TempDir(), "data")
			if err := os.WriteFile(path, rep.DataFiles[m.Files[0].Key], 0o600); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				r, err := Open(format, f, cols)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					row, err := r.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					filter.Apply(row)
					n++
				}
				r.Close()
				f.Close()
				if n != rowsPerFile {
					b.Fatalf("read %d rows", n)
				}
			}
			b.ReportMetric(float64(b.N*rowsPerFile)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(m.Files[0].Size)/rowsPerFile, "file-bytes/row")
		})
	}
}
