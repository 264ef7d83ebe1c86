package localrun_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/localrun"
	"github.com/s3rekey/s3rekey/internal/witness"
)

// The run loop is Lambda's SQS event source mapping; each test runs it
// against SQS on every witness (the emulator and moto).

func TestMain(m *testing.M) { witness.Main(m) }

func sendN(t *testing.T, w witness.Witness, url string, n int) {
	t.Helper()
	for i := range n {
		if _, err := w.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(rune('a' + i)))}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBatchItemFailuresComeBack(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		url, arn := w.Queue(t, "q", map[string]string{"VisibilityTimeout": "1"})
		sendN(t, w, url, 5)
		seen := map[string]int{}
		var failedOnce atomic.Bool
		handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			var resp events.SQSEventResponse
			for _, r := range ev.Records {
				if r.EventSourceARN != arn || r.EventSource != "aws:sqs" || r.Attributes["ApproximateReceiveCount"] == "" {
					t.Errorf("record %+v", r)
				}
				seen[r.Body]++
				if r.Body == "c" && failedOnce.CompareAndSwap(false, true) {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
			}
			return resp, nil
		}
		r := &localrun.Runner{API: w.SQS, Sources: []localrun.Source{{QueueURL: url, Handler: handler, Concurrency: 1}}}
		if err := r.RunUntilIdle(context.Background(), 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if seen["c"] != 2 || seen["a"] != 1 || len(seen) != 5 {
			t.Errorf("deliveries %v; want c twice (failed once), the rest once", seen)
		}
		if r.Stats.ItemFailures.Load() != 1 || r.Stats.Deleted.Load() != 5 {
			t.Errorf("stats: %d item failures, %d deleted", r.Stats.ItemFailures.Load(), r.Stats.Deleted.Load())
		}
	})
}

func TestHandlerErrorsAndPanicsDeleteNothing(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		url, _ := w.Queue(t, "q", map[string]string{"VisibilityTimeout": "1"})
		sendN(t, w, url, 3)
		var invocations atomic.Int32
		handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			switch invocations.Add(1) {
			case 1:
				return events.SQSEventResponse{}, errors.New("boom")
			case 2:
				panic("handler bug")
			}
			return events.SQSEventResponse{}, nil
		}
		r := &localrun.Runner{API: w.SQS, Sources: []localrun.Source{{QueueURL: url, Handler: handler, Concurrency: 1}}}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.RunUntilIdle(ctx, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if r.Stats.HandlerErrors.Load() != 2 || r.Stats.Deleted.Load() != 3 || r.Stats.Messages.Load() != 9 {
			t.Errorf("errors %d, deleted %d, messages handled %d; want 2 failed invocations then all 3 deleted",
				r.Stats.HandlerErrors.Load(), r.Stats.Deleted.Load(), r.Stats.Messages.Load())
		}
	})
}

func TestBatchingWindowGathersBatches(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		url, _ := w.Queue(t, "q", nil)
		sendN(t, w, url, 25)
		var sizes []int
		handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			sizes = append(sizes, len(ev.Records))
			return events.SQSEventResponse{}, nil
		}
		// A window long enough for the three receives 25 messages take on
		// a loaded machine, moto being the slower server.
		r := &localrun.Runner{API: w.SQS, Sources: []localrun.Source{{QueueURL: url, Handler: handler, Concurrency: 1, BatchSize: 100, BatchingWindow: 1500 * time.Millisecond}}}
		if err := r.RunUntilIdle(context.Background(), 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if len(sizes) != 1 || sizes[0] != 25 {
			t.Errorf("batch sizes %v, want one batch of 25", sizes)
		}
	})
}

// A message whose every delivery fails moves to the dead-letter queue
// after maxReceiveCount receives (SQS developer guide,
// sqs-dead-letter-queues: "When the ReceiveCount for a message exceeds
// the maxReceiveCount for a queue, Amazon SQS moves the message to a
// dead-letter queue"), and the others are deleted.
func TestDeadLetterAfterMaxReceiveCount(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		dlqURL, dlqARN := w.Queue(t, "dlq", nil)
		url, _ := w.Queue(t, "q", map[string]string{"VisibilityTimeout": "1",
			"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"2"}`, dlqARN)})
		sendN(t, w, url, 3) // a, b, c
		var mu sync.Mutex
		seen := map[string]int{}
		handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			var resp events.SQSEventResponse
			mu.Lock()
			defer mu.Unlock()
			for _, r := range ev.Records {
				seen[r.Body]++
				if r.Body == "b" {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
			}
			return resp, nil
		}
		r := &localrun.Runner{API: w.SQS, Sources: []localrun.Source{{QueueURL: url, Handler: handler, Concurrency: 1}}}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.RunUntilIdle(ctx, 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if seen["b"] != 2 || seen["a"] != 1 || seen["c"] != 1 {
			t.Errorf("deliveries %v; want b twice (maxReceiveCount 2), a and c once", seen)
		}
		out, err := w.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlqURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "b" {
			t.Errorf("dead-letter queue holds %d messages (%v), want b alone", len(out.Messages), out.Messages)
		}
	})
}

func TestMissingQueueStopsTheRunner(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		r := &localrun.Runner{API: w.SQS, Sources: []localrun.Source{{QueueURL: w.Endpoint + "/111122223333/" + witness.Name("none"),
			Handler: func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
				return events.SQSEventResponse{}, nil
			}}}}
		if err := r.Run(context.Background()); err == nil {
			t.Error("Run on a missing queue returned no error")
		}
	})
}
