package enroll

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
)

// HandleSQS is Handle for events that arrive through an SQS queue, as the
// local run loop delivers EventBridge's bucket events (in AWS, EventBridge
// invokes the function directly). A record whose bucket fails to enroll
// is reported for redelivery.
func (e *Enroller) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		if err := e.Handle(ctx, json.RawMessage(r.Body)); err != nil {
			e.logger().Error("enroll", "messageId", r.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return resp, nil
}
