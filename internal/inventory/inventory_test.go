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
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

var formats = []string{FormatCSV, FormatParquet, FormatORC}

// fixtureRows covers keys with spaces, '+', '%', unicode, versions, delete
// markers, every encryption status and the lock fields.
func fixtureRows() []Row {
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	mod := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	row := func(key, version string, latest, marker bool, enc, bk string) Row {
		return Row{Bucket: "src", Key: key, VersionID: version, IsLatest: latest, IsDeleteMarker: marker, Size: int64(len(key)),
			EncryptionStatus: enc, BucketKeyStatus: bk, LegalHold: "OFF", LastModified: mod, ETag: "0123456789abcdef0123456789abcdef", StorageClass: "STANDARD"}
	}
	rows := []Row{
		row("plain space/a b.txt", "v1", true, false, "SSE-S3", "DISABLED"),
		row("plus+sign.txt", "v2", true, false, "SSE-KMS", "ENABLED"),
		row("percent%2Fliteral", "v3", true, false, "SSE-KMS", "DISABLED"),
		row("ünïcödé/日本.txt", "v4", true, false, "NOT-SSE", "DISABLED"),
		row("customer.bin", "v5", true, false, "SSE-C", "DISABLED"),
		row("dual.bin", "v6", true, false, "DSSE-KMS", "DISABLED"),
		row("old version.txt", "v7", false, false, "SSE-S3", "DISABLED"),
		row("deleted.txt", "v8", true, true, "", ""),
	}
	locked := row("locked.txt", "v9", true, false, "SSE-S3", "DISABLED")
	locked.LockMode, locked.RetainUntil = "COMPLIANCE", until
	held := row("held.txt", "v10", true, false, "SSE-S3", "DISABLED")
	held.LegalHold = "ON"
	return append(rows, locked, held)
}

func writeAndOpen(t *testing.T, format string, rows []Row) (Reader, *Manifest) {
	t.Helper()
	rep, err := ReportWriter{Format: format, SourceBucket: "src", DestinationBucket: "inv", ConfigID: "daily", Created: time.Unix(1700000000, 0)}.Write(rows)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(rep.Manifest, rep.Checksum)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, rep.DataFiles[m.Files[0].Key], 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cols, err := m.Columns()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(format, f, cols)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, m
}

func readAll(t *testing.T, r Reader) []Row {
	t.Helper()
	var out []Row
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
}

func TestRoundTripEveryFormat(t *testing.T) {
	want := fixtureRows()
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			r, m := writeAndOpen(t, format, want)
			cols, _ := m.Columns()
			if cols[0] != "Bucket" || cols[1] != "Key" || cols[2] != "VersionId" || !strings.Contains(strings.Join(cols, ","), "EncryptionStatus") {
				t.Errorf("columns %v", cols)
			}
			got := readAll(t, r)
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range want {
				w := want[i]
				w.HasIsLatest, w.HasEncryption, w.HasBucketKey, w.HasLock = true, true, true, true
				if w.IsDeleteMarker {
					w.Size = 0
				}
				if !reflect.DeepEqual(got[i], w) {
					t.Errorf("row %d\n got %+v\nwant %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestSkipResumesAtOffset(t *testing.T) {
	rows := fixtureRows()
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			r, _ := writeAndOpen(t, format, rows)
			if err := r.Skip(7); err != nil {
				t.Fatal(err)
			}
			rest := readAll(t, r)
			if len(rest) != len(rows)-7 || rest[0].Key != rows[7].Key {
				t.Errorf("after skipping 7: %d rows starting at %q", len(rest), rest[0].Key)
			}
		})
	}
}

func TestManifestChecksumAndValidation(t *testing.T) {
	rep, err := ReportWriter{Format: FormatCSV, SourceBucket: "src", DestinationBucket: "inv", ConfigID: "c", Created: time.Now()}.Write(fixtureRows())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseManifest(rep.Manifest, []byte("00000000000000000000000000000000")); !errors.Is(err, ErrChecksum) {
		t.Errorf("wrong checksum: %v", err)
	}
	if _, err := ParseManifest(rep.Manifest, append(rep.Checksum, '\n')); err != nil {
		t.Errorf("checksum with a trailing newline: %v", err)
	}
	bad := []string{
		`{"sourceBucket":"","fileFormat":"CSV","fileSchema":"Bucket, Key","files":[]}`,
		`{"sourceBucket":"s","fileFormat":"JSON","fileSchema":"Bucket, Key","files":[]}`,
		`{"sourceBucket":"s","fileFormat":"CSV","fileSchema":"Key, Bucket","files":[]}`,
		`{"sourceBucket":"s","fileFormat":"CSV","fileSchema":"Bucket, Key","files":[{"key":"k","MD5checksum":"short"}]}`,
		`not json`,
	}
	for _, doc := range bad {
		sum := md5hex([]byte(doc))
		if _, err := ParseManifest([]byte(doc), []byte(sum)); err == nil {
			t.Errorf("accepted %s", doc)
		}
	}
}

func TestCorruptFilesAreErrors(t *testing.T) {
	rows := fixtureRows()
	for _, format := range formats {
		rep, err := ReportWriter{Format: format, SourceBucket: "src", DestinationBucket: "inv", ConfigID: "c", Created: time.Now()}.Write(rows)
		if err != nil {
			t.Fatal(err)
		}
		data := rep.DataFiles[rep.FileKeysUsed[0]]
		for name, corrupt := range map[string][]byte{"truncated": data[:len(data)*2/3], "garbage": bytes.Repeat([]byte{0x5a}, 64)} {
			t.Run(format+"/"+name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "f")
				if err := os.WriteFile(path, corrupt, 0o600); err != nil {
					t.Fatal(err)
				}
				f, _ := os.Open(path)
				defer f.Close()
				cols := strings.Split(strings.ReplaceAll(csvSchema, " ", ""), ",")
				r, err := Open(format, f, cols)
				if err != nil {
					return // refused at open: fine
				}
				defer r.Close()
				for {
					_, err := r.Next()
					if errors.Is(err, io.EOF) {
						t.Fatal("a corrupt file read to its end without an error")
					}
					if err != nil {
						return
					}
				}
			})
		}
	}
}

func TestFilter(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	rows := fixtureRows()
	current := Filter{Bucket: policy.Bucket{Versions: policy.VersionsCurrent, ExcludePrefixes: []string{"percent"}}, Now: now}
	all := Filter{Bucket: policy.Bucket{Versions: policy.VersionsAll}, Now: now}
	no := false
	wantCurrent := []string{"", "", rekey.ReasonExcludedPrefix, rekey.ReasonNotEncrypted, rekey.ReasonSSEC, rekey.ReasonDSSEKMS,
		SkipNoncurrent, SkipDeleteMarker, rekey.ReasonObjectLock, rekey.ReasonObjectLock}
	for i, r := range rows {
		r.HasIsLatest, r.HasEncryption, r.HasBucketKey, r.HasLock = true, true, true, true
		obj, skip := current.Apply(r)
		if skip != wantCurrent[i] {
			t.Errorf("current, %s: skip %q, want %q", r.Key, skip, wantCurrent[i])
		}
		if skip == "" && (obj.Key != r.Key || obj.VersionID != "" || obj.Facts == nil || obj.Facts.Encryption != r.EncryptionStatus || *obj.Facts.Locked) {
			t.Errorf("current, %s: object %+v", r.Key, obj)
		}
		if r.Key == "old version.txt" {
			obj, skip := all.Apply(r)
			if skip != "" || obj.VersionID != "v7" || !reflect.DeepEqual(obj.Facts, &messages.Facts{Encryption: "SSE-S3", BucketKey: &no, Locked: &no}) {
				t.Errorf("versions=all, noncurrent row: %+v %q", obj, skip)
			}
		}
	}
	// Without encryption or lock columns, rows go through with no facts.
	obj, skip := current.Apply(Row{Bucket: "src", Key: "k", IsLatest: true})
	if skip != "" || obj.Facts != nil {
		t.Errorf("bare row: %+v %q", obj, skip)
	}
}

func TestCSVWithoutOptionalColumns(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write([]byte("\"src\",\"a+b%2Fc\"\n\"src\",\"d\"\n"))
	gz.Close()
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, buf.Bytes(), 0o600)
	f, _ := os.Open(path)
	defer f.Close()
	r, err := Open(FormatCSV, f, []string{"Bucket", "Key"})
	if err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, r)
	if len(rows) != 2 || rows[0].Key != "a b/c" || !rows[0].IsLatest || rows[0].HasEncryption {
		t.Errorf("rows %+v", rows)
	}
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func TestParseISOTimeAgreesWithTimeParse(t *testing.T) {
	for _, s := range []string{"2026-11-23T06:40:00.000Z", "2000-02-29T23:59:59.999Z", "1999-12-31T00:00:00.001Z", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05+02:00"} {
		want, err := time.Parse(time.RFC3339, s)
		got, err2 := parseISOTime(s)
		if err != nil || err2 != nil || !got.Equal(want) {
			t.Errorf("%s: got %v %v, want %v %v", s, got, err2, want, err)
		}
	}
	for _, bad := range []string{"2026-02-30T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-01-01T24:00:00.000Z", "2026-0a-01T00:00:00.000Z"} {
		if got, err := parseISOTime(bad); err == nil {
			t.Errorf("%s parsed as %v", bad, got)
		}
	}
}

// openCSV opens hand-written CSV inventory lines (gzip applied here), so
// the reader is tested against S3's documented spelling rather than
// against our own writer.
func openCSV(t *testing.T, columns []string, lines string) []Row {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write([]byte(lines))
	gz.Close()
	path := filepath.Join(t.TempDir(), "f.csv.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := Open(FormatCSV, f, columns)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, r)
}

// storage-inventory.md: legal hold "On"/"Off", retention modes
// "Governance"/"Compliance", IsLatest "True"; real reports write
// "true"/"false" and "COMPLIANCE". An all-versions report leaves the null
// version's VersionId empty. Every spelling must decide the same.
func TestInventorySpellingsAndNullVersion(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	cols := []string{"Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "EncryptionStatus", "ObjectLockRetainUntilDate",
		"ObjectLockMode", "ObjectLockLegalHoldStatus", "BucketKeyStatus"}
	rows := openCSV(t, cols, strings.Join([]string{
		`"b","held.txt","v1","True","False","SSE-S3","","","On","Disabled"`,
		`"b","held-upper.txt","v2","TRUE","FALSE","sse-s3","","","ON","DISABLED"`,
		`"b","free.txt","v3","true","false","SSE-S3","","","Off","Enabled"`,
		`"b","governed.txt","v4","true","false","SSE-S3","2027-01-01T00:00:00.000Z","Governance","Off","DISABLED"`,
		`"b","governed-ms.txt","v5","true","false","SSE-S3","1798761600000","COMPLIANCE","OFF","DISABLED"`,
		`"b","data.txt","","false","false","SSE-S3","","","","DISABLED"`,
		`"b","marker.txt","v6","True","True","","","","",""`,
	}, "\n")+"\n")
	all := Filter{Bucket: policy.Bucket{Versions: policy.VersionsAll}, Now: now}
	want := []struct {
		skip, version string
		bucketKey     bool
	}{
		{rekey.ReasonObjectLock, "", false},
		{rekey.ReasonObjectLock, "", false},
		{"", "v3", true},
		{rekey.ReasonObjectLock, "", false},
		{rekey.ReasonObjectLock, "", false},
		{"", NullVersion, false},
		{SkipDeleteMarker, "", false},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		obj, skip := all.Apply(r)
		if skip != want[i].skip {
			t.Errorf("%s: skip %q, want %q", r.Key, skip, want[i].skip)
			continue
		}
		if skip != "" {
			continue
		}
		if obj.VersionID != want[i].version || obj.Facts == nil || obj.Facts.Encryption != "SSE-S3" || *obj.Facts.BucketKey != want[i].bucketKey {
			t.Errorf("%s: %+v (facts %+v), want version %q, SSE-S3, bucket key %v", r.Key, obj, obj.Facts, want[i].version, want[i].bucketKey)
		}
	}
	if !rows[0].IsLatest || rows[6].IsLatest != true || !rows[6].IsDeleteMarker {
		t.Errorf("booleans in other cases misread: %+v / %+v", rows[0], rows[6])
	}
	if got := rows[4].RetainUntil; !got.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("epoch-millisecond retain-until read as %v", got)
	}
}
