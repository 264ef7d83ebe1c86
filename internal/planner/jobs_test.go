package planner

import (
	"errors"
	"reflect"
	"testing"

	samples "github.com/s3rekey/s3rekey/events"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
)

func sample(t testing.TB, name string) string {
	t.Helper()
	b, err := samples.Samples.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeJobs(t *testing.T) {
	manifest := "s3://inventory-reports/customer-uploads/daily/2026-11-01T01-00Z/manifest.json"
	cases := []struct {
		name string
		body string
		want []Job
	}{
		{"inventory job", sample(t, "inventory-job.json"), []Job{{Version: 1, Type: TypeInventory, Manifest: manifest}}},
		{"listing job", sample(t, "listing-job.json"), []Job{{Version: 1, Type: TypeListing, Bucket: "customer-uploads", Prefix: "invoices/"}}},
		{"manifest.checksum via EventBridge", sample(t, "manifest-checksum-eventbridge.json"),
			[]Job{{Version: 1, Type: TypeInventory, Manifest: manifest, JobID: jobs.InventoryID(manifest)}}},
		{"manifest.checksum via S3 notification",
			`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"inv"},"object":{"key":"a+b/manifest.checksum"}}}]}`,
			[]Job{{Version: 1, Type: TypeInventory, Manifest: "s3://inv/a b/manifest.json", JobID: jobs.InventoryID("s3://inv/a b/manifest.json")}}},
		{"other object landing", `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"inv"},"object":{"key":"x/data/f.csv.gz"}}}]}`, nil},
		{"test event", sample(t, "s3-test-event.json"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeJobs(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"x", `{"type":"backup"}`, `{"type":"inventory","manifest":"https://x/manifest.json"}`,
		`{"type":"file","file":{"bucket":"b"}}`, `{"type":"listing"}`, `{"v":9,"type":"listing","bucket":"b"}`, `{"type":"listing","bucket":"b","extra":1}`,
		`{"detail-type":"Object Deleted","source":"aws.s3","detail":{}}`} {
		_, err := DecodeJobs(bad)
		var rej *messages.RejectedError
		if !errors.As(err, &rej) {
			t.Errorf("DecodeJobs(%s) = %v, want rejected", bad, err)
		}
	}
}

func TestJobRoundTrip(t *testing.T) {
	j := Job{Type: TypeFile, JobID: jobs.InventoryID("s3://inv/m/manifest.json"), File: &FileTask{Bucket: "inv", Key: "d/f.orc", MD5: "0123456789abcdef0123456789abcdef",
		Size: 10, Format: "ORC", Columns: []string{"Bucket", "Key"}, SourceBucket: "src", Offset: 42}}
	body, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJobs(body)
	j.Version = JobVersion
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], j) {
		t.Errorf("round trip %+v %v", got, err)
	}
}

func FuzzDecodeJobs(f *testing.F) {
	for _, name := range []string{"inventory-job.json", "listing-job.json", "manifest-checksum-eventbridge.json", "s3-notification-put.json"} {
		f.Add(sample(f, name))
	}
	f.Fuzz(func(t *testing.T, body string) {
		jobs, err := DecodeJobs(body)
		if err != nil {
			var rej *messages.RejectedError
			if !errors.As(err, &rej) {
				t.Fatalf("error %v is not a RejectedError", err)
			}
			return
		}
		for _, j := range jobs {
			if _, err := j.Encode(); err != nil {
				t.Fatalf("decoded job %+v does not encode: %v", j, err)
			}
		}
	})
}
