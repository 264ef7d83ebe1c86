package encrypt

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/queue"
)

// DefaultMaxReceives is how often the work queue delivers a message before
// SQS moves it to the dead-letter queue: the stack's maxReceiveCount. On
// its last delivery the function dead-letters a message itself, with the
// reason, rather than leave SQS to move it without one.
const DefaultMaxReceives = 5

// OutcomeUndelivered is the outcome of a delivery the function gave up on
// (every later receive would have failed it too): the message is
// dead-lettered whole, as SQS would have moved it, with why.
const OutcomeUndelivered = "undelivered"

func (c Config) maxReceives() int {
	if c.MaxReceives <= 0 {
		return DefaultMaxReceives
	}
	return c.MaxReceives
}

// deadLetterLastReceives sends to the DLQ, with its reason, each message
// that is on its last receive and would be reported as a batch item
// failure: SQS would move it there anyway, without a word. The message
// goes as it came (its body, so that a redrive runs it as SQS's move
// would), and is reported done once the dead letter is sent; one whose
// dead letter cannot be sent either is left to SQS.
func (h *Handler) deadLetterLastReceives(ctx context.Context, cfg Config, ev events.SQSEvent, work []messageWork, failed map[int]bool, why map[int]string, sum *Summary) {
	var last []int
	var msgs []queue.Message
	for i := range ev.Records {
		received, _ := strconv.Atoi(ev.Records[i].Attributes["ApproximateReceiveCount"])
		if !failed[i] || received < cfg.maxReceives() {
			continue
		}
		reason := why[i]
		if reason == "" {
			reason = "its outcomes could not be committed to its job"
		}
		reason = truncate(fmt.Sprintf("gave up after %d deliveries: %s", received, reason), 256)
		h.logger().Error("message failed on its last delivery: dead-lettered", "messageId", ev.Records[i].MessageId, "reason", reason)
		last = append(last, i)
		msgs = append(msgs, queue.Message{Body: ev.Records[i].Body, Attributes: map[string]string{AttrOutcome: OutcomeUndelivered,
			AttrReason: reason, AttrSource: ev.Records[i].MessageId, AttrAttempts: strconv.Itoa(work[i].task.Attempt + 1)}})
	}
	if len(msgs) == 0 {
		return
	}
	for k, err := range h.Sender.Send(context.WithoutCancel(ctx), cfg.DeadLetterQueueURL, msgs) {
		if err != nil {
			h.logger().Error("dead letter not sent; SQS moves the message without a reason", "messageId", ev.Records[last[k]].MessageId, "error", err)
			continue
		}
		delete(failed, last[k])
		for _, obj := range work[last[k]].task.Objects {
			if obj.Skip == "" {
				sum.DeadLetter++
			}
		}
	}
}
