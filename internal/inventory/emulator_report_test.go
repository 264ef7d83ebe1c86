package inventory_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// The readers against reports the emulator writes to S3's documented
// format (its own writer, not ours), in every format and both version
// modes: a retention read from ORC's epoch-millisecond bigint, Parquet's
// TIMESTAMP_MILLIS and CSV's ISO date, and a legal hold "On", all stop
// their object.
func TestReadEmulatorReports(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "locked", true)
	e.Bucket(t, "inv", false)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("retained a+b.txt"), ObjectLockMode: types.ObjectLockModeGovernance,
		ObjectLockRetainUntilDate: aws.Time(time.Now().Add(time.Hour))}, "x")
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("held.txt"), ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn}, "x")
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("free.txt")}, "x")
	get := func(key string) []byte {
		out, err := e.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("inv"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}
	for _, format := range []string{inventory.FormatCSV, inventory.FormatParquet, inventory.FormatORC} {
		for _, current := range []bool{false, true} {
			t.Run(format+map[bool]string{true: " current", false: " all versions"}[current], func(t *testing.T) {
				key, err := e.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "locked", DestinationBucket: "inv", Format: format, CurrentOnly: current})
				if err != nil {
					t.Fatal(err)
				}
				m, err := inventory.ParseManifest(get(key), get(strings.TrimSuffix(key, "manifest.json")+"manifest.checksum"))
				if err != nil {
					t.Fatal(err)
				}
				cols, err := m.Columns()
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "data")
				if err := os.WriteFile(path, get(m.Files[0].Key), 0o600); err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				r, err := inventory.Open(format, f, cols)
				if err != nil {
					t.Fatal(err)
				}
				filter := inventory.Filter{Bucket: policy.Bucket{Versions: policy.VersionsAll}, Now: time.Now()}
				got := map[string]string{}
				for {
					row, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					obj, skip := filter.Apply(row)
					got[row.Key] = skip
					if skip == "" && (obj.Facts == nil || obj.Facts.Encryption != rekey.EncS3) {
						t.Errorf("%s: facts %+v", row.Key, obj.Facts)
					}
				}
				want := map[string]string{"retained a+b.txt": rekey.ReasonObjectLock, "held.txt": rekey.ReasonObjectLock, "free.txt": ""}
				for k, w := range want {
					if s, ok := got[k]; !ok || s != w {
						t.Errorf("%s: skip %q (read: %v), want %q", k, s, ok, w)
					}
				}
			})
		}
	}
}
