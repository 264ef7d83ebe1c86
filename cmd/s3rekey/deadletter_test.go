package main

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/planner"
)

// A dead letter without a reason is labelled as what it is: moved by SQS
// after maxReceiveCount receives, because the function crashed or timed
// out before it could dead-letter it with one.
func TestDeadLetterReason(t *testing.T) {
	attr := func(name, v string) map[string]sqstypes.MessageAttributeValue {
		return map[string]sqstypes.MessageAttributeValue{name: {DataType: aws.String("String"), StringValue: aws.String(v)}}
	}
	for _, tc := range []struct {
		name        string
		msg         sqstypes.Message
		maxReceives int
		want        string
	}{
		{"encrypt's reason", sqstypes.Message{MessageAttributes: attr(encrypt.AttrReason, "access-denied")}, 5, "access-denied"},
		{"planner's reason", sqstypes.Message{MessageAttributes: attr(planner.AttrReason, "gave up after 5 deliveries: x")}, 5,
			"gave up after 5 deliveries: x"},
		{"no reason", sqstypes.Message{}, 5, "moved by SQS after 5 receives: the function crashed or timed out before it could record a reason"},
		{"no reason, no redrive policy read", sqstypes.Message{MessageAttributes: attr(encrypt.AttrReason, "")}, 0,
			"moved by SQS after its queue's maxReceiveCount receives: the function crashed or timed out before it could record a reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := deadLetterReason(tc.msg, tc.maxReceives); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
