package jobs

import (
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/s3rekey/s3rekey/internal/rekey"
)

func TestReportsWant(t *testing.T) {
	cases := []struct {
		outcome        rekey.Outcome
		byDefault, all bool
	}{
		{rekey.Outcome{Status: rekey.Updated}, false, true},
		{rekey.Outcome{Status: rekey.Copied}, false, true},
		{rekey.Outcome{Status: rekey.Compliant}, false, true},
		{rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonSSEC}, true, true},
		{rekey.Outcome{Status: rekey.Gone}, true, true},
		{rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonAccessDenied}, true, true},
		{rekey.Outcome{Status: rekey.WouldUpdate}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.outcome.String(), func(t *testing.T) {
			if got := (&Reports{}).Wants(tc.outcome); got != tc.byDefault {
				t.Errorf("default report lists it: %v, want %v", got, tc.byDefault)
			}
			if got := (&Reports{All: true}).Wants(tc.outcome); got != tc.all {
				t.Errorf("all-objects report lists it: %v, want %v", got, tc.all)
			}
		})
	}
	if (*Reports)(nil).Wants(rekey.Outcome{Status: rekey.Failed}) {
		t.Error("no reports configured, yet an outcome is listed")
	}
}

// A part read back holds what was written, keys with commas, quotes,
// newlines and '+' included.
func TestReportPartRoundTrip(t *testing.T) {
	rows := []Row{{Bucket: "b", Key: "a,b \"c\"\nd+e.txt", VersionID: "null", Outcome: rekey.Outcome{Status: rekey.Failed, Reason: "access-denied", Detail: "x"},
		DeadLetter: "abc.d-access-denied"}, {Bucket: "b", Key: "ok", Outcome: rekey.Outcome{Status: rekey.Skipped, Reason: "sse-c"}}}
	var lines bytes.Buffer
	zw := gzip.NewWriter(&lines)
	for _, r := range rows {
		zw.Write([]byte(CSVLine(r)))
	}
	zw.Close()
	got, err := ReadPart(lines.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != rows[0] || got[1] != rows[1] {
		t.Fatalf("read back %+v, want %+v", got, rows)
	}
}

// FuzzReadPart: a report part is read back from S3, where anyone with
// write access could have changed it: any bytes give rows or an error.
func FuzzReadPart(f *testing.F) {
	var seed bytes.Buffer
	zw := gzip.NewWriter(&seed)
	zw.Write([]byte(CSVLine(Row{Bucket: "b", Key: "k", Outcome: rekey.Outcome{Status: rekey.Gone}})))
	zw.Close()
	f.Add(seed.Bytes())
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ReadPart(data)
	})
}
