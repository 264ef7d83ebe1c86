package encrypt

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/budget"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// ObjectRekeyer handles one object (rekey.Rekeyer in production).
type ObjectRekeyer interface {
	Rekey(ctx context.Context, obj messages.Object) rekey.Result
}

// MessageSender sends messages to a queue (queue.Sender in production).
type MessageSender interface {
	Send(ctx context.Context, queueURL string, msgs []queue.Message) []error
}

// JobRecorder commits what a batch did to its jobs (jobs.Committer in
// production).
type JobRecorder interface {
	Claim(ctx context.Context, token string, lease time.Time, tasks []jobs.Task) ([]jobs.Claim, error)
	Commit(ctx context.Context, token string, ds []jobs.Delivery) ([]jobs.Result, error)
	Release(ctx context.Context, token string, tasks []jobs.Task)
	Complete(ctx context.Context, jobIDs ...string) error
	AddUploads(ctx context.Context, bucket string, day time.Time, c jobs.Counts) error
	Wants(o rekey.Outcome) bool
	Sign(ctx context.Context, t *messages.Task) error
	Verify(ctx context.Context, t messages.Task) (bool, error)
}

var (
	_ ObjectRekeyer = (*rekey.Rekeyer)(nil)
	_ MessageSender = (*queue.Sender)(nil)
	_ JobRecorder   = (*jobs.Committer)(nil)
)

// Message attributes s3rekey sets on what it dead-letters.
const (
	AttrOutcome = "s3rekey.outcome"
	AttrReason  = "s3rekey.reason"
	AttrDetail  = "s3rekey.detail"
	AttrSource  = "s3rekey.source-message-id"
	// AttrAttempts is how many times the objects were tried before they
	// were dead-lettered. The dead letter's own task starts at attempt 0,
	// so that a redrive gives its objects a full set of attempts again.
	AttrAttempts = "s3rekey.attempts"
)

// Handler is the encrypt function: it consumes a batch of work-queue
// messages and gives every object in them exactly one terminal outcome, or
// puts it back on the work queue (retry, deadline) or on the DLQ (failed,
// rejected, out of attempts).
type Handler struct {
	Rekeyer ObjectRekeyer
	Sender  MessageSender
	Config  Config
	Logger  *slog.Logger
	// Metrics receives CloudWatch Embedded Metric Format lines (stdout in
	// Lambda); nil discards them.
	Metrics io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnBatch, when set, receives every batch's summary (the CLI's run
	// and demo add them up).
	OnBatch func(Summary)
	// Jobs records outcomes in job records and reports; nil records
	// nothing.
	Jobs JobRecorder
	// Breaker, when set, holds objects of paused scopes (breaker.go); the
	// Rekeyer is then wrapped by Breaker.Guard.
	Breaker *Breaker

	inflight keyLocks
	// window adapts the objects in flight to throttling (see aimd); made
	// on first use with the configured concurrency.
	windowOnce sync.Once
	window     *aimd
}

// outgoing is a message to send on behalf of one incoming message.
type outgoing struct {
	source   int // index of the incoming message
	queueURL string
	msg      queue.Message
}

// messageWork is one decoded incoming message and its objects' outcomes.
type messageWork struct {
	task     messages.Task
	outcomes []rekey.Outcome
	started  []bool
	// duplicate marks an object named earlier in the same batch: it shares
	// that object's outcome and needs no follow-up of its own.
	duplicate []bool
	// notRun marks a tracked task this delivery may not run: committed
	// already, held by another delivery, or a follow-up its parent does
	// not list (yet).
	notRun bool
	// committed marks a tracked task committed by an earlier delivery:
	// this one completes its job if it is finished.
	committed bool
	// children are the tracked follow-ups sent for the task.
	children []jobs.Child
}

type objectRef struct{ i, j int }

// Summary counts the outcomes of one batch.
type Summary struct {
	Messages   int            `json:"messages"`
	Objects    int            `json:"objects"`
	Outcomes   map[string]int `json:"outcomes"` // "status" or "status: reason"
	Requeued   int            `json:"requeued"`
	DeadLetter int            `json:"deadLettered"`
	Failures   int            `json:"batchItemFailures"`
	// Uncounted are tracked messages whose commit found them counted
	// already (duplicates, stale follow-ups) or waiting for their parent.
	Uncounted  int `json:"uncounted"`
	Duplicates int `json:"duplicates"`
	Heads      int `json:"heads"`
	Updates    int `json:"updates"`
}

// Handle is the Lambda handler. It reports a message in BatchItemFailures
// only when something it had to send (a retry, a dead letter) could not be
// sent, so that SQS redelivers the message and nothing is lost.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	resp, _ := h.HandleWithSummary(ctx, ev)
	return resp, nil
}

// HandleWithSummary is Handle that also returns the batch's counts.
func (h *Handler) HandleWithSummary(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, Summary) {
	cfg := h.Config.withDefaults()
	log := h.logger()
	sum := Summary{Messages: len(ev.Records), Outcomes: map[string]int{}}
	work := make([]messageWork, len(ev.Records))
	// redeliver holds the messages to leave to SQS to deliver again, and
	// why.
	redeliver := map[int]string{}
	var out []outgoing

	for i, rec := range ev.Records {
		task, err := messages.Decode(rec.Body)
		var rej *messages.RejectedError
		if errors.As(err, &rej) {
			sum.Outcomes[string(rekey.Rejected)]++
			log.Warn("message rejected", "messageId", rec.MessageId, "reason", rej.Reason)
			out = append(out, outgoing{i, cfg.arrivalPath(rec).dlq, queue.Message{Body: rec.Body, Attributes: map[string]string{
				AttrOutcome: string(rekey.Rejected), AttrReason: truncate(rej.Reason, 256), AttrSource: rec.MessageId}}})
			continue
		}
		if task.ID != "" && h.Jobs != nil {
			task, err = h.verify(ctx, task, rec.MessageId)
			if err != nil {
				// The key could not be read: nothing is run, and SQS
				// delivers the message again.
				log.Warn("task signature not checked; the message will be redelivered", "messageId", rec.MessageId, "error", err)
				redeliver[i] = "the task's signature could not be checked: " + err.Error()
				work[i] = messageWork{task: messages.Task{}, notRun: true}
				continue
			}
		}
		if received, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"]); task.Attempt > 0 || task.Redelivered || received > 1 {
			// A retry or a redelivery (of this message, or of the planner job
			// that made it) may follow an update that already happened: read
			// the object rather than trust the inventory, so that no update
			// is sent to an object already compliant.
			for j := range task.Objects {
				task.Objects[j].Facts = nil
			}
		}
		n := len(task.Objects)
		work[i] = messageWork{task: task, outcomes: make([]rekey.Outcome, n), started: make([]bool, n), duplicate: make([]bool, n)}
		for j, obj := range task.Objects {
			if obj.Skip != "" {
				// Decided by the planner: listed in the report, not run.
				work[i].outcomes[j], work[i].started[j] = plannerOutcome(obj.Skip), true
				continue
			}
			sum.Objects++
		}
	}

	token := newToken()
	var held []outgoing
	if h.Jobs != nil {
		held = h.claim(ctx, cfg, token, ev, work, redeliver, &sum)
	}

	h.rekeyAll(ctx, cfg, work, &sum)

	out = append(out, held...)
	unsigned := map[int]string{}
	for i := range work {
		if o, ok := h.holdWhole(ctx, i, ev.Records[i], &work[i], cfg, token, &sum); ok {
			out = append(out, o)
			continue
		}
		follow, err := h.followUps(ctx, i, ev.Records[i].MessageId, &work[i], cfg, &sum)
		if err != nil {
			log.Error("follow-ups not signed; the message will be redelivered", "messageId", ev.Records[i].MessageId, "error", err)
			unsigned[i] = "its follow-ups could not be signed: " + err.Error()
			continue
		}
		out = append(out, follow...)
	}
	failed, why := h.send(ctx, out)
	for _, m := range []map[int]string{unsigned, redeliver} {
		for i, reason := range m {
			failed[i], why[i] = true, reason
		}
	}
	if h.Jobs != nil {
		h.record(ctx, cfg, token, ev, work, failed, &sum)
	}
	h.deadLetterLastReceives(ctx, cfg, ev, work, failed, why, &sum)
	resp := events.SQSEventResponse{}
	for i := range ev.Records {
		if failed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	sum.Failures = len(resp.BatchItemFailures)
	if h.Breaker != nil {
		h.Breaker.writeMetric(ctx)
	}
	log.Info("batch done", "messages", sum.Messages, "objects", sum.Objects, "outcomes", sum.Outcomes,
		"requeued", sum.Requeued, "deadLettered", sum.DeadLetter, "batchItemFailures", sum.Failures,
		"duplicates", sum.Duplicates, "heads", sum.Heads, "updates", sum.Updates)
	if h.OnBatch != nil {
		h.OnBatch(sum)
	}
	return resp, sum
}

// rekeyAll runs every object of the batch with bounded concurrency and
// stops starting new ones when the invocation deadline is near.
//
// The objects go to at most cfg.Concurrency workers rather than a goroutine
// each: an SDK call needs a deep stack, and growing a fresh goroutine's
// stack for every object cost about a tenth of the handler's CPU.
func (h *Handler) rekeyAll(ctx context.Context, cfg Config, work []messageWork, sum *Summary) {
	objCtx := ctx
	stopStarting := time.Time{}
	if deadline, ok := ctx.Deadline(); ok {
		stopStarting = deadline.Add(-cfg.DeadlineMargin)
		var cancel context.CancelFunc
		// In-flight calls end with half the margin left, for the sends.
		objCtx, cancel = context.WithDeadline(ctx, deadline.Add(-cfg.DeadlineMargin/2))
		defer cancel()
	}
	log := h.logger()
	var mu sync.Mutex
	byBucket := map[[2]string]int{}
	h.windowOnce.Do(func() { h.window = newAIMD(cfg.Concurrency) })
	window := h.window
	rekeyOne := func(ref objectRef) {
		obj := work[ref.i].task.Objects[ref.j]
		unlock := h.inflight.lock(obj.Bucket + "\x00" + obj.Key + "\x00" + obj.VersionID)
		round := window.acquire()
		rekeyCtx := objCtx
		if IsUpload(work[ref.i].task) {
			rekeyCtx = budget.Ahead(objCtx) // uploads first (paths.go)
		}
		res := h.Rekeyer.Rekey(rekeyCtx, obj)
		window.release(round, rekey.Throttled(res.Outcome))
		unlock()
		work[ref.i].outcomes[ref.j] = res.Outcome
		mu.Lock()
		sum.Heads += res.Heads
		sum.Updates += res.Updates
		sum.Outcomes[res.Outcome.String()]++
		byBucket[[2]string{string(res.Status), obj.Bucket}]++
		mu.Unlock()
		switch res.Status {
		case rekey.Updated, rekey.Compliant, rekey.Gone, rekey.WouldUpdate:
		default:
			log.Info("object not updated", "bucket", obj.Bucket, "key", obj.Key, "versionId", obj.VersionID,
				"outcome", string(res.Status), "reason", res.Reason, "detail", res.Detail)
		}
	}
	jobs := make(chan objectRef)
	var wg sync.WaitGroup
	for range min(cfg.Concurrency, sum.Objects) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range jobs {
				rekeyOne(ref)
			}
		}()
	}
	first := map[messages.Object]objectRef{}
	var dups []objectRef
loop:
	for i := range work {
		if work[i].notRun {
			continue
		}
		for j, obj := range work[i].task.Objects {
			if obj.Skip != "" {
				continue
			}
			if !stopStarting.IsZero() && !h.now().Before(stopStarting) {
				break loop
			}
			id := messages.Object{Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID}
			if _, seen := first[id]; seen {
				work[i].started[j], work[i].duplicate[j] = true, true
				dups = append(dups, objectRef{i, j})
				continue
			}
			first[id] = objectRef{i, j}
			select {
			case jobs <- objectRef{i, j}:
			case <-objCtx.Done():
				break loop
			}
			work[i].started[j] = true
		}
	}
	close(jobs)
	wg.Wait()
	for _, d := range dups {
		obj := work[d.i].task.Objects[d.j]
		src := first[messages.Object{Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID}]
		work[d.i].outcomes[d.j] = work[src.i].outcomes[src.j]
	}
	sum.Duplicates = len(dups)
	if h.Metrics != nil {
		writeEMF(h.Metrics, h.now(), byBucket)
	}
}

// followUps builds what must be sent for one message after its objects
// ran: retries back to the work queue (or to the DLQ past the attempt
// limit), failed objects to the DLQ, and objects the deadline left
// unstarted back to the work queue. Failed objects go to the DLQ at once
// rather than through SQS redelivery: redelivering a message would re-run
// all its other objects, and access problems need a person, who redrives
// the DLQ when they are fixed.
func (h *Handler) followUps(ctx context.Context, i int, messageID string, w *messageWork, cfg Config, sum *Summary) ([]outgoing, error) {
	if len(w.task.Objects) == 0 || w.notRun {
		return nil, nil
	}
	tracked := w.task.ID != "" && h.Jobs != nil // without job records, follow-ups carry no job
	back := cfg.pathOf(w.task)
	var retry, unstarted, paused []messages.Object
	deadByReason := map[rekey.Outcome][]messages.Object{}
	lastRetry := rekey.Outcome{}
	onlyWaiting := true
	for j, obj := range w.task.Objects {
		o := w.outcomes[j]
		switch {
		case w.duplicate[j] && !tracked:
			// The first of the batch's copies carries it on. A tracked
			// message carries its own copy, so that its job counts it.
		case obj.Skip != "":
		case !w.started[j]:
			unstarted = append(unstarted, obj)
		case IsPaused(o):
			paused = append(paused, obj) // never exhausted: see breaker.go
		case exhausted(o, w.task.Attempt, cfg):
			key := rekey.Outcome{Status: rekey.Retry, Reason: "attempts-exhausted", Detail: o.Reason}
			deadByReason[key] = append(deadByReason[key], obj)
		case o.Status == rekey.Retry:
			retry = append(retry, obj)
			lastRetry = o
			onlyWaiting = onlyWaiting && rekey.Waiting(o)
		case o.Status == rekey.Failed:
			key := rekey.Outcome{Status: o.Status, Reason: o.Reason}
			deadByReason[key] = append(deadByReason[key], obj)
		}
	}
	var out []outgoing
	// child is a follow-up task: a tracked one is named by its parent and
	// content and signed, and none carries the planner's counts again.
	child := func(objs []messages.Object, attempt int, kind string, dead *rekey.Outcome) (string, error) {
		t := w.task
		t.Objects, t.Attempt, t.Plan, t.Prior, t.ParentToken, t.Sig = objs, attempt, nil, "", "", ""
		if kind == jobs.ChildDead {
			// Attempt 0 and Redelivered: a redriven dead letter gets every
			// attempt again, and re-reads its objects instead of trusting
			// facts that are stale by then.
			t.Redelivered = true
		}
		t.ID, t.Parent = "", ""
		if tracked {
			t.Parent = w.task.ID
			reason := ""
			if dead != nil {
				reason = dead.String()
			}
			t.ID = jobs.ChildID(w.task.ID, kind, childContent(t, reason))
			if err := h.Jobs.Sign(ctx, &t); err != nil {
				return "", err
			}
			c := jobs.Child{ID: t.ID, Kind: kind, Objects: int64(len(objs))}
			if dead != nil {
				c.Outcome = outcomeKey(*dead)
				for _, obj := range objs {
					c.Rows = append(c.Rows, jobs.Row{Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, Outcome: *dead, DeadLetter: t.ID})
				}
			}
			w.children = append(w.children, c)
		}
		// A decoded task always encodes again: Decode validated it.
		body, _ := t.Encode()
		return body, nil
	}
	if len(retry) > 0 {
		delay := h.retryDelay(w.task.Attempt, cfg)
		if onlyWaiting {
			// The window of objects in flight (aimd) or the budget already
			// slows the sender down; the delay only spreads the retries, and
			// a long one leaves the quota unused while they wait.
			delay = min(delay, throttledRetryDelay)
		}
		body, err := child(retry, w.task.Attempt+1, jobs.ChildRetry, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, outgoing{i, back.queue, queue.Message{Body: body, DelaySeconds: delay}})
		sum.Requeued += len(retry)
		h.logger().Info("objects requeued", "messageId", messageID, "objects", len(retry), "attempt", w.task.Attempt+1,
			"delaySeconds", delay, "reason", lastRetry.Reason)
	}
	if len(paused) > 0 {
		// Held by the circuit breaker: back with SQS's longest delay and the
		// same attempt, so that nothing is dead-lettered for the pause.
		delay := int32(max(cfg.PausedRetryDelay/time.Second, 1))
		body, err := child(paused, w.task.Attempt, jobs.ChildRetry, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, outgoing{i, back.queue, queue.Message{Body: body, DelaySeconds: delay}})
		sum.Requeued += len(paused)
		h.logger().Info("objects held by the circuit breaker", "messageId", messageID, "objects", len(paused), "delaySeconds", delay)
	}
	if len(unstarted) > 0 {
		// A second's delay: a follow-up that arrives before its parent's
		// commit waits for it.
		delay := int32(0)
		if tracked {
			delay = 1
		}
		body, err := child(unstarted, w.task.Attempt, jobs.ChildUnstarted, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, outgoing{i, back.queue, queue.Message{Body: body, DelaySeconds: delay}})
		sum.Requeued += len(unstarted)
		h.logger().Info("deadline near: unstarted objects requeued", "messageId", messageID, "objects", len(unstarted))
	}
	for _, o := range sortedOutcomes(deadByReason) {
		objs := deadByReason[o]
		attrs := map[string]string{AttrOutcome: string(o.Status), AttrReason: o.Reason, AttrSource: messageID,
			AttrAttempts: strconv.Itoa(w.task.Attempt + 1)}
		if o.Detail != "" {
			attrs[AttrDetail] = truncate(o.Detail, 256)
		}
		dead := deadOutcome(o)
		body, err := child(objs, 0, jobs.ChildDead, &dead)
		if err != nil {
			return nil, err
		}
		out = append(out, outgoing{i, back.dlq, queue.Message{Body: body, Attributes: attrs}})
		sum.DeadLetter += len(objs)
		h.logger().Warn("objects dead-lettered", "messageId", messageID, "objects", len(objs), "outcome", string(o.Status), "reason", o.Reason)
	}
	return out, nil
}

// exhausted reports a retry that ran out of attempts. Throttling and
// budget waits never do: such an object is tried again, later, however
// often, since the cure is time, not a person.
func exhausted(o rekey.Outcome, attempt int, cfg Config) bool {
	return o.Status == rekey.Retry && !rekey.Waiting(o) && !IsPaused(o) && attempt+1 >= cfg.MaxAttempts
}

// deadOutcome is how a dead-lettered object is counted: failed, with its
// reason (attempts-exhausted for a retry that ran out of attempts).
func deadOutcome(o rekey.Outcome) rekey.Outcome {
	return rekey.Outcome{Status: rekey.Failed, Reason: o.Reason, Detail: o.Detail}
}

func sortedOutcomes(m map[rekey.Outcome][]messages.Object) []rekey.Outcome {
	out := make([]rekey.Outcome, 0, len(m))
	for o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].String() < out[b].String() })
	return out
}

// throttledRetryDelay is the longest delay of a retry of throttled objects.
const throttledRetryDelay = 2

// retryDelay is exponential in the attempt, capped at SQS's 900 s, with
// jitter so that a throttled burst does not come back as one burst.
func (h *Handler) retryDelay(attempt int, cfg Config) int32 {
	d := cfg.RetryBaseDelay << min(attempt, 20)
	if d > 900*time.Second || d <= 0 {
		d = 900 * time.Second
	}
	jittered := d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	return int32(max(jittered.Round(time.Second)/time.Second, 1))
}

// send delivers the follow-ups and reports which incoming messages had one
// that could not be sent, and the error.
func (h *Handler) send(ctx context.Context, out []outgoing) (map[int]bool, map[int]string) {
	failed, why := map[int]bool{}, map[int]string{}
	byQueue := map[string][]outgoing{}
	for _, o := range out {
		byQueue[o.queueURL] = append(byQueue[o.queueURL], o)
	}
	// Sends use a context that outlives the objects' deadline: losing a
	// retry here would turn into a redelivery of the whole message.
	sendCtx := context.WithoutCancel(ctx)
	for url, group := range byQueue {
		msgs := make([]queue.Message, len(group))
		for k, o := range group {
			msgs[k] = o.msg
		}
		for k, err := range h.Sender.Send(sendCtx, url, msgs) {
			if err != nil {
				failed[group[k].source], why[group[k].source] = true, "a follow-up could not be sent: "+err.Error()
				h.logger().Error("follow-up send failed; the message will be redelivered", "queue", url, "error", err)
			}
		}
	}
	return failed, why
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
