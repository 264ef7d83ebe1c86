package encrypt_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// downQueues fails every send to the queues it names.
type downQueues struct {
	fakeSender
	down map[string]bool
}

func (d *downQueues) Send(ctx context.Context, url string, msgs []queue.Message) []error {
	if d.down[url] {
		errs := make([]error, len(msgs))
		for i := range errs {
			errs[i] = errors.New("SQS is down")
		}
		return errs
	}
	return d.fakeSender.Send(ctx, url, msgs)
}

// TestLastReceiveIsDeadLetteredWithItsReason: a message that would be
// reported as a batch item failure on the work queue's last receive (the
// stack's maxReceiveCount) is dead-lettered by the function, whole and with
// why, instead of being moved by SQS without a reason; earlier receives
// are left to SQS to deliver again, and so is a last one whose dead letter
// cannot be sent either.
//
// SQS moves a message to the dead-letter queue "when the ReceiveCount for
// a message exceeds the maxReceiveCount for a queue"
// (AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.md).
func TestLastReceiveIsDeadLetteredWithItsReason(t *testing.T) {
	cases := []struct {
		name     string
		received int
		down     []string
		// failure: reported in BatchItemFailures; dead: dead-lettered here.
		failure, dead bool
	}{
		{name: "first receive, retry not sent", received: 1, down: []string{"work"}, failure: true},
		{name: "second to last receive, retry not sent", received: encrypt.DefaultMaxReceives - 1, down: []string{"work"}, failure: true},
		{name: "last receive, retry not sent", received: encrypt.DefaultMaxReceives, down: []string{"work"}, dead: true},
		{name: "last receive, DLQ down too", received: encrypt.DefaultMaxReceives, down: []string{"work", "dlq"}, failure: true},
		{name: "last receive, all sent", received: encrypt.DefaultMaxReceives},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sender := &downQueues{down: map[string]bool{}}
			for _, q := range tc.down {
				sender.down[q] = true
			}
			h := &encrypt.Handler{
				Rekeyer: fakeRekeyer{func(ctx context.Context, obj messages.Object) rekey.Result {
					return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: "InternalError"}}
				}},
				Sender: sender,
				Config: encrypt.Config{WorkQueueURL: "work", DeadLetterQueueURL: "dlq"},
			}
			body := mustEncode(t, messages.Object{Bucket: "bkt", Key: "k"})
			resp, sum := h.HandleWithSummary(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: body,
				Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(tc.received)}}}})
			if failure := len(resp.BatchItemFailures) == 1; failure != tc.failure {
				t.Errorf("reported as a batch item failure: %v, want %v", failure, tc.failure)
			}
			dead := sender.sent["dlq"]
			if (len(dead) == 1) != tc.dead || len(dead) > 1 {
				t.Fatalf("%d dead letters, want dead-lettered %v", len(dead), tc.dead)
			}
			if !tc.dead {
				return
			}
			d := dead[0]
			reason := d.Attributes[encrypt.AttrReason]
			if d.Body != body || d.Attributes[encrypt.AttrOutcome] != encrypt.OutcomeUndelivered || d.Attributes[encrypt.AttrSource] != "m1" ||
				!strings.HasPrefix(reason, "gave up after 5 deliveries: a follow-up could not be sent: ") || sum.DeadLetter != 1 {
				t.Errorf("dead letter %q %v (summary %d dead-lettered), want the message as received, undelivered, with why", d.Body, d.Attributes, sum.DeadLetter)
			}
		})
	}
}
