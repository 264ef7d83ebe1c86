package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/jobs"
)

// A failed job stays failed, with its first reason, whatever counts,
// completes or fails it later.
func TestFailIsFinal(t *testing.T) {
	c, _ := newStore(t)
	ctx := context.Background()
	const job = "inv-00000000f001"
	if _, err := c.Store.Begin(ctx, job, jobs.KindInventory, "s3://inv/manifest.json", 1, ""); err != nil {
		t.Fatal(err)
	}
	c.Store.Now = func() time.Time { return time.Now().Add(time.Minute) } // failed later than it began
	if err := c.Store.Fail(ctx, job, "data file inv/a.csv.gz: MD5 mismatch"); err != nil {
		t.Fatal(err)
	}
	// A second failure (a redelivery) keeps the first reason.
	if err := c.Store.Fail(ctx, job, "another reason"); err != nil {
		t.Fatal(err)
	}
	// Progress after the failure: every row counted and done.
	task := jobs.Task{JobID: job, MessageID: jobs.MessageID("file", "0")}
	claim(t, c, "A", time.Now().Add(time.Minute), task)
	commit(t, c, "A", jobs.Delivery{JobID: job, MessageID: task.MessageID, Root: &jobs.Root{Unit: "file", First: true, Final: true, UnitRows: 2, Rows: 2, Planned: 2},
		Outcomes: map[string]int64{"updated": 2}})
	j, err := c.Store.Get(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != jobs.StateFailed || j.TerminalReason != "data file inv/a.csv.gz: MD5 mismatch" || j.Ended.IsZero() || !j.Terminal() {
		t.Fatalf("after a failure and later progress: state %q reason %q ended %v", j.State, j.TerminalReason, j.Ended)
	}
	if list, err := c.Store.List(ctx, 10); err != nil || len(list) != 1 {
		t.Fatalf("listed %d jobs (%v), want the one job once", len(list), err)
	}
	if err := c.Store.Cancel(ctx, job, "give up"); !errors.Is(err, jobs.ErrFinal) || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("cancel of a failed job: %v, want ErrFinal naming the failure", err)
	}
}

// A job that fails before its planning began (a listing of a bucket that
// does not exist) gets a record, so that jobs and jobs show find it.
func TestFailBeforeBegin(t *testing.T) {
	c, _ := newStore(t)
	ctx := context.Background()
	const job = "lst-00000000f002"
	if err := c.Store.FailSource(ctx, job, "s3://gone/", "NoSuchBucket: bucket gone does not exist"); err != nil {
		t.Fatal(err)
	}
	list, err := c.Store.List(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != job || list[0].State != jobs.StateFailed || list[0].Kind != jobs.KindListing ||
		list[0].Source != "s3://gone/" || !strings.Contains(list[0].TerminalReason, "NoSuchBucket") {
		t.Fatalf("listed %+v", list)
	}
}

func TestCancelRefuses(t *testing.T) {
	c, _ := newStore(t)
	ctx := context.Background()
	const done = "inv-00000000f003"
	if _, err := c.Store.Begin(ctx, done, jobs.KindInventory, "s3://inv/manifest.json", 1, ""); err != nil {
		t.Fatal(err)
	}
	task := jobs.Task{JobID: done, MessageID: jobs.MessageID("file", "0")}
	claim(t, c, "A", time.Now().Add(time.Minute), task)
	commit(t, c, "A", jobs.Delivery{JobID: done, MessageID: task.MessageID, Root: &jobs.Root{Unit: "file", First: true, Final: true, UnitRows: 1, Rows: 1, Planned: 1},
		Outcomes: map[string]int64{"updated": 1}})
	cases := []struct {
		name, id, reason string
		want             error
		says             string
	}{
		{"no such job", "inv-00000000f0ff", "r", jobs.ErrNotFound, "no such job"},
		{"a complete job", done, "r", jobs.ErrFinal, "complete"},
		{"no reason", done, " ", nil, "needs a reason"},
		{"not a job id", "inv-../../x", "r", nil, "not a job id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Store.Cancel(ctx, tc.id, tc.reason)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("cancel: %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
	if j, _ := c.Store.Get(ctx, done); j.State != jobs.StateComplete {
		t.Fatalf("a refused cancel changed the job: %s", j.State)
	}
}

// A cancelled job's report is written at once, with what was done, and
// its manifest says it was cancelled and why.
func TestCancelWritesTheReport(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	cfg, err := demo.SetupJobs(ctx, e.Emu, "jobs", "reports")
	if err != nil {
		t.Fatal(err)
	}
	_, c := cfg.Wire(e.Cfg)
	const job = "lst-00000000f004"
	if _, err := c.Store.Begin(ctx, job, jobs.KindListing, "s3://b/", 1, c.Reports.Location(job)); err != nil {
		t.Fatal(err)
	}
	j, err := c.Cancel(ctx, job, "bucket b retired")
	if err != nil {
		t.Fatal(err)
	}
	if j.State != jobs.StateCancelled || j.TerminalReason != "bucket b retired" || j.ReportManifest == "" {
		t.Fatalf("cancelled job: %+v", j)
	}
	key := strings.TrimPrefix(j.ReportManifest, "s3://reports/")
	out, err := e.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("reports"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	var m jobs.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.JobState != jobs.StateCancelled || m.JobStateReason != "bucket b retired" || m.JobID != job {
		t.Fatalf("manifest: %s", body)
	}
}

// A job with no progress for StallAfter shows as stalled; a count makes
// it live again.
func TestStalled(t *testing.T) {
	c, _ := newStore(t)
	ctx := context.Background()
	now := time.Now()
	c.Store.Now = func() time.Time { return now }
	const job = "inv-00000000f005"
	if _, err := c.Store.Begin(ctx, job, jobs.KindInventory, "s3://inv/manifest.json", 2, ""); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	task := jobs.Task{JobID: job, MessageID: jobs.MessageID("file", "0")}
	claim(t, c, "A", now.Add(time.Minute), task)
	retry := jobs.ChildID(task.MessageID, jobs.ChildRetry, []byte("r"))
	commit(t, c, "A", jobs.Delivery{JobID: job, MessageID: task.MessageID, Root: &jobs.Root{Unit: "file", First: true, Final: true, UnitRows: 2, Rows: 2, Planned: 2},
		Outcomes: map[string]int64{"updated": 1}, Children: []jobs.Child{{ID: retry, Kind: jobs.ChildRetry, Objects: 1}}})
	j, err := c.Store.Get(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if !j.Progressed.Equal(now.UTC().Truncate(time.Millisecond)) {
		t.Fatalf("last progress %v, want %v", j.Progressed, now)
	}
	for _, tc := range []struct {
		after   time.Duration
		stalled bool
	}{{jobs.StallAfter - time.Second, false}, {jobs.StallAfter, true}} {
		if got := j.Stalled(now.Add(tc.after), 0); got != tc.stalled {
			t.Errorf("%v after the last count: stalled %v, want %v", tc.after, got, tc.stalled)
		}
	}
	j.State = jobs.StateFailed
	if j.Stalled(now.Add(time.Hour), 0) {
		t.Error("a failed job shows as stalled")
	}
}
