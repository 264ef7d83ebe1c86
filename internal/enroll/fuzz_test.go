package enroll

import (
	"testing"
)

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"detail-type":"Scheduled Event","source":"aws.events"}`))
	f.Add([]byte(`{"detail-type":"AWS API Call via CloudTrail","source":"aws.s3","detail":{"eventName":"CreateBucket","requestParameters":{"bucketName":"b1b"}}}`))
	f.Add([]byte(`{"detail-type":"AWS API Call via CloudTrail","detail":{"errorCode":"AccessDenied","requestParameters":{"bucketName":"b1b"}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEvent(data)
		if err != nil {
			return
		}
		switch ev.Kind {
		case KindBucket:
			if ev.Bucket == "" {
				t.Fatalf("a bucket event without a bucket: %q", data)
			}
		case KindSweep, KindIgnored, KindUnknown:
			if ev.Bucket != "" && ev.Kind != KindIgnored {
				t.Fatalf("%s event names bucket %q", ev.Kind, ev.Bucket)
			}
		default:
			t.Fatalf("kind %q", ev.Kind)
		}
	})
}

func TestParseEvent(t *testing.T) {
	cases := []struct{ name, json, kind, bucket string }{
		{"schedule", `{"detail-type":"Scheduled Event"}`, KindSweep, ""},
		{"create", `{"detail-type":"AWS API Call via CloudTrail","detail":{"eventName":"CreateBucket","requestParameters":{"bucketName":"new-one"}}}`, KindBucket, "new-one"},
		{"failed call", `{"detail-type":"AWS API Call via CloudTrail","detail":{"errorCode":"BucketAlreadyExists","requestParameters":{"bucketName":"x"}}}`, KindIgnored, "x"},
		{"other", `{"detail-type":"Object Created"}`, KindUnknown, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(tc.json))
			if err != nil || ev.Kind != tc.kind || ev.Bucket != tc.bucket {
				t.Errorf("%+v %v, want %s %q", ev, err, tc.kind, tc.bucket)
			}
		})
	}
	if _, err := ParseEvent([]byte(`{`)); err == nil {
		t.Error("undecodable event accepted")
	}
}
