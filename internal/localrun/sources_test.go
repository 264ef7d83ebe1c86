package localrun_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/localrun"
	"github.com/s3rekey/s3rekey/internal/witness"
)

// TestSourcesConsumeIndependently: as two event source mappings on one
// function, two sources poll and invoke apart: a message on the second
// queue is handled while every invocation of the first is busy with its
// backlog (the uploads queue beside a backfill's work queue).
func TestSourcesConsumeIndependently(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		backlogURL, _ := w.Queue(t, "backlog", map[string]string{"VisibilityTimeout": "30"})
		uploadsURL, _ := w.Queue(t, "uploads", nil)
		sendN(t, w, backlogURL, 20)
		busy, release := make(chan struct{}, 2), make(chan struct{})
		backlog := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			busy <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return events.SQSEventResponse{}, nil
		}
		handled := make(chan string, 1)
		uploads := func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			for _, r := range ev.Records {
				handled <- r.Body
			}
			return events.SQSEventResponse{}, nil
		}
		r := &localrun.Runner{API: w.SQS, Sources: []localrun.Source{
			{QueueURL: backlogURL, Handler: backlog, Concurrency: 2, BatchSize: 1},
			{QueueURL: uploadsURL, Handler: uploads, Concurrency: 1},
		}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // bounded
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() {
			close(release)
			cancel()
			<-done
		}()
		for range 2 { // both of the backlog's invocations are busy
			select {
			case <-busy:
			case <-ctx.Done():
				t.Fatal("the backlog's invocations did not start")
			}
		}
		sendN(t, w, uploadsURL, 1)
		select {
		case body := <-handled:
			if body != "a" {
				t.Errorf("handled %q", body)
			}
		case <-ctx.Done():
			t.Fatal("the upload was not handled while the backlog's invocations were busy")
		}
	})
}
