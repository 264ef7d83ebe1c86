package budget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
)

// Members is the shared record of who paces under which budget (Table in
// production).
type Members interface {
	// Beat records that member paces under scopes until the given time,
	// with the rate of requests a second it sent ahead of them per scope
	// (ahead.go), and returns, per scope, how many members' records are
	// current and the ahead rates of those records together.
	Beat(ctx context.Context, member string, scopes []string, ahead map[string]float64, until, now time.Time) (map[string]int, map[string]float64, error)
}

var _ Members = (*Table)(nil)

// DefaultInterval is how often a member writes its heartbeat.
const DefaultInterval = 5 * time.Second

// burst is how far a pace that fell behind (an idle member) may catch up
// at once: a tenth of a second's worth of its share.
const burst = 100 * time.Millisecond

// Pacer paces one process's requests under the shared budgets. The zero
// value (with Members set) is ready to use; it is safe for concurrent use.
type Pacer struct {
	Members Members
	// Interval is how often the heartbeat is written (default
	// DefaultInterval). A member's record lasts two intervals, so the
	// others learn of a member that left within two intervals.
	Interval time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// sleep waits d or until ctx ends (nil: a timer); tests advance a fake
	// clock instead.
	sleep func(ctx context.Context, d time.Duration) error

	idOnce sync.Once
	id     string

	mu     sync.Mutex
	scopes map[string]*pace
	counts map[string]int  // members per scope at the last heartbeat
	beaten time.Time       // when the last heartbeat succeeded; zero before the first
	known  map[string]bool // scopes the last heartbeat named
	// othersAhead is, per scope, the requests a second the other members
	// send ahead of the budget's other users (ahead.go), as of the last
	// heartbeat; aheadSince is when this member's own count began.
	othersAhead map[string]float64
	aheadSince  time.Time

	beatMu sync.Mutex // one heartbeat at a time
}

// pace is one scope's schedule: the earliest time its next request may
// start, and when it was last used; and what this member sent ahead of
// the scope's schedule (ahead.go): the requests its schedule still owes
// them (debt), and the requests since the last heartbeat (sentAhead).
type pace struct {
	next, used time.Time
	debt       float64
	sentAhead  float64
}

// Wait blocks until n requests of scope may start under a budget of
// perSecond for the whole deployment, or returns the context's error, or
// the heartbeat's when the members are not known. A budget of zero or less
// is no budget: Wait returns at once.
func (p *Pacer) Wait(ctx context.Context, scope string, perSecond float64, n int) error {
	if perSecond <= 0 || n <= 0 {
		return nil
	}
	if IsAhead(ctx) {
		return p.waitAhead(ctx, scope, perSecond, n)
	}
	if err := p.heartbeat(ctx, scope); err != nil {
		return err
	}
	for {
		p.mu.Lock()
		now := p.now()
		sc := p.scopes[scope] // made, and marked used, by heartbeat
		start := sc.next
		if floor := now.Add(-burst); start.Before(floor) {
			start = floor
		}
		sc.next = start.Add(spacing(n, p.yieldingShareLocked(scope, perSecond)))
		p.mu.Unlock()
		if err := p.pause(ctx, start.Sub(now)); err != nil {
			return err
		}
		// A slot reserved before requests went ahead (ahead.go) is given
		// up to them: this request takes a new one, at the end.
		p.mu.Lock()
		yielded := sc.debt >= float64(n)
		if yielded {
			sc.debt -= float64(n)
		}
		p.mu.Unlock()
		if !yielded {
			return nil
		}
	}
}

// pause waits d (nothing for d <= 0) or until ctx ends.
func (p *Pacer) pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if p.sleep != nil {
		return p.sleep(ctx, d)
	}
	return sleep(ctx, d)
}

// maxSpacing is the longest spacing a time.Duration holds (about 292
// years): a budget so small that its spacing is longer is, in practice,
// "after this one, none": the pace saturates there instead of overflowing.
const maxSpacing = time.Duration(math.MaxInt64)

// spacing is how long n requests take at perSecond (> 0): n/perSecond
// seconds, rounded down to the nanosecond, saturated at maxSpacing. A
// float64 beyond the int64 range does not convert to a time.Duration (Go
// leaves the result to the platform: the most negative duration on amd64,
// which made a tiny budget pace nothing); a huge budget spaces requests by
// nothing at all.
func spacing(n int, perSecond float64) time.Duration {
	ns := float64(n) / perSecond * float64(time.Second)
	if ns >= float64(maxSpacing) || math.IsInf(ns, 1) || math.IsNaN(ns) {
		return maxSpacing
	}
	return time.Duration(ns)
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// heartbeat keeps the member's record current. It beats and waits when
// the scope is new to the record or the record is about to expire (the
// others would then speed up while this member still sends), and beats in
// the background when an interval has passed.
//
// A member's first heartbeat is written twice, a twentieth of an interval
// apart, before it sends anything: members that start together (a cold
// start of many environments) then count each other from their first
// request. One that joins later is counted by the others at their next
// heartbeat, within an interval.
func (p *Pacer) heartbeat(ctx context.Context, scope string) error {
	interval := p.interval()
	p.mu.Lock()
	if p.scopes == nil {
		p.scopes, p.counts, p.known = map[string]*pace{}, map[string]int{}, map[string]bool{}
	}
	if p.scopes[scope] == nil {
		p.scopes[scope] = &pace{}
	}
	p.scopes[scope].used = p.now()
	age := p.now().Sub(p.beaten)
	must := p.beaten.IsZero() || !p.known[scope] || age >= interval*3/2
	p.mu.Unlock()
	switch {
	case must:
		p.beatMu.Lock()
		defer p.beatMu.Unlock()
		p.mu.Lock()
		joining := p.beaten.IsZero()
		done := !joining && p.known[scope] && p.now().Sub(p.beaten) < interval*3/2
		p.mu.Unlock()
		if done { // another caller beat meanwhile
			return nil
		}
		if err := p.beat(ctx); err != nil || !joining {
			return err
		}
		if err := sleep(ctx, interval/20); err != nil {
			return err
		}
		return p.beat(ctx)
	case age >= interval:
		if p.beatMu.TryLock() {
			go func() {
				defer p.beatMu.Unlock()
				// A failure is retried on the next request, and waited for
				// before the record expires.
				_ = p.beat(context.WithoutCancel(ctx))
			}()
		}
	}
	return nil
}

// beat writes the heartbeat with the scopes used within two intervals and
// reads the member counts. The caller holds beatMu.
func (p *Pacer) beat(ctx context.Context) error {
	interval := p.interval()
	p.mu.Lock()
	now := p.now()
	var scopes []string
	for name, sc := range p.scopes {
		if now.Sub(sc.used) < 2*interval {
			scopes = append(scopes, name)
		}
	}
	mine := p.aheadRatesLocked(now)
	p.mu.Unlock()
	sort.Strings(scopes)
	counts, ahead, err := p.Members.Beat(ctx, p.member(), scopes, mine, now.Add(2*interval), now)
	if err != nil {
		return fmt.Errorf("budget: heartbeat: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts, p.beaten = counts, now
	p.othersAhead = map[string]float64{}
	for scope, rate := range ahead {
		p.othersAhead[scope] = max(0, rate-mine[scope])
	}
	p.known = map[string]bool{}
	for _, s := range scopes {
		p.known[s] = true
	}
	return nil
}

// share is this member's current share of a budget of perSecond in scope.
func (p *Pacer) share(scope string, perSecond float64) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shareLocked(scope, perSecond)
}

// shareLocked is share with p.mu held.
func (p *Pacer) shareLocked(scope string, perSecond float64) float64 {
	return perSecond / float64(max(1, p.counts[scope]))
}

func (p *Pacer) member() string {
	p.idOnce.Do(func() {
		b := make([]byte, 8)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		p.id = hex.EncodeToString(b)
	})
	return p.id
}

func (p *Pacer) interval() time.Duration {
	if p.Interval > 0 {
		return p.Interval
	}
	return DefaultInterval
}

func (p *Pacer) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
