package encrypt_test

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// TestTrackedTaskWithoutJobRecords: a task the planner tracked, consumed
// by a function with job records off, runs as untracked work: its retry
// carries no job id, parent or signature (and the handler does not need a
// job recorder to make it).
func TestTrackedTaskWithoutJobRecords(t *testing.T) {
	sender := &fakeSender{}
	h := &encrypt.Handler{Sender: sender, Config: encrypt.Config{WorkQueueURL: "work", DeadLetterQueueURL: "dlq", Concurrency: 1},
		Rekeyer: fakeRekeyer{func(context.Context, messages.Object) rekey.Result {
			return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: "InternalError"}}
		}}}
	body, err := messages.Task{Source: messages.SourceListing, JobID: "lst-0123456789ab", ID: "0123456789abcdef", Sig: "00",
		Plan: &messages.Plan{Rows: 1, Unit: "u", First: true, Final: true}, Objects: []messages.Object{{Bucket: "b", Key: "k"}}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := h.HandleWithSummary(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: body}}})
	if len(resp.BatchItemFailures) != 0 || len(sender.sent["work"]) != 1 {
		t.Fatalf("failures %v, sent %v", resp.BatchItemFailures, sender.sent)
	}
	retry, err := messages.Decode(sender.sent["work"][0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if retry.ID != "" || retry.Parent != "" || retry.Sig != "" || retry.Plan != nil || retry.Attempt != 1 {
		t.Errorf("retry %+v, want an untracked retry at attempt 1", retry)
	}
}
