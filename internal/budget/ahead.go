package budget

import (
	"context"
	"time"
)

// Requests ahead: an upload is enforced before the backfill's objects,
// whatever the backfill's backlog. Its requests are "ahead": they wait
// only for other requests ahead (Wait), or not at all (Take), and the
// budget's other users yield to them:
//
//   - in this member, a request ahead takes a slot from the schedule: when
//     none is reserved it pushes the schedule back by its own spacing;
//     otherwise it is owed (debt) and the next reserved request that
//     comes due gives its slot up and takes a new one at the end;
//   - across members, each heartbeat carries the member's rate of requests
//     ahead per scope, and the others pace at the budget less that rate,
//     shared among them (within a heartbeat interval of a change).
//
// A scope's requests ahead are themselves held to the budget, shared among
// the members sending them (their own scope in the record, "ahead:"+scope):
// ahead of the backfill, never beyond the budget.

type aheadKey struct{}

// Ahead marks ctx's requests as going ahead of the others under every
// budget they wait for.
func Ahead(ctx context.Context) context.Context { return context.WithValue(ctx, aheadKey{}, true) }

// IsAhead reports requests marked by Ahead.
func IsAhead(ctx context.Context) bool { v, _ := ctx.Value(aheadKey{}).(bool); return v }

// aheadScope is the record's name of the requests ahead in scope.
func aheadScope(scope string) string { return "ahead:" + scope }

// minYieldShare is the least share of its budget the others keep while
// requests ahead use the rest: their schedule slows to a crawl, not to a
// spacing of centuries that would outlast the requests ahead.
const minYieldShare = 0.01

// waitAhead is Wait for a request ahead: it waits behind other requests
// ahead only, and the scope's other requests yield to it.
func (p *Pacer) waitAhead(ctx context.Context, scope string, perSecond float64, n int) error {
	if err := p.heartbeat(ctx, aheadScope(scope)); err != nil {
		return err
	}
	p.mu.Lock()
	now := p.now()
	own := p.scopes[aheadScope(scope)]
	start := own.next
	if floor := now.Add(-burst); start.Before(floor) {
		start = floor
	}
	own.next = start.Add(spacing(n, p.shareLocked(aheadScope(scope), perSecond)))
	p.yieldLocked(scope, perSecond, n, now)
	p.mu.Unlock()
	return p.pause(ctx, start.Sub(now))
}

// Take counts n requests ahead under the budget of perSecond in scope
// without waiting: the budget's other users yield to them. It returns the
// heartbeat's error when the members are not known.
func (p *Pacer) Take(ctx context.Context, scope string, perSecond float64, n int) error {
	if perSecond <= 0 || n <= 0 {
		return nil
	}
	if err := p.heartbeat(ctx, aheadScope(scope)); err != nil {
		return err
	}
	p.mu.Lock()
	p.yieldLocked(scope, perSecond, n, p.now())
	p.mu.Unlock()
	return nil
}

// yieldLocked makes scope's other requests in this member yield n
// requests' worth of their schedule, and counts them for the heartbeat.
func (p *Pacer) yieldLocked(scope string, perSecond float64, n int, now time.Time) {
	sc := p.scopes[scope]
	if sc == nil {
		sc = &pace{} // never used: not named by the heartbeat
		p.scopes[scope] = sc
	}
	sc.sentAhead += float64(n)
	share := p.yieldingShareLocked(scope, perSecond)
	if !sc.next.After(now) {
		// Nothing reserved: the next request starts after this one's slot.
		if floor := now.Add(-burst); sc.next.Before(floor) {
			sc.next = floor
		}
		sc.next = sc.next.Add(spacing(n, share))
		return
	}
	// Slots are reserved: the next ones to come due give theirs up, but
	// never more than are reserved.
	reserved := sc.next.Sub(now).Seconds() * share
	sc.debt = min(sc.debt+float64(n), reserved)
}

// yieldingShareLocked is this member's share of a budget of perSecond in
// scope for the requests that are not ahead: the budget less what the
// other members send ahead, shared among the members using it.
func (p *Pacer) yieldingShareLocked(scope string, perSecond float64) float64 {
	left := max(perSecond-p.othersAhead[scope], perSecond*minYieldShare)
	return left / float64(max(1, p.counts[scope]))
}

// aheadRatesLocked is this member's requests ahead a second per scope
// since the last call, and starts the next count.
func (p *Pacer) aheadRatesLocked(now time.Time) map[string]float64 {
	out := map[string]float64{}
	elapsed := now.Sub(p.aheadSince).Seconds()
	for name, sc := range p.scopes {
		if sc.sentAhead > 0 && !p.aheadSince.IsZero() && elapsed > 0 {
			out[name] = sc.sentAhead / elapsed
		}
		sc.sentAhead = 0
	}
	p.aheadSince = now
	return out
}
