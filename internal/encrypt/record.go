package encrypt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// newToken names one delivery of a batch: only the delivery holding a
// task's claim can commit its record.
func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// childContent is what names a follow-up: its objects, attempt and, for a
// dead letter, the outcome it counts under.
func childContent(t messages.Task, reason string) []byte {
	b, _ := json.Marshal(struct {
		Objects []messages.Object `json:"o"`
		Attempt int               `json:"a"`
		Reason  string            `json:"r"`
	}{t.Objects, t.Attempt, reason})
	return b
}

// verify checks a tracked task's signature. A task this deployment did
// not sign (forged, altered, or from before signatures) changes no job:
// its job fields are dropped and its objects run as untracked work, so
// the most it can do is what any sender of the work queue can, ask for
// the objects it names to be brought onto their key.
func (h *Handler) verify(ctx context.Context, t messages.Task, messageID string) (messages.Task, error) {
	ok := jobs.ValidID(t.JobID) && jobs.ValidTaskID(t.ID) && (t.Parent == "" || jobs.ValidTaskID(t.Parent))
	if ok {
		var err error
		if ok, err = h.Jobs.Verify(ctx, t); err != nil || ok {
			return t, err
		}
	}
	h.logger().Warn("tracked task not signed by this deployment: run untracked, counted in no job", "messageId", messageID,
		"job", t.JobID, "task", t.ID)
	t.ID, t.Parent, t.ParentToken, t.Prior, t.Sig, t.Plan = "", "", "", "", "", nil
	for j := range t.Objects {
		t.Objects[j].Skip = ""
	}
	return t, nil
}

// plannerOutcome is the outcome of a row the planner did not send: gone
// for a delete marker, skipped with the reason otherwise.
func plannerOutcome(reason string) rekey.Outcome {
	if reason == inventory.SkipDeleteMarker {
		return rekey.Outcome{Status: rekey.Gone}
	}
	return rekey.Outcome{Status: rekey.Skipped, Reason: reason}
}

// heldDelaySeconds is how long a task another delivery holds waits (that
// delivery commits it, or its lease runs out and this copy takes it
// over).
const heldDelaySeconds = 30

// leaseAfterDeadline is how long past the invocation's deadline a claim
// lasts (the commit runs after the objects' deadline); an invocation
// without a deadline holds its tasks for noDeadlineLease.
const (
	leaseAfterDeadline = 30 * time.Second
	noDeadlineLease    = 15 * time.Minute
)

// claim takes the batch's tracked tasks for this delivery. A task
// committed already is dropped (and its job completed if it is
// finished); one another delivery holds is sent again with a delay; a
// follow-up its parent does not list is dropped; a follow-up whose parent
// has not committed is left to SQS to deliver again (into redeliver), so
// that one whose parent never commits ends in the DLQ rather than waits
// forever; and if the claim itself fails, the task is not run and is
// sent again. It returns the messages to send.
func (h *Handler) claim(ctx context.Context, cfg Config, token string, ev events.SQSEvent, work []messageWork, redeliver map[int]string, sum *Summary) []outgoing {
	var tasks []jobs.Task
	var which []int
	for i := range work {
		if t := work[i].task; t.ID != "" {
			tasks = append(tasks, jobs.Task{JobID: t.JobID, MessageID: t.ID, Parent: t.Parent})
			which = append(which, i)
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	lease := h.now().Add(noDeadlineLease)
	if deadline, ok := ctx.Deadline(); ok {
		lease = deadline.Add(leaseAfterDeadline)
	}
	claims, err := h.Jobs.Claim(context.WithoutCancel(ctx), token, lease, tasks)
	if err != nil {
		h.logger().Warn("claiming tasks failed; the ones not claimed are sent again", "error", err)
	}
	var out []outgoing
	for k, c := range claims {
		i := which[k]
		if c == jobs.Claimed {
			continue
		}
		work[i].notRun = true
		work[i].committed = c == jobs.AlreadyCommitted
		sum.Uncounted++
		for _, obj := range work[i].task.Objects {
			if obj.Skip == "" {
				sum.Objects--
			}
		}
		switch c {
		case jobs.Held:
			out = append(out, outgoing{i, cfg.pathOf(work[i].task).queue, queue.Message{Body: ev.Records[i].Body, DelaySeconds: heldDelaySeconds}})
		case jobs.WaitForParent:
			redeliver[i] = "its parent task has not committed"
		}
		h.logger().Info("task not run", "messageId", ev.Records[i].MessageId, "job", tasks[k].JobID, "task", tasks[k].MessageID, "claim", c.String())
	}
	return out
}

// record commits the batch's tracked messages to their jobs and counts the
// untracked ones (upload events) into their buckets' rolling jobs. A
// message whose follow-ups could not be sent is not committed: it is
// redelivered, and its new delivery commits. A commit that fails marks
// every tracked message of the batch for redelivery; so does a job's
// completion that fails, so that a delivery of its tasks tries it again.
func (h *Handler) record(ctx context.Context, cfg Config, token string, ev events.SQSEvent, work []messageWork, failed map[int]bool, sum *Summary) {
	log := h.logger()
	var ds []jobs.Delivery
	var which []int
	uploads := map[string]*jobs.Counts{}
	var unsent []jobs.Task
	committedJobs := map[string][]int{}
	for i := range work {
		w := &work[i]
		if w.committed {
			committedJobs[w.task.JobID] = append(committedJobs[w.task.JobID], i)
		}
		if failed[i] && w.task.ID != "" && !w.notRun {
			// A follow-up could not be sent: the task is delivered again,
			// and its next delivery may run it at once.
			unsent = append(unsent, jobs.Task{JobID: w.task.JobID, MessageID: w.task.ID})
		}
		if failed[i] || w.notRun || len(w.task.Objects) == 0 && w.task.Plan == nil {
			continue
		}
		if w.task.ID == "" {
			countUpload(w, cfg, uploads)
			continue
		}
		ds = append(ds, h.delivery(w, cfg))
		which = append(which, i)
	}
	h.Jobs.Release(context.WithoutCancel(ctx), token, unsent)
	for bucket, c := range uploads {
		if err := h.Jobs.AddUploads(ctx, bucket, h.now(), *c); err != nil {
			log.Warn("uploads job not counted", "bucket", bucket, "error", err)
		}
	}
	byJob := func(err error) {
		var incomplete *jobs.CompletionError
		if !errors.As(err, &incomplete) {
			return
		}
		log.Warn("completing a finished job failed: its tasks' messages are delivered again to complete it", "jobs", incomplete.Jobs, "error", err)
		for _, id := range incomplete.Jobs {
			for _, i := range committedJobs[id] {
				failed[i] = true
			}
			for k, i := range which {
				if ds[k].JobID == id {
					failed[i] = true
				}
			}
		}
	}
	if len(committedJobs) > 0 {
		byJob(h.Jobs.Complete(context.WithoutCancel(ctx), slices.Sorted(maps.Keys(committedJobs))...))
	}
	if len(ds) == 0 {
		return
	}
	results, err := h.Jobs.Commit(context.WithoutCancel(ctx), token, ds)
	var incomplete *jobs.CompletionError
	if errors.As(err, &incomplete) {
		byJob(err)
		err = nil
	}
	if err != nil {
		log.Error("job commit failed; the batch's tracked messages will be redelivered", "error", err)
		var release []jobs.Task
		for k, i := range which {
			if results[k] == jobs.Committed {
				continue
			}
			failed[i] = true
			release = append(release, jobs.Task{JobID: ds[k].JobID, MessageID: ds[k].MessageID})
		}
		h.Jobs.Release(context.WithoutCancel(ctx), token, release)
		return
	}
	for k, r := range results {
		if r == jobs.Committed {
			continue
		}
		i := which[k]
		sum.Uncounted++
		log.Info("message not counted", "messageId", ev.Records[i].MessageId, "job", ds[k].JobID, "task", ds[k].MessageID, "result", r.String())
	}
}

// counted is how an object's outcome counts in its job: a retry still
// under the attempt limit does not count yet (ok false); one past it was
// dead-lettered, and counts as failed like any dead letter.
func counted(o rekey.Outcome, attempt int, cfg Config) (rekey.Outcome, bool) {
	switch {
	case o.Status == rekey.Retry && !exhausted(o, attempt, cfg):
		return o, false
	case o.Status == rekey.Retry:
		return deadOutcome(rekey.Outcome{Reason: "attempts-exhausted", Detail: o.Reason}), true
	case o.Status == rekey.Failed:
		return deadOutcome(o), true
	}
	return o, true
}

// delivery is what one tracked message did: the planner's counts, the
// terminal outcomes of its own objects, the follow-ups that carry the
// others on (dead letters among them), and the rows its job's report
// lists.
func (h *Handler) delivery(w *messageWork, cfg Config) jobs.Delivery {
	t := w.task
	d := jobs.Delivery{JobID: t.JobID, MessageID: t.ID, Parent: t.Parent, Outcomes: map[string]int64{}, Children: w.children}
	if t.Parent != "" {
		d.Kind, _, _ = strings.Cut(t.ID, "-")
	}
	if p := t.Plan; p != nil {
		d.Root = &jobs.Root{Unit: p.Unit, First: p.First, Next: p.Next, Final: p.Final, UnitRows: p.UnitRows, Rows: p.Rows,
			Skipped: map[string]int64{}}
		for reason, n := range p.Skipped {
			d.Root.Skipped[plannerOutcome(reason).String()] += n
		}
	}
	for j, obj := range t.Objects {
		if obj.Skip != "" {
			if o := w.outcomes[j]; h.Jobs.Wants(o) {
				d.Rows = append(d.Rows, jobs.Row{Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, Outcome: o})
			}
			continue
		}
		if d.Root != nil {
			d.Root.Planned++
		}
		o, ok := counted(w.outcomes[j], t.Attempt, cfg)
		if !w.started[j] || !ok || o.Status == rekey.Failed {
			continue // carried on by a follow-up: a retry, or a dead letter
		}
		d.Outcomes[outcomeKey(o)]++
		if h.Jobs.Wants(o) {
			d.Rows = append(d.Rows, jobs.Row{Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, Outcome: o})
		}
	}
	return d
}

// outcomeKey is how an outcome is counted: its status and reason.
func outcomeKey(o rekey.Outcome) string {
	return rekey.Outcome{Status: o.Status, Reason: o.Reason}.String()
}

// countUpload adds an upload event's outcomes to its bucket's counts.
func countUpload(w *messageWork, cfg Config, uploads map[string]*jobs.Counts) {
	for j, obj := range w.task.Objects {
		o, ok := counted(w.outcomes[j], w.task.Attempt, cfg)
		if !w.started[j] || w.duplicate[j] || !ok {
			continue
		}
		c := uploads[obj.Bucket]
		if c == nil {
			c = &jobs.Counts{Outcomes: map[string]int64{}}
			uploads[obj.Bucket] = c
		}
		c.Planned++
		c.Done++
		c.Outcomes[outcomeKey(o)]++
	}
}
