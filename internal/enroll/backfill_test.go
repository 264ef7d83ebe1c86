package enroll_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/enroll"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/queue"
)

// sentJobs records what is sent to the control queue; err fails sends.
type sentJobs struct {
	mu   sync.Mutex
	sent []queue.Message
	err  error
}

func (s *sentJobs) Send(_ context.Context, url string, msgs []queue.Message) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		if s.err != nil || url != "control" {
			errs[i] = errors.Join(s.err, fmt.Errorf("sent to %q", url))
			continue
		}
		s.sent = append(s.sent, m)
	}
	return errs
}

// TestNewBucketsAreBackfilled: the first enrollment of a bucket created
// within NewBucketWindow sends the listing job s3rekey backfill would,
// named by the bucket and its creation date, delayed so that it is listed
// after the notifications are on; a later enrollment, and a bucket older
// than the window, send none; a send that fails leaves the notifications
// off, so that the retry sends the same job.
func TestNewBucketsAreBackfilled(t *testing.T) {
	cases := []struct {
		name string
		// age is how long before the enrollment the bucket was made.
		age     time.Duration
		sendErr error
		want    bool // a backfill is sent
	}{
		{name: "created a minute ago", age: time.Minute, want: true},
		{name: "created within the window", age: enroll.NewBucketWindow - time.Hour, want: true},
		{name: "there before the window", age: enroll.NewBucketWindow + time.Hour},
		{name: "the send fails", age: time.Minute, sendErr: errors.New("SQS is down")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(k string) string { return fmt.Sprintf(rules, k, k, k) })
			ctx := context.Background()
			f.Bucket(t, "data-new", false)
			out, err := f.S3.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: aws.String("data-new")})
			if err != nil || len(out.Buckets) != 1 {
				t.Fatalf("ListBuckets: %v %v", out, err)
			}
			created := aws.ToTime(out.Buckets[0].CreationDate)
			sender := &sentJobs{err: tc.sendErr}
			f.e.ControlQueueURL, f.e.Backfills = "control", sender
			f.e.Now = func() time.Time { return created.Add(tc.age) }
			res, err := f.e.Bucket(ctx, "data-new")
			if tc.sendErr != nil {
				if err == nil || f.eventBridgeOn(t, "data-new") || len(sender.sent) != 0 {
					t.Fatalf("a failed send: %v, notifications on %v; want an error and the notifications left off", err, f.eventBridgeOn(t, "data-new"))
				}
				sender.err = nil
				if res, err = f.e.Bucket(ctx, "data-new"); err != nil || res.Backfill == "" {
					t.Fatalf("the retry: %+v %v; want the backfill sent", res, err)
				}
				return
			}
			if err != nil || !f.eventBridgeOn(t, "data-new") {
				t.Fatalf("enroll: %v", err)
			}
			if sent := len(sender.sent) == 1; sent != tc.want || len(sender.sent) > 1 {
				t.Fatalf("%d backfills sent, want sent %v", len(sender.sent), tc.want)
			}
			if !tc.want {
				return
			}
			var job planner.Job
			if err := json.Unmarshal([]byte(sender.sent[0].Body), &job); err != nil {
				t.Fatal(err)
			}
			want := planner.ListingJob("data-new", "", false, created)
			if job.Type != want.Type || job.Bucket != want.Bucket || job.Versions || job.JobID != want.JobID || res.Backfill != want.JobID ||
				job.JobID != jobs.ListingID("data-new", "", false, created) {
				t.Errorf("backfill %s (result %q), want the listing job %s of the bucket", sender.sent[0].Body, res.Backfill, want.JobID)
			}
			if d := sender.sent[0].DelaySeconds; d != enroll.DefaultBackfillDelaySeconds {
				t.Errorf("backfill delayed %d s, want %d", d, enroll.DefaultBackfillDelaySeconds)
			}
			if _, err := planner.DecodeJobs(sender.sent[0].Body); err != nil {
				t.Errorf("the planner refuses the backfill: %v", err)
			}
			again, err := f.e.Bucket(ctx, "data-new")
			if err != nil || len(sender.sent) != 1 || again.Backfill != "" {
				t.Errorf("a second enrollment: %+v %v, %d backfills; want none more", again, err, len(sender.sent))
			}
		})
	}
}
