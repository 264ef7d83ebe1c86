package planner_test

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// TestControlMessagesOfAClosedJobAreDropped: a control message of a job
// that failed or was cancelled (a listing range, a continuation, a replay
// of its first message) is acknowledged and dropped: no work is sent, no
// control message either, and the job keeps its state and reason. A
// message of an open job runs.
func TestControlMessagesOfAClosedJobAreDropped(t *testing.T) {
	cases := []struct {
		name  string
		close func(ctx context.Context, s *jobs.Store, id string) error
		job   func(id string) planner.Job
		state string // "" : the job is open and the message runs
	}{
		{name: "cancelled listing, its first message", close: cancel, state: jobs.StateCancelled,
			job: func(id string) planner.Job { return planner.Job{Type: planner.TypeListing, Bucket: "src", JobID: id} }},
		{name: "cancelled listing, a range", close: cancel, state: jobs.StateCancelled,
			job: func(id string) planner.Job {
				return planner.Job{Type: planner.TypeListing, Bucket: "src", JobID: id, Range: &planner.KeyRange{Index: 1, After: "a"}}
			}},
		{name: "failed listing, a continuation", close: fail, state: jobs.StateFailed,
			job: func(id string) planner.Job {
				return planner.Job{Type: planner.TypeListing, Bucket: "src", JobID: id, StartAfter: "a", Listed: 3}
			}},
		{name: "open listing", close: nil,
			job: func(id string) planner.Job { return planner.Job{Type: planner.TypeListing, Bucket: "src", JobID: id} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, policy.VersionsCurrent)
			v.seed(t)
			ctx := context.Background()
			if err := demo.CreateJobsTable(ctx, v.Cfg, "jobs"); err != nil {
				t.Fatal(err)
			}
			store := &jobs.Store{API: dynamodb.NewFromConfig(v.Cfg), Table: "jobs"}
			v.planner.Jobs, v.planner.Failer = store, store
			v.planner.Config.ListingRanges = 1
			id := jobs.ListingID("src", "", false, testTime)
			if _, err := store.Begin(ctx, id, jobs.KindListing, "s3://src/", 1, ""); err != nil {
				t.Fatal(err)
			}
			if tc.close != nil {
				if err := tc.close(ctx, store, id); err != nil {
					t.Fatal(err)
				}
			}
			body, err := tc.job(id).Encode()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := v.planner.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: body,
				Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}})
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("handled: %v, %v; want it acknowledged", resp.BatchItemFailures, err)
			}
			work, control, dead := countMessages(t, v, v.work), countMessages(t, v, v.controlURL), len(receiveAll(t, v, v.controlDLQ))
			if tc.state == "" {
				if work == 0 || v.planner.Dropped() != 0 {
					t.Fatalf("an open job's message: %d work messages, %d dropped; want it run", work, v.planner.Dropped())
				}
				return
			}
			if work != 0 || control != 0 || dead != 0 || v.planner.Dropped() != 1 {
				t.Errorf("a %s job's message sent %d work, %d control and %d dead letters, %d dropped; want none sent, 1 dropped",
					tc.state, work, control, dead, v.planner.Dropped())
			}
			j, err := store.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.State != tc.state || j.TerminalReason != "closed by the test" || j.Planned != 0 {
				t.Errorf("job is %s (%q), %d planned; want %s as it was closed, nothing planned", j.State, j.TerminalReason, j.Planned, tc.state)
			}
		})
	}
}

func cancel(ctx context.Context, s *jobs.Store, id string) error {
	return s.Cancel(ctx, id, "closed by the test")
}
func fail(ctx context.Context, s *jobs.Store, id string) error {
	return s.Fail(ctx, id, "closed by the test")
}
