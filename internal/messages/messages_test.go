package messages

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	samples "github.com/s3rekey/s3rekey/events"
)

func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := samples.Samples.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeSamples(t *testing.T) {
	f, tr := false, true
	cases := []struct {
		file string
		want Task
	}{
		{"eventbridge-object-created.json", Task{Version: 1, Source: SourceEvent, JobID: "5b2e8f31-9c0a-4d7e-a1f6-2c9d3e4b5a61",
			Objects: []Object{{Bucket: "customer-uploads", Key: "invoices/2026/Q4 reporté final.pdf", VersionID: "Zk8mQ2v.9xYcT3rLwP0aHn5sJdE7uB1o",
				RawKey: "invoices/2026/Q4+report%C3%A9+final.pdf"}}}},
		{"s3-notification-put.json", Task{Version: 1, Source: SourceEvent,
			Objects: []Object{{Bucket: "customer-uploads", Key: "scans/page 1 of 3.tiff", VersionID: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH"}}}},
		{"s3-test-event.json", Task{Version: 1, Source: SourceEvent}},
		{"object-task.json", Task{Version: 1, Source: SourceInventory, JobID: "inventory:customer-uploads/2026-11-01T01-00Z", Objects: []Object{
			{Bucket: "customer-uploads", Key: "invoices/2019/march.pdf", VersionID: "Zk8mQ2v.9xYcT3rLwP0aHn5sJdE7uB1o", Facts: &Facts{Encryption: "SSE-S3", BucketKey: &f, Locked: &f}},
			{Bucket: "customer-uploads", Key: "photos/team offsite.jpg", Facts: &Facts{Encryption: "SSE-KMS", BucketKey: &tr, Locked: &f}},
			{Bucket: "customer-uploads", Key: "legacy/readme.txt"},
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			got, err := Decode(sample(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string]string{
		"not JSON":             "hello",
		"array":                `[1,2]`,
		"unknown shape":        `{"foo":1}`,
		"future task version":  `{"v":2,"src":"event","objects":[{"b":"bkt","k":"k"}]}`,
		"task without objects": `{"v":1,"src":"event","objects":[]}`,
		"task unknown source":  `{"v":1,"src":"cron","objects":[{"b":"bkt","k":"k"}]}`,
		"task unknown field":   `{"v":1,"src":"event","objects":[{"b":"bkt","k":"k"}],"extra":1}`,
		"task missing key":     `{"v":1,"src":"event","objects":[{"b":"bkt"}]}`,
		"other EventBridge":    `{"detail-type":"Object Deleted","source":"aws.s3","detail":{}}`,
		"EventBridge no key":   `{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"bkt"},"object":{"key":""}}}`,
		"record not from S3":   `{"Records":[{"eventSource":"aws:sqs","eventName":"ObjectCreated:Put"}]}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(body)
			var rej *RejectedError
			if !errors.As(err, &rej) || rej.Reason == "" {
				t.Errorf("Decode(%s) = %v, want a RejectedError with a reason", body, err)
			}
		})
	}
}

// EventBridge's S3 event reference (EventBridge.md, ev-events.md) does not
// say whether detail.object.key is form-encoded, as classic notification
// keys are (notification-content-structure.md). Every reading must name
// the object: the decoded key first, the raw spelling as the fallback.
func TestEventBridgeKeyReadings(t *testing.T) {
	cases := []struct {
		name, sent, key, raw string
	}{
		{"encoded plus", "a%2Bb.txt", "a+b.txt", "a%2Bb.txt"},
		{"raw plus", "a+b.txt", "a b.txt", "a+b.txt"},
		{"encoded space", "a+b.txt", "a b.txt", "a+b.txt"},
		{"raw space", "a b.txt", "a b.txt", ""},
		{"nothing to decode", "plain/key.txt", "plain/key.txt", ""},
		{"not valid form-encoding: raw only", "100%.txt", "100%.txt", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"detail-type":"Object Created","source":"aws.s3","id":"e","detail":{"bucket":{"name":"bkt"},"object":{"key":` +
				strconv.Quote(tc.sent) + `}}}`
			task, err := Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			if o := task.Objects[0]; o.Key != tc.key || o.RawKey != tc.raw {
				t.Errorf("key %q raw %q, want %q and %q", o.Key, o.RawKey, tc.key, tc.raw)
			}
		})
	}
}

func TestTaskRoundTrip(t *testing.T) {
	tr := true
	in := Task{Source: SourceListing, JobID: "j", Attempt: 3, Objects: []Object{{Bucket: "bkt", Key: "a+b c/é", VersionID: "null", Facts: &Facts{Encryption: "SSE-KMS", BucketKey: &tr}}}}
	body, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	in.Version = TaskVersion
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip\n%+v\n%+v", in, out)
	}
	if _, err := (Task{Source: "bogus", Objects: in.Objects}).Encode(); err == nil {
		t.Error("Encode accepted an unknown source")
	}
	if !strings.Contains(body, `"v":1`) {
		t.Errorf("encoded task lacks its version: %s", body)
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"eventbridge-object-created.json", "s3-notification-put.json", "s3-test-event.json", "object-task.json"} {
		b, err := samples.Samples.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, body string) {
		task, err := Decode(body)
		if err != nil {
			var rej *RejectedError
			if !errors.As(err, &rej) {
				t.Fatalf("error %v is not a RejectedError", err)
			}
			return
		}
		for _, o := range task.Objects {
			if o.Bucket == "" || o.Key == "" {
				t.Fatalf("decoded an object without bucket or key: %+v", o)
			}
		}
		if len(task.Objects) > 0 {
			if _, err := task.Encode(); err != nil {
				t.Fatalf("decoded task does not encode: %v", err)
			}
		}
	})
}
