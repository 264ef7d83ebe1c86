package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// The schedules of issue 20, each of which made a job's record or report
// wrong before the job protocol was derived from task records; each runs
// on the model's world and ends with its checks.

// fixAll lets every denied object through (what the operator fixed
// before a redrive).
func fixAll(w *world) {
	for _, o := range w.objects {
		o.denied = false
	}
}

// deliverAll delivers every visible work message in one batch.
func (r *run) deliverAll(t *testing.T) {
	t.Helper()
	if work := r.w.visible(workURL); len(work) > 0 {
		r.invoke(t, workURL, work, nil, false)
	}
}

// drainDeadLetters redrives and drains until no dead letter is left.
func (r *run) finishWithRedrive(t *testing.T, oneBatch bool) {
	t.Helper()
	fixAll(r.w)
	r.redrive(t, false, false)
	if oneBatch {
		r.deliverAll(t)
	}
	r.drain(t, false)
}

func keys(prefix string, n int) []objectSpec {
	var out []objectSpec
	for i := range n {
		out = append(out, objectSpec{key: fmt.Sprintf("%s%03d", prefix, i)})
	}
	return out
}

func TestModelRegressions(t *testing.T) {
	m := newModel(t)
	for _, tc := range []struct {
		name string
		spec spec
		run  func(t *testing.T, r *run)
	}{
		{
			// Two dead letters of one task (two reasons), redriven in one
			// batch: both name the task as their parent.
			name: "two follow-ups of one task in one batch",
			spec: spec{objects: []objectSpec{{key: "a/1", failReason: rekey.ReasonAccessDenied}, {key: "a/2", failReason: rekey.ReasonInvalidRequest},
				{key: "a/3"}}, messageBytes: 64 << 10},
			run: func(t *testing.T, r *run) {
				r.drain(t, false)
				if n := len(r.w.queues[dlqURL]); n != 2 {
					t.Fatalf("%d dead letters, want 2", n)
				}
				r.finishWithRedrive(t, true)
				wantOutcomes(t, r, map[string]int64{"updated": 3})
			},
		},
		{
			// Two objects of one task out of attempts with different last
			// errors: two dead letters of one task and one reason.
			name: "dead letters of one task with different last errors",
			spec: spec{objects: []objectSpec{{key: "a/1", flaky: 3, flakyAs: "InternalError"}, {key: "a/2", flaky: 3, flakyAs: "ServiceUnavailable"},
				{key: "a/3"}}, messageBytes: 64 << 10},
			run: func(t *testing.T, r *run) {
				r.drain(t, false)
				if n := len(r.w.queues[dlqURL]); n != 2 {
					t.Fatalf("%d dead letters, want 2", n)
				}
				wantOutcomes(t, r, map[string]int64{"updated": 1, "failed: attempts-exhausted": 2})
				r.finishWithRedrive(t, true)
				wantOutcomes(t, r, map[string]int64{"updated": 3})
			},
		},
		{
			// The listing is delivered, a new object appears before the
			// objects it listed, and the listing is delivered again.
			name: "a listing replayed on a live bucket",
			spec: spec{objects: keys("b/", 40), messageBytes: 1400},
			run: func(t *testing.T, r *run) {
				r.listed = true
				r.invoke(t, controlURL, r.w.visible(controlURL)[:1], nil, false)
				r.putKey(t, "a/000", false)
				r.w.enqueue(controlURL, r.control)
				r.drain(t, false)
				wantOutcomes(t, r, map[string]int64{"updated": 40})
			},
		},
		{
			// Sixty tasks of one object each in one batch, then sixty dead
			// letters redriven in one batch.
			name: "batches over 40 deliveries",
			spec: spec{objects: deniedKeys("c/", 60), messageBytes: 1},
			run: func(t *testing.T, r *run) {
				r.invoke(t, controlURL, r.w.visible(controlURL)[:1], nil, false)
				r.deliverAll(t)
				r.drain(t, false)
				if n := len(r.w.queues[dlqURL]); n != 60 {
					t.Fatalf("%d dead letters, want 60", n)
				}
				r.finishWithRedrive(t, true)
				wantOutcomes(t, r, map[string]int64{"updated": 60})
			},
		},
		{
			// Dead letters redriven while their objects still fail, then
			// again once fixed.
			name: "a second redrive",
			spec: spec{objects: append(deniedKeys("a/", 3), keys("b/", 3)...), messageBytes: 1500},
			run: func(t *testing.T, r *run) {
				r.drain(t, false)
				r.redrive(t, true, false)
				r.drain(t, false)
				r.check(t)
				r.finishWithRedrive(t, false)
				wantOutcomes(t, r, map[string]int64{"updated": 6})
			},
		},
		{
			// The job's last commit finishes it and writing its report
			// manifest fails.
			name: "the last completion step fails",
			spec: spec{objects: keys("a/", 4), messageBytes: 64 << 10},
			run: func(t *testing.T, r *run) {
				r.w.failPut["manifest.json"] = 1
				r.drain(t, false)
				wantOutcomes(t, r, map[string]int64{"updated": 4})
			},
		},
		{
			// A message sent by someone else: a copy of a real dead letter
			// with another object, claiming its objects were counted failed.
			name: "a forged prior outcome",
			spec: spec{objects: []objectSpec{{key: "a/1", failReason: rekey.ReasonAccessDenied}, {key: "a/2"}}, messageBytes: 64 << 10},
			run: func(t *testing.T, r *run) {
				r.drain(t, false)
				before := r.check(t)
				dead := r.w.queues[dlqURL]
				if len(dead) != 1 {
					t.Fatalf("%d dead letters, want 1", len(dead))
				}
				forged, err := messages.Decode(dead[0].body)
				if err != nil {
					t.Fatal(err)
				}
				forged.Objects = []messages.Object{{Bucket: r.bucket, Key: "a/2"}}
				forged.Prior = "failed: access-denied"
				body, err := forged.Encode()
				if err != nil {
					t.Fatal(err)
				}
				r.w.enqueue(workURL, body)
				r.drain(t, false)
				if after := r.check(t); after != before {
					t.Fatalf("a forged message changed the job:\nbefore %s\nafter  %s", before, after)
				}
				wantOutcomes(t, r, map[string]int64{"updated": 1, "failed: access-denied": 1})
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := m.newRunWith(t, 7, &tc.spec)
			tc.run(t, r)
			r.check(t)
		})
	}
}

// TestModelLastReceiveIsDeadLetteredWithItsReason: a task whose retry
// cannot be sent (the work queue refuses every send) fails each delivery;
// on the last one (maxReceives) the function dead-letters it itself, with
// why, rather than leave SQS to move it without a reason; once the queue
// takes sends again, a redrive finishes the job exactly.
func TestModelLastReceiveIsDeadLetteredWithItsReason(t *testing.T) {
	m := newModel(t)
	r := m.newRunWith(t, 13, &spec{objects: []objectSpec{{key: "a/1", flaky: maxReceives, flakyAs: "InternalError"}, {key: "a/2"}},
		messageBytes: 64 << 10})
	r.invoke(t, controlURL, r.w.visible(controlURL)[:1], nil, false)
	r.w.down = map[string]bool{workURL: true}
	for range maxReceives {
		work := r.w.visible(workURL)
		if len(work) != 1 {
			t.Fatalf("%d work messages visible, want the task:\n%s", len(work), r.dump())
		}
		r.invoke(t, workURL, work, nil, false)
		r.w.clock.advance(visibilityTimeout)
	}
	if len(r.w.silentMoves) > 0 {
		t.Fatalf("moved to the DLQ by SQS without a reason: %v", r.w.silentMoves)
	}
	dead := r.w.queues[dlqURL]
	if len(dead) != 1 || dead[0].bySQS || !strings.HasPrefix(dead[0].attrs[encrypt.AttrReason], "gave up after 5 deliveries: a follow-up could not be sent") {
		t.Fatalf("dead letters %+v, want the task dead-lettered by the function with why", dead)
	}
	r.w.down = nil
	r.redrive(t, true, false)
	r.drain(t, false)
	// a/2 was updated on the first delivery, which could not commit.
	wantOutcomes(t, r, map[string]int64{"compliant": 1, "updated": 1})
}

// TestModelCancelledJobStaysAsClosed: a job cancelled midway keeps the
// counts and report it was closed with, whatever is delivered after: its
// tasks still queued, a replay of its listing (a control message the
// planner drops), a second listing range.
func TestModelCancelledJobStaysAsClosed(t *testing.T) {
	m := newModel(t)
	r := m.newRunWith(t, 11, &spec{objects: keys("b/", 30), messageBytes: 1400})
	ctx := context.Background()
	r.listed = true
	r.invoke(t, controlURL, r.w.visible(controlURL)[:1], nil, false)
	if work := r.w.visible(workURL); len(work) < 2 {
		t.Fatalf("the listing sent %d tasks, want several", len(work))
	} else {
		r.invoke(t, workURL, work[:1], nil, false)
	}
	if _, err := r.committer.Cancel(ctx, r.jobID, "closed midway"); err != nil {
		t.Fatal(err)
	}
	closed := jobSnapshot(t, r)
	r.w.enqueue(controlURL, r.control)
	r.drain(t, false)
	if after := jobSnapshot(t, r); after != closed {
		t.Fatalf("deliveries after the cancellation changed the job:\nclosed %s\nafter  %s", closed, after)
	}
	if dropped := r.planner.Dropped(); dropped != 1 {
		t.Errorf("the planner dropped %d control messages of the cancelled job, want 1 (its listing's replay)", dropped)
	}
}

// jobSnapshot is what a closed job shows: its state, reason, counts and
// the report its manifest lists.
func jobSnapshot(t *testing.T, r *run) string {
	t.Helper()
	j, err := r.store.Get(context.Background(), r.jobID)
	if err != nil {
		t.Fatal(err)
	}
	rows := r.checkManifest(t, j.ReportManifest)
	return fmt.Sprintf("%s (%s) planned %d done %d rows %d outcomes %v report %s with %d rows", j.State, j.TerminalReason, j.Planned, j.Done,
		j.Rows, j.Outcomes, j.ReportManifest, len(rows))
}

func deniedKeys(prefix string, n int) []objectSpec {
	out := keys(prefix, n)
	for i := range out {
		out[i].failReason = rekey.ReasonAccessDenied
	}
	return out
}

// wantOutcomes checks the job is finished with exactly these outcomes.
func wantOutcomes(t *testing.T, r *run, want map[string]int64) {
	t.Helper()
	r.check(t)
	j, err := r.store.Get(context.Background(), r.jobID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(j.Outcomes) != fmt.Sprint(want) {
		t.Fatalf("job %s %s: outcomes %v, want %v", j.ID, j.State, j.Outcomes, want)
	}
	if want := jobs.StateComplete; j.Failures() > 0 {
		if j.State != jobs.StateCompleteWithFailures {
			t.Fatalf("job %s is %s with %d failures", j.ID, j.State, j.Failures())
		}
	} else if j.State != want {
		t.Fatalf("job %s is %s, want %s", j.ID, j.State, want)
	}
}
