package localrun_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/localrun"
)

func sendN(t *testing.T, e *emutest.Env, url string, n int) {
	t.Helper()
	for i := range n {
		if _, err := e.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(rune('a' + i)))}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBatchItemFailuresComeBack(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	url, arn := e.Queue(t, "q", map[string]string{"VisibilityTimeout": "1"})
	sendN(t, e, url, 5)
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
	r := &localrun.Runner{API: e.SQS, Sources: []localrun.Source{{QueueURL: url, Handler: handler, Concurrency: 1}}}
	if err := r.RunUntilIdle(context.Background(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if seen["c"] != 2 || seen["a"] != 1 || len(seen) != 5 {
		t.Errorf("deliveries %v; want c twice (failed once), the rest once", seen)
	}
	if r.Stats.ItemFailures.Load() != 1 || r.Stats.Deleted.Load() != 5 {
		t.Errorf("stats: %d item failures, %d deleted", r.Stats.ItemFailures.Load(), r.Stats.Deleted.Load())
	}
}

func TestHandlerErrorsAndPanicsDeleteNothing(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	url, _ := e.Queue(t, "q", map[string]string{"VisibilityTimeout": "1"})
	sendN(t, e, url, 3)
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
	r := &localrun.Runner{API: e.SQS, Sources: []localrun.Source{{QueueURL: url, Handler: handler, Concurrency: 1}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.RunUntilIdle(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if r.Stats.HandlerErrors.Load() != 2 || r.Stats.Deleted.Load() != 3 || r.Stats.Messages.Load() != 9 {
		t.Errorf("errors %d, deleted %d, messages handled %d; want 2 failed invocations then all 3 deleted",
			r.Stats.HandlerErrors.Load(), r.Stats.Deleted.Load(), r.Stats.Messages.Load())
	}
}

func TestBatchingWindowGathersBatches(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	url, _ := e.Queue(t, "q", nil)
	sendN(t, e, url, 25)
	var sizes []int
	handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		sizes = append(sizes, len(ev.Records))
		return events.SQSEventResponse{}, nil
	}
	r := &localrun.Runner{API: e.SQS, Sources: []localrun.Source{{QueueURL: url, Handler: handler, Concurrency: 1, BatchSize: 100, BatchingWindow: 300 * time.Millisecond}}}
	if err := r.RunUntilIdle(context.Background(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 1 || sizes[0] != 25 {
		t.Errorf("batch sizes %v, want one batch of 25", sizes)
	}
}

func TestMissingQueueStopsTheRunner(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	r := &localrun.Runner{API: e.SQS, Sources: []localrun.Source{{QueueURL: e.Emu.URL() + "/111122223333/none",
		Handler: func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, nil
		}}}}
	if err := r.Run(context.Background()); err == nil {
		t.Error("Run on a missing queue returned no error")
	}
}
