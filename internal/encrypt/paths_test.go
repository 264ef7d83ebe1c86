package encrypt_test

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/budget"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// uploadEvent is an EventBridge Object Created event for bucket/key.
func uploadEvent(bucket, key string) string {
	return `{"version":"0","id":"ev-1","detail-type":"Object Created","source":"aws.s3","account":"111122223333","time":"2026-01-01T00:00:00Z",` +
		`"region":"us-east-1","resources":[],"detail":{"bucket":{"name":"` + bucket + `"},"object":{"key":"` + key + `"}}}`
}

// TestUploadsStayOnTheirPath: an upload's retries go back to the uploads
// queue and its failures to the uploads DLQ, a backfill task's to the work
// queue and its DLQ, and a message that does not decode goes to the DLQ of
// the queue it arrived on. Only uploads reach the rekeyer marked ahead.
func TestUploadsStayOnTheirPath(t *testing.T) {
	const work, workDLQ, uploads, uploadsDLQ = "https://sqs.test/1/work", "https://sqs.test/1/work-dlq", "https://sqs.test/1/uploads", "https://sqs.test/1/uploads-dlq"
	cfg := encrypt.Config{WorkQueueURL: work, DeadLetterQueueURL: workDLQ, UploadsQueueURL: uploads, UploadsDLQURL: uploadsDLQ}
	for _, tc := range []struct {
		name      string
		rec       events.SQSMessage
		outcome   rekey.Status
		wantQueue string
		wantAhead bool
	}{
		{"upload retried", events.SQSMessage{MessageId: "1", Body: uploadEvent("bkt", "retry")}, rekey.Retry, uploads, true},
		{"upload dead-lettered", events.SQSMessage{MessageId: "2", Body: uploadEvent("bkt", "fail")}, rekey.Failed, uploadsDLQ, true},
		{"backfill retried", events.SQSMessage{MessageId: "3", Body: mustEncode(t, messages.Object{Bucket: "bkt", Key: "retry"})}, rekey.Retry, work, false},
		{"backfill dead-lettered", events.SQSMessage{MessageId: "4", Body: mustEncode(t, messages.Object{Bucket: "bkt", Key: "fail"})}, rekey.Failed, workDLQ, false},
		{"rejected on the uploads queue", events.SQSMessage{MessageId: "5", Body: "nope", EventSourceARN: "arn:aws:sqs:us-east-1:1:uploads"}, "", uploadsDLQ, false},
		{"rejected on the work queue", events.SQSMessage{MessageId: "6", Body: "nope", EventSourceARN: "arn:aws:sqs:us-east-1:1:work"}, "", workDLQ, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sender := &fakeSender{}
			var ahead, calls int
			h := &encrypt.Handler{
				Rekeyer: fakeRekeyer{func(ctx context.Context, obj messages.Object) rekey.Result {
					calls++
					if budget.IsAhead(ctx) {
						ahead++
					}
					return rekey.Result{Outcome: rekey.Outcome{Status: tc.outcome, Reason: "SlowDown"}}
				}},
				Sender: sender, Config: cfg,
			}
			resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{tc.rec}})
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("%v, %v", resp, err)
			}
			if len(sender.sent) != 1 || len(sender.sent[tc.wantQueue]) != 1 {
				t.Errorf("sent %v, want one message to %s", sender.sent, tc.wantQueue)
			}
			if tc.wantAhead && (ahead != 1 || calls != 1) || !tc.wantAhead && ahead != 0 {
				t.Errorf("%d of %d objects marked ahead, want the upload's only", ahead, calls)
			}
		})
	}
	// Without an uploads queue (a deployment from before it), uploads
	// share the work queue's path.
	sender := &fakeSender{}
	h := &encrypt.Handler{Rekeyer: fakeRekeyer{func(context.Context, messages.Object) rekey.Result {
		return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: "SlowDown"}}
	}}, Sender: sender, Config: encrypt.Config{WorkQueueURL: work, DeadLetterQueueURL: workDLQ}}
	if _, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "7", Body: uploadEvent("bkt", "k")}}}); err != nil {
		t.Fatal(err)
	}
	if len(sender.sent[work]) != 1 {
		t.Errorf("without an uploads queue: sent %v, want the retry on the work queue", sender.sent)
	}
}
