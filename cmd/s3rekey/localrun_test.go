package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

func TestProgressLine(t *testing.T) {
	cases := []struct {
		name    string
		s       pipeline.Snapshot
		elapsed time.Duration
		want    string
	}{
		{"throttled heavily: objects, not attempts", pipeline.Snapshot{Outcomes: map[string]int64{"updated": 4000}, InventoryRows: 4000,
			Retries: map[string]int64{"retry: SlowDown": 17944}, Throttled: 17944}, time.Minute,
			"4000 of 4000 objects done (100.0%); 17944 throttled, 0 other retries"},
		{"half way", pipeline.Snapshot{Outcomes: map[string]int64{"updated": 400, "skipped: sse-c": 100}, InventoryRows: 1000}, 10 * time.Second,
			"500 of 1000 objects done (50.0%), 50/s, 10s left"},
		{"other retries apart", pipeline.Snapshot{Outcomes: map[string]int64{"updated": 10}, InventoryRows: 20,
			Retries: map[string]int64{"retry: SlowDown": 3, "retry: InternalError": 2}, Throttled: 3}, 10 * time.Second,
			"10 of 20 objects done (50.0%), 1/s, 10s left; 3 throttled, 2 other retries"},
		{"nothing planned yet", pipeline.Snapshot{Outcomes: map[string]int64{}}, time.Second, "0 objects done"},
		{"uploads beyond the plan", pipeline.Snapshot{Outcomes: map[string]int64{"updated": 30}, InventoryRows: 20}, time.Second, "30 objects done"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := progressLine(tc.s, tc.elapsed); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestResumeHint(t *testing.T) {
	got := resumeHint([]string{"--endpoint", "http://127.0.0.1:1", "--bucket", "b", "--local", "--policy=p.json", "--work-queue", "w",
		"--control-queue", "c", "--json"})
	if want := "s3rekey run --endpoint http://127.0.0.1:1 --policy=p.json --work-queue w --control-queue c --until-idle"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// A job with no progress for --stalled-after shows as stalled, without a
// time to finish, and with how long it has not moved.
func TestJobsShowsStalled(t *testing.T) {
	f := newFailEnv(t)
	store := &jobs.Store{API: dynamodb.NewFromConfig(f.Cfg), Table: "s3rekey-jobs", Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	const id = "lst-00000000aaaa"
	if _, err := store.Begin(context.Background(), id, jobs.KindListing, "s3://photos/", 1, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after, state string
	}{{"20m", "stalled"}, {"2h", "planning"}} {
		code, out, errOut := f.within(t, "jobs", "--stalled-after", tc.after)
		if code != exitOK || !strings.Contains(out, id+"  listing  "+tc.state+" ") {
			t.Errorf("--stalled-after %s: exit %d, want %s:\n%s%s", tc.after, code, tc.state, out, errOut)
		}
		if tc.state == "stalled" && !strings.Contains(out, "no progress since") {
			t.Errorf("a stalled job without its note:\n%s", out)
		}
	}
}

// jobs cancel closes a job that will never finish: jobs show says so, and
// its report is written with what was done and the cancellation.
func TestJobsCancel(t *testing.T) {
	f := newFailEnv(t)
	store := &jobs.Store{API: dynamodb.NewFromConfig(f.Cfg), Table: "s3rekey-jobs"}
	const id = "inv-00000000bbbb"
	if _, err := store.Begin(context.Background(), id, jobs.KindInventory, "s3://inventory/x/manifest.json", 2, "s3://reports/s3rekey-reports/"+id+"/"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no reason", []string{"jobs", "cancel", id}, exitUsage, "--reason"},
		{"no such job", []string{"jobs", "cancel", "inv-00000000cccc", "--reason", "gone"}, exitFailure, "no such job"},
		{"cancelled", []string{"jobs", "cancel", id, "--reason", "inventory deleted"}, exitOK, "job " + id + " cancelled"},
		{"twice", []string{"jobs", "cancel", id, "--reason", "again"}, exitFailure, "is cancelled (inventory deleted)"},
		{"jobs show", []string{"jobs", "show", id}, exitOK, "inventory deleted"},
		{"report", []string{"report", id}, exitOK, "cancelled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := f.within(t, tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.says) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s%s", code, tc.code, tc.says, out, errOut)
			}
		})
	}
	j, err := store.Get(context.Background(), id)
	if err != nil || j.State != jobs.StateCancelled || j.ReportManifest == "" {
		t.Fatalf("after cancel: %+v %v", j, err)
	}
}
