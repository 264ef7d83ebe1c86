package encrypt

// The circuit breaker. A target key S3 cannot use (disabled, pending
// deletion, its key policy not letting S3 use it, a key of another account
// S3 refuses), an alias that left the trusted keys, or an endpoint that
// answers as no S3 does would otherwise turn every object into a dead
// letter, or worse, an overwritten object. The breaker pauses the affected
// scope instead: no request is sent for its objects, none is dead-lettered,
// and their messages go back to the work queue with a long delay (each
// re-send starts the message's retention period again, so nothing expires)
// until the cause is gone. A pause is shared by every invocation through
// the jobs table (pausetable.go); it ends by a probe (one object let
// through per probe interval, across the deployment), by the key resolver
// seeing the key usable again, or by `s3rekey resume`.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/keyalias"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// Pause scopes: a target key, a bucket, or every object of the deployment.
const (
	ScopeKeyPrefix    = "key:"
	ScopeBucketPrefix = "bucket:"
	ScopeAll          = "all"
)

// Pause reasons.
const (
	PauseKeyDisabled        = "key-disabled"
	PauseKeyPendingDeletion = "key-pending-deletion"
	PauseKeyNotFound        = "key-not-found"
	PauseKeyAccessDenied    = "key-access-denied"
	PauseKeyOtherAccount    = "key-other-account"
	PauseUntrustedKey       = "untrusted-key"
	PauseNotS3              = "not-s3"
	PauseAccessDeniedStreak = "access-denied-streak"
)

// ReasonPaused is the retry reason of an object its scope's pause holds.
const ReasonPaused = "paused"

// NotS3Code is the error code DetectNotS3 answers with.
const NotS3Code = "S3RekeyNotS3Endpoint"

// Pause is one paused scope.
type Pause struct {
	Scope  string    `json:"scope"`
	Reason string    `json:"reason"`
	Detail string    `json:"detail"`
	Since  time.Time `json:"since"`
	// ProbeAt is when the next probe may run; zero for a pause only
	// `s3rekey resume` ends (an endpoint that is not S3: a probe would
	// overwrite one more object).
	ProbeAt time.Time `json:"probeAt,omitzero"`
}

// Probes reports a pause that ends by itself once its cause is fixed.
func (p Pause) Probes() bool { return !p.ProbeAt.IsZero() }

// PauseStore is the deployment's shared record of pauses (PauseTable in
// production).
type PauseStore interface {
	// Pauses lists the scopes paused now.
	Pauses(ctx context.Context) ([]Pause, error)
	// Trip records a pause; a scope paused already keeps its record.
	Trip(ctx context.Context, p Pause) error
	// ClaimProbe moves a pause's next probe from probeAt to next, and
	// reports whether this caller won it (one probe per interval across
	// the deployment).
	ClaimProbe(ctx context.Context, scope string, probeAt, next time.Time) (bool, error)
	// Resume ends a pause.
	Resume(ctx context.Context, scope string) error
}

// Breaker defaults.
const (
	DefaultBreakerRefresh = 30 * time.Second
	DefaultProbeInterval  = 5 * time.Minute
	// DefaultPausedRetryDelay is SQS's longest message delay (900 s).
	DefaultPausedRetryDelay = 900 * time.Second
)

// Breaker holds the pauses of one process, read from the store at most
// every Refresh. The zero value (with or without a Store) works; without a
// Store pauses are this process's only.
type Breaker struct {
	Store PauseStore
	// Refresh is how often the shared pauses are read again (default 30 s);
	// ProbeInterval how often a paused scope lets one object through
	// (default 5 min).
	Refresh, ProbeInterval time.Duration
	Now                    func() time.Time
	Logger                 *slog.Logger
	// Metrics receives the Paused metric (EMF) while a scope is paused.
	Metrics io.Writer

	mu     sync.Mutex
	pauses map[string]Pause
	readAt time.Time
	// proven is when a probe last succeeded per scope: the key resolver's
	// report of a key state is up to its TTL old, and does not pause a
	// scope a probe has just shown working.
	proven map[string]time.Time
}

func (b *Breaker) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Breaker) logger() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

// current returns the pauses, reading the store when the last read is
// older than Refresh. A failed read keeps the last known pauses.
func (b *Breaker) current(ctx context.Context) map[string]Pause {
	b.mu.Lock()
	defer b.mu.Unlock()
	refresh := b.Refresh
	if refresh <= 0 {
		refresh = DefaultBreakerRefresh
	}
	now := b.now()
	if b.Store != nil && (b.readAt.IsZero() || now.Sub(b.readAt) >= refresh) {
		b.readAt = now
		list, err := b.Store.Pauses(ctx)
		if err != nil {
			b.logger().Warn("reading the paused scopes failed; the last known are kept", "error", err)
		} else {
			b.pauses = make(map[string]Pause, len(list))
			for _, p := range list {
				b.pauses[p.Scope] = p
			}
		}
	}
	if b.pauses == nil {
		b.pauses = map[string]Pause{}
	}
	return b.pauses
}

// Paused lists the scopes paused now, sorted.
func (b *Breaker) Paused(ctx context.Context) []Pause {
	m := b.current(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Pause, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scope < out[j].Scope })
	return out
}

// trip pauses a scope, here at once and in the store for the others.
func (b *Breaker) trip(ctx context.Context, scope, reason, detail string, probes bool) {
	now := b.now()
	p := Pause{Scope: scope, Reason: reason, Detail: truncate(detail, 512), Since: now}
	if probes {
		p.ProbeAt = now.Add(b.probeInterval())
	}
	b.current(ctx)
	b.mu.Lock()
	_, known := b.pauses[scope]
	if !known {
		b.pauses[scope] = p
	}
	b.mu.Unlock()
	if known {
		return
	}
	b.logger().Error("circuit breaker: paused; no request is sent for it and nothing is dead-lettered until it is fixed",
		"scope", scope, "reason", reason, "detail", p.Detail, "resume", "fix the cause (a probe resumes it) or run s3rekey resume")
	if b.Store != nil {
		if err := b.Store.Trip(context.WithoutCancel(ctx), p); err != nil {
			b.logger().Error("circuit breaker: recording the pause failed; other invocations learn of it themselves", "scope", scope, "error", err)
		}
	}
}

// resume ends a pause here and in the store.
func (b *Breaker) resume(ctx context.Context, scope, why string) {
	b.mu.Lock()
	_, known := b.pauses[scope]
	delete(b.pauses, scope)
	b.mu.Unlock()
	if !known {
		return
	}
	b.logger().Warn("circuit breaker: resumed", "scope", scope, "why", why)
	if b.Store != nil {
		if err := b.Store.Resume(context.WithoutCancel(ctx), scope); err != nil {
			b.logger().Error("circuit breaker: recording the resume failed", "scope", scope, "error", err)
		}
	}
}

func (b *Breaker) probeInterval() time.Duration {
	if b.ProbeInterval <= 0 {
		return DefaultProbeInterval
	}
	return b.ProbeInterval
}

// hold returns the pause that holds an object of bucket under key, if any,
// and whether this object is the scope's probe.
func (b *Breaker) hold(ctx context.Context, bucket, key string) (Pause, bool, bool) {
	pauses := b.current(ctx)
	b.mu.Lock()
	var found Pause
	held := false
	for _, scope := range []string{ScopeAll, ScopeKeyPrefix + key, ScopeBucketPrefix + bucket} {
		if p, ok := pauses[scope]; ok {
			found, held = p, true
			break
		}
	}
	b.mu.Unlock()
	if !held || !found.Probes() || b.now().Before(found.ProbeAt) {
		return found, held, false
	}
	next := b.now().Add(b.probeInterval())
	won := true
	if b.Store != nil {
		var err error
		if won, err = b.Store.ClaimProbe(ctx, found.Scope, found.ProbeAt, next); err != nil {
			won = false
		}
	}
	b.mu.Lock()
	if p, ok := b.pauses[found.Scope]; ok {
		p.ProbeAt = next
		b.pauses[found.Scope] = p
	}
	b.mu.Unlock()
	return found, true, won
}

// writeMetric prints the Paused metric: the number of paused scopes, with
// no dimension (the alarm's) and per reason.
func (b *Breaker) writeMetric(ctx context.Context) {
	if b.Metrics == nil {
		return
	}
	paused := b.Paused(ctx)
	if len(paused) == 0 {
		return
	}
	writeGauge(b.Metrics, b.now(), "Paused", float64(len(paused)))
}

// Guard wraps a rekeyer with the breaker; keys is the policy source the
// rekeyer reads targets from.
func (b *Breaker) Guard(inner ObjectRekeyer, keys policy.Source) ObjectRekeyer {
	return &guarded{inner: inner, breaker: b, keys: keys}
}

// unusableKeys is what a key resolver reports of its targets' key states.
type unusableKeys interface{ Unusable() map[string]string }

var _ unusableKeys = (*keyalias.Resolver)(nil)

type guarded struct {
	inner    ObjectRekeyer
	breaker  *Breaker
	keys     policy.Source
	streakMu sync.Mutex
	streak   map[string]int // access-denied answers in a row, by bucket
}

// Rekey runs an object unless its scope is paused, and pauses the scope
// when the answer shows the key or the endpoint cannot be used.
func (g *guarded) Rekey(ctx context.Context, obj messages.Object) rekey.Result {
	b := g.breaker
	target := ""
	if g.keys != nil {
		pol, err := g.keys.Current(ctx)
		var untrusted *keyalias.UntrustedKeyError
		switch {
		case errors.As(err, &untrusted):
			b.trip(ctx, ScopeAll, PauseUntrustedKey, err.Error(), true)
			return pausedResult(Pause{Scope: ScopeAll, Reason: PauseUntrustedKey, Detail: err.Error()})
		case err == nil && pol != nil:
			if b.hasPause(ScopeAll, PauseUntrustedKey) {
				b.resume(ctx, ScopeAll, "the policy's aliases resolve to trusted keys again")
			}
		}
		if pol != nil {
			if bkt, ok := pol.Lookup(obj.Bucket); ok {
				target = bkt.KMSKeyARN
			}
		}
		g.keyStates(ctx, target)
	}
	p, held, probe := b.hold(ctx, obj.Bucket, target)
	if held && !probe {
		return pausedResult(p)
	}
	res := g.inner.Rekey(ctx, obj)
	if scope, reason, probes := tripSign(res.Outcome, target, obj.Bucket); scope != "" {
		b.trip(ctx, scope, reason, res.Detail, probes)
		res.Outcome = pausedResult(Pause{Scope: scope, Reason: reason, Detail: res.Detail}).Outcome
		return res
	}
	if probe && succeeded(res.Status) {
		b.mu.Lock()
		if b.proven == nil {
			b.proven = map[string]time.Time{}
		}
		b.proven[p.Scope] = b.now()
		b.mu.Unlock()
		b.resume(ctx, p.Scope, "a probe succeeded")
	}
	if scope, streak := g.deniedStreak(obj.Bucket, res.Outcome); streak {
		// Access denied object after object, with no key named: a bucket
		// that refuses everything (a bucket policy, an SCP, or a KMS
		// refusal whose message names nothing). Paused rather than
		// dead-lettered object by object; a probe that is denied again
		// keeps it paused.
		b.trip(ctx, scope, PauseAccessDeniedStreak, res.Detail, true)
		res.Outcome = pausedResult(Pause{Scope: scope, Reason: PauseAccessDeniedStreak, Detail: res.Detail}).Outcome
		return res
	}
	if probe && res.Status != rekey.Retry && !succeeded(res.Status) {
		// The probe's object failed for a reason of its own; the scope is
		// not proven broken, so the next object tries again.
		b.resume(ctx, p.Scope, "a probe answered "+res.Outcome.String())
	}
	return res
}

// DeniedStreak is how many objects of a bucket in a row may be refused
// with AccessDenied (naming no key) before the bucket is paused.
const DeniedStreak = 25

// deniedStreak counts a bucket's access-denied answers in a row, and
// reports the bucket's scope when the streak is long enough to pause it
// (or the bucket is paused for a streak already: a probe denied again).
func (g *guarded) deniedStreak(bucket string, o rekey.Outcome) (string, bool) {
	scope := ScopeBucketPrefix + bucket
	g.streakMu.Lock()
	defer g.streakMu.Unlock()
	if g.streak == nil {
		g.streak = map[string]int{}
	}
	if o.Status != rekey.Failed || o.Reason != rekey.ReasonAccessDenied {
		if o.Status != rekey.Retry {
			delete(g.streak, bucket)
		}
		return "", false
	}
	g.streak[bucket]++
	return scope, g.streak[bucket] >= DeniedStreak || g.breaker.hasPause(scope, PauseAccessDeniedStreak)
}

// keyStates pauses a target the key resolver reports disabled or pending
// deletion, and resumes a key pause the resolver sees usable again.
func (g *guarded) keyStates(ctx context.Context, target string) {
	ks, ok := g.keys.(unusableKeys)
	if !ok || target == "" {
		return
	}
	scope := ScopeKeyPrefix + target
	state := ks.Unusable()[target]
	if state != "" && g.breaker.provenWithin(scope, keyalias.DefaultTTL) {
		return
	}
	switch state {
	case "":
		if g.breaker.hasPause(scope, PauseKeyDisabled) || g.breaker.hasPause(scope, PauseKeyPendingDeletion) {
			g.breaker.resume(ctx, scope, "DescribeKey shows the key enabled")
		}
	case "PendingDeletion":
		g.breaker.trip(ctx, scope, PauseKeyPendingDeletion, (&keyalias.UnusableKeyError{KeyARN: target, State: state}).Error(), true)
	default:
		g.breaker.trip(ctx, scope, PauseKeyDisabled, (&keyalias.UnusableKeyError{KeyARN: target, State: state}).Error(), true)
	}
}

// provenWithin reports a probe of scope that succeeded within d.
func (b *Breaker) provenWithin(scope string, d time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	at, ok := b.proven[scope]
	return ok && b.now().Sub(at) < d
}

func (b *Breaker) hasPause(scope, reason string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pauses[scope]
	return ok && p.Reason == reason
}

func succeeded(s rekey.Status) bool {
	switch s {
	case rekey.Updated, rekey.Copied, rekey.Compliant, rekey.Gone, rekey.Skipped, rekey.WouldUpdate, rekey.WouldCopy:
		return true
	}
	return false
}

func pausedResult(p Pause) rekey.Result {
	return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: ReasonPaused, Detail: p.Scope + ": " + p.Reason}}
}

// IsPaused reports an outcome the breaker holds back.
func IsPaused(o rekey.Outcome) bool { return o.Status == rekey.Retry && o.Reason == ReasonPaused }

// writeGauge prints one EMF document of a dimensionless metric.
func writeGauge(w io.Writer, now time.Time, name string, value float64) {
	doc := map[string]any{
		"_aws": map[string]any{
			"Timestamp": now.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  MetricsNamespace,
				"Dimensions": [][]string{{}},
				"Metrics":    []any{map[string]string{"Name": name, "Unit": "Count"}},
			}},
		},
		name: value,
	}
	line, _ := json.Marshal(doc)
	_, _ = w.Write(append(line, '\n'))
}

// holdWhole sends a tracked message whose every object the breaker held
// back to the work queue as it came, with the paused delay, and gives up
// this delivery's claim: the task is neither run nor committed, so its
// next delivery claims it afresh, and its id does not grow however long the
// pause lasts. A message only partly held goes the follow-up way.
func (h *Handler) holdWhole(ctx context.Context, i int, rec events.SQSMessage, w *messageWork, cfg Config, token string, sum *Summary) (outgoing, bool) {
	if h.Jobs == nil || w.task.ID == "" || w.notRun {
		return outgoing{}, false
	}
	held := 0
	for j, obj := range w.task.Objects {
		if obj.Skip != "" {
			continue
		}
		if !w.started[j] || !IsPaused(w.outcomes[j]) {
			return outgoing{}, false
		}
		held++
	}
	if held == 0 {
		return outgoing{}, false
	}
	w.notRun = true
	sum.Requeued += held
	h.Jobs.Release(context.WithoutCancel(ctx), token, []jobs.Task{{JobID: w.task.JobID, MessageID: w.task.ID}})
	delay := int32(max(cfg.PausedRetryDelay/time.Second, 1))
	h.logger().Info("task held by the circuit breaker", "messageId", rec.MessageId, "task", w.task.ID, "objects", held, "delaySeconds", delay)
	return outgoing{i, cfg.pathOf(w.task).queue, queue.Message{Body: rec.Body, DelaySeconds: delay}}, true
}
