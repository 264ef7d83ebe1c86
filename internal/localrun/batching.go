package localrun

import (
	"context"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// How the event source mapping gathers a batch (Lambda developer guide,
// invocation-eventsourcemapping, "Batching behavior"): Lambda invokes the
// function when the batching window reaches its maximum, the batch size is
// met, or the payload reaches 6 MB. For SQS the default window is 0 ("Lambda
// invokes your function as soon as records are available"), and "if you
// configure a batching window, the next window begins as soon as the
// previous function invocation completes". Metadata counts towards the
// payload and can make a batch smaller than its batch size
// (services-sqs-configure, "Batch size").
const (
	// maxPayloadBytes is the synchronous invocation payload quota.
	maxPayloadBytes = 6 << 20
	// recordMetadataBytes stands in for what a record carries besides its
	// body, ids and attributes: the JSON keys, the event source, its ARN
	// and the region.
	recordMetadataBytes = 300
	// maxLongPollSeconds is SQS's longest WaitTimeSeconds.
	maxLongPollSeconds = 20
	// pollGap spaces the polls that do not wait, in a window's last part
	// of a second.
	pollGap = 100 * time.Millisecond
)

// batcher gathers one invocation slot's batches. Messages received beyond
// a full payload are carried into the next batch: they have been received
// (and are invisible to other pollers), so they must not be dropped.
type batcher struct {
	size      int
	window    time.Duration
	windowEnd time.Time
	batch     []types.Message
	bytes     int
	carry     []types.Message
}

func newBatcher(src Source) *batcher {
	return &batcher{size: src.BatchSize, window: src.BatchingWindow}
}

// start begins a batch at now (the previous invocation's end), with the
// messages carried over from the last one.
func (b *batcher) start(now time.Time) {
	b.windowEnd = now.Add(b.window)
	carried := b.carry
	b.batch, b.bytes, b.carry = nil, 0, nil
	b.add(carried)
}

// add puts received messages into the batch, carrying over those that
// would take it past its size or payload.
func (b *batcher) add(msgs []types.Message) {
	for i, m := range msgs {
		n := recordBytes(m)
		if len(b.batch) >= b.size || (len(b.batch) > 0 && b.bytes+n > maxPayloadBytes) {
			b.carry = append(b.carry, msgs[i:]...)
			return
		}
		b.batch = append(b.batch, m)
		b.bytes += n
	}
}

// ready reports whether the batch is to be invoked now: its size met, its
// payload full, or its window over with at least one message.
func (b *batcher) ready(now time.Time) bool {
	switch {
	case len(b.carry) > 0, len(b.batch) >= b.size:
		return true
	case len(b.batch) == 0:
		return false
	default:
		return !now.Before(b.windowEnd)
	}
}

// receiveInput is the next ReceiveMessage of the batch, for up to what
// the batch still lacks (10 at most). An empty batch long-polls for its
// first message (SQS answers a long poll as soon as it has one). A batch
// under way long-polls only whole seconds that the window still has, so
// that it is not invoked past its window; in the last part of a second it
// polls without waiting (receive sleeps pollGap between empty answers).
func (b *batcher) receiveInput(src Source, now time.Time) *sqs.ReceiveMessageInput {
	rest := b.windowEnd.Sub(now).Seconds()
	var wait int32
	switch {
	case len(b.batch) == 0:
		wait = int32(min(maxLongPollSeconds, max(1, math.Ceil(rest))))
	case rest >= 1:
		wait = int32(min(maxLongPollSeconds, math.Floor(rest)))
	}
	return &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(src.QueueURL), MaxNumberOfMessages: int32(min(10, b.size-len(b.batch))),
		WaitTimeSeconds: wait, VisibilityTimeout: src.VisibilityTimeout,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}, MessageAttributeNames: []string{"All"},
	}
}

// take hands the batch over for invocation.
func (b *batcher) take() []types.Message {
	batch := b.batch
	b.batch, b.bytes = nil, 0
	return batch
}

// recordBytes is a message's share of the invocation payload.
func recordBytes(m types.Message) int {
	n := recordMetadataBytes + len(aws.ToString(m.Body)) + len(aws.ToString(m.MessageId)) + len(aws.ToString(m.ReceiptHandle)) +
		len(aws.ToString(m.MD5OfBody)) + len(aws.ToString(m.MD5OfMessageAttributes))
	for k, v := range m.Attributes {
		n += len(k) + len(v)
	}
	for k, v := range m.MessageAttributes {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}

// receive gathers the next batch as the event source mapping does. It
// returns no messages when a long poll found the queue empty and the
// window is over, so that the caller can look at its context.
func (r *Runner) receive(ctx context.Context, src Source, b *batcher) ([]types.Message, error) {
	b.start(time.Now())
	for !b.ready(time.Now()) {
		in := b.receiveInput(src, time.Now())
		out, err := r.poller(src).ReceiveMessage(ctx, in)
		if err != nil {
			if len(b.batch) > 0 {
				return b.take(), nil
			}
			return nil, err
		}
		b.add(out.Messages)
		switch {
		case len(b.batch) == 0 && !time.Now().Before(b.windowEnd):
			return nil, nil // the long poll found nothing
		case len(out.Messages) == 0 && in.WaitTimeSeconds == 0:
			sleep(ctx, min(pollGap, time.Until(b.windowEnd)))
		}
	}
	return b.take(), nil
}
