package localrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSAPI is the part of SQS the loop uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// BatchHandler is a Lambda SQS handler with ReportBatchItemFailures.
type BatchHandler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// Source is one queue and the function it feeds, as one event source
// mapping.
type Source struct {
	QueueURL string
	Handler  BatchHandler
	// BatchSize is the most messages per invocation (default 10).
	BatchSize int
	// BatchingWindow is how long to gather messages towards BatchSize
	// (default 0: one receive, as Lambda does for batches of up to 10);
	// see batching.go.
	BatchingWindow time.Duration
	// Concurrency is the number of invocations at once (default 2).
	Concurrency int
	// InvocationTimeout is the handler's deadline, as a function timeout
	// (default 60s).
	InvocationTimeout time.Duration
	// VisibilityTimeout overrides the queue's for received messages
	// (seconds; 0 keeps the queue's).
	VisibilityTimeout int32
	// API is the poller's client. Lambda polls with the function's own
	// role, so a run under a function's permissions sets that function's
	// client here; nil uses the Runner's.
	API SQSAPI
}

// Stats counts what the loop did.
type Stats struct {
	Invocations, Messages, Deleted, ItemFailures, HandlerErrors atomic.Int64
}

// Runner polls its sources until its context ends, or until idle.
type Runner struct {
	API     SQSAPI
	Region  string
	Sources []Source
	Logger  *slog.Logger
	Stats   Stats
	// Busy, when set, keeps RunUntilIdle from stopping while it reports
	// true (for example while a producer is still uploading).
	Busy func() bool

	inflight atomic.Int64
}

func (s Source) withDefaults() Source {
	if s.BatchSize <= 0 {
		s.BatchSize = 10
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 2
	}
	if s.InvocationTimeout <= 0 {
		s.InvocationTimeout = 60 * time.Second
	}
	return s
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// Run polls until ctx ends. It returns ctx's error, or the first error
// that stops a poller for good (a queue that does not exist).
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, src := range r.Sources {
		src := src.withDefaults()
		arn, err := r.queueARN(ctx, r.poller(src), src.QueueURL)
		if err != nil {
			return err
		}
		for range src.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.poll(ctx, src, arn); err != nil {
					cancel(err)
				}
			}()
		}
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return ctx.Err()
}

// RunUntilIdle polls until every source queue has had no visible,
// in-flight or delayed message, and no invocation was running, for settle.
func (r *Runner) RunUntilIdle(ctx context.Context, settle time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	tick := min(max(settle/5, 20*time.Millisecond), time.Second)
	var idleSince time.Time
	for {
		select {
		case err := <-done:
			return err
		case <-time.After(tick):
		}
		empty, err := r.queuesEmpty(ctx)
		if err != nil {
			cancel()
			<-done
			return err
		}
		if !empty || r.inflight.Load() > 0 || (r.Busy != nil && r.Busy()) {
			idleSince = time.Time{}
			continue
		}
		if idleSince.IsZero() {
			idleSince = time.Now()
		}
		if time.Since(idleSince) >= settle {
			cancel()
			<-done
			return nil
		}
	}
}

func (r *Runner) queuesEmpty(ctx context.Context) (bool, error) {
	for _, src := range r.Sources {
		out, err := r.API.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(src.QueueURL),
			AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"}})
		if err != nil {
			return false, fmt.Errorf("queue depth of %s: %w", src.QueueURL, err)
		}
		for _, v := range out.Attributes {
			if v != "0" {
				return false, nil
			}
		}
	}
	return true, nil
}

// poller is the client that reads src, as Lambda's poller would.
func (r *Runner) poller(src Source) SQSAPI {
	if src.API != nil {
		return src.API
	}
	return r.API
}

func (r *Runner) queueARN(ctx context.Context, api SQSAPI, url string) (string, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"QueueArn"}})
	if err != nil {
		return "", fmt.Errorf("queue %s: %w", url, err)
	}
	return out.Attributes["QueueArn"], nil
}

// poll is one invocation slot: receive a batch, invoke, delete.
func (r *Runner) poll(ctx context.Context, src Source, arn string) error {
	b := newBatcher(src)
	for ctx.Err() == nil {
		batch, err := r.receive(ctx, src, b)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var missing *types.QueueDoesNotExist
			if errors.As(err, &missing) {
				return fmt.Errorf("queue %s: %w", src.QueueURL, err)
			}
			r.logger().Warn("receive failed; retrying", "queue", src.QueueURL, "error", err)
			sleep(ctx, time.Second)
			continue
		}
		if len(batch) == 0 {
			continue
		}
		r.invoke(ctx, src, arn, batch)
	}
	return nil
}

func (r *Runner) invoke(ctx context.Context, src Source, arn string, batch []types.Message) {
	r.inflight.Add(1)
	defer r.inflight.Add(-1)
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(batch))}
	for i, m := range batch {
		ev.Records[i] = toRecord(m, arn, r.Region)
	}
	r.Stats.Invocations.Add(1)
	r.Stats.Messages.Add(int64(len(batch)))
	invCtx, cancel := context.WithTimeout(ctx, src.InvocationTimeout)
	resp, err := callHandler(invCtx, src.Handler, ev)
	cancel()
	if err != nil {
		// As in Lambda: a failed invocation deletes nothing; every message
		// returns after its visibility timeout.
		r.Stats.HandlerErrors.Add(1)
		r.logger().Error("handler failed; the batch returns after its visibility timeout", "queue", src.QueueURL, "error", err)
		return
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	r.Stats.ItemFailures.Add(int64(len(failed)))
	var entries []types.DeleteMessageBatchRequestEntry
	for i, m := range batch {
		if !failed[aws.ToString(m.MessageId)] {
			entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	delCtx := context.WithoutCancel(ctx)
	for start := 0; start < len(entries); start += 10 {
		chunk := entries[start:min(start+10, len(entries))]
		out, err := r.poller(src).DeleteMessageBatch(delCtx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(src.QueueURL), Entries: chunk})
		if err != nil {
			r.logger().Warn("delete failed; the messages will be delivered again", "queue", src.QueueURL, "error", err)
			continue
		}
		r.Stats.Deleted.Add(int64(len(out.Successful)))
	}
}

// callHandler invokes the handler, turning a panic into an error as the
// Lambda runtime reports it.
func callHandler(ctx context.Context, h BatchHandler, ev events.SQSEvent) (resp events.SQSEventResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, ev)
}

func toRecord(m types.Message, arn, region string) events.SQSMessage {
	rec := events.SQSMessage{
		MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
		Md5OfBody: aws.ToString(m.MD5OfBody), Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
		Attributes: m.Attributes, EventSource: "aws:sqs", EventSourceARN: arn, AWSRegion: region,
	}
	if len(m.MessageAttributes) > 0 {
		rec.MessageAttributes = map[string]events.SQSMessageAttribute{}
		for k, v := range m.MessageAttributes {
			rec.MessageAttributes[k] = events.SQSMessageAttribute{StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType)}
		}
	}
	return rec
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
