package budget

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock that sleeping advances.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// members is an in-memory Members: the records of every member.
type members struct {
	mu      sync.Mutex
	records map[string]record
	fail    error
	beats   int
}

type record struct {
	scopes []string
	ahead  map[string]float64
	until  time.Time
}

func (m *members) Beat(_ context.Context, member string, scopes []string, ahead map[string]float64, until, now time.Time) (map[string]int, map[string]float64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.beats++
	if m.fail != nil {
		return nil, nil, m.fail
	}
	if m.records == nil {
		m.records = map[string]record{}
	}
	m.records[member] = record{scopes, ahead, until}
	counts, sums := map[string]int{}, map[string]float64{}
	for _, r := range m.records {
		if r.until.After(now) {
			for _, s := range r.scopes {
				counts[s]++
			}
			for s, rate := range r.ahead {
				sums[s] += rate
			}
		}
	}
	return counts, sums, nil
}

// newPacer returns a pacer on the fake clock whose waits record their start
// times and never block.
func newPacer(c *clock, m Members, starts *[]time.Time, mu *sync.Mutex) *Pacer {
	p := &Pacer{Members: m, Interval: time.Second, Now: c.Now}
	p.sleep = func(_ context.Context, d time.Duration) error {
		mu.Lock()
		*starts = append(*starts, c.Now().Add(d))
		mu.Unlock()
		return nil
	}
	return p
}

// TestBudgetHoldsAcrossMembers runs four members under one budget and
// checks every second of the schedule: the members' requests together
// never exceed the budget (beyond the catch-up of a tenth of a second), and
// use at least 90 % of it once the members count each other.
func TestBudgetHoldsAcrossMembers(t *testing.T) {
	const budget, members4 = 400.0, 4
	c := &clock{now: time.Unix(1e9, 0)}
	m := &members{}
	var mu sync.Mutex
	var starts []time.Time
	pacers := make([]*Pacer, members4)
	for i := range pacers {
		pacers[i] = newPacer(c, m, &starts, &mu)
	}
	ctx := context.Background()
	// The members start together, as a cold start of four environments.
	var join sync.WaitGroup
	for _, p := range pacers {
		join.Add(1)
		go func() {
			defer join.Done()
			if err := p.Wait(ctx, "bucket/b", budget, 1); err != nil {
				t.Error(err)
			}
		}()
	}
	join.Wait()
	// Each member asks for 50 requests every 10 ms of fake time, more than
	// its share, for 20 s.
	for step := 0; step < 2000; step++ {
		for _, p := range pacers {
			for range 50 {
				if err := p.Wait(ctx, "bucket/b", budget, 1); err != nil {
					t.Fatal(err)
				}
			}
		}
		c.advance(10 * time.Millisecond)
	}
	if got := pacers[0].share("bucket/b", budget); got != budget/members4 {
		t.Errorf("share %v, want %v", got, budget/members4)
	}
	// Count starts per second over the time the schedule covers fully.
	begin := time.Unix(1e9, 0)
	perSecond := map[int]int{}
	for _, s := range starts {
		perSecond[int(s.Sub(begin)/time.Second)]++
	}
	for sec := 1; sec < 20; sec++ {
		if n := perSecond[sec]; float64(n) > budget*1.1 || float64(n) < 0.9*budget {
			t.Errorf("second %d: %d requests started, want within 0.9–1.1 × %v", sec, n, budget)
		}
	}
}

// TestMembersThatLeaveGiveBackTheirShare: when three of four members stop,
// their heartbeats expire and the last one speeds up to the whole budget.
func TestMembersThatLeaveGiveBackTheirShare(t *testing.T) {
	c := &clock{now: time.Unix(1e9, 0)}
	m := &members{}
	var mu sync.Mutex
	var starts []time.Time
	var pacers []*Pacer
	var join sync.WaitGroup
	for range 4 {
		p := newPacer(c, m, &starts, &mu)
		pacers = append(pacers, p)
		join.Add(1)
		go func() {
			defer join.Done()
			if err := p.Wait(context.Background(), "kms", 100, 1); err != nil {
				t.Error(err)
			}
		}()
	}
	join.Wait()
	if got := pacers[0].share("kms", 100); got != 25 {
		t.Fatalf("share with four members %v, want 25", got)
	}
	for range 40 { // 4 s: the others' records (2 s) expire
		c.advance(100 * time.Millisecond)
		_ = pacers[0].Wait(context.Background(), "kms", 100, 1)
		waitBeats(pacers[0])
	}
	if got := pacers[0].share("kms", 100); got != 100 {
		t.Errorf("share alone %v, want 100", got)
	}
}

// waitBeats waits for a background heartbeat to end.
func waitBeats(p *Pacer) {
	p.beatMu.Lock()
	defer p.beatMu.Unlock() // holding the lock at all is the wait
}

// TestNoBudgetNoHeartbeat: without a budget nothing is written or waited.
func TestNoBudgetNoHeartbeat(t *testing.T) {
	m := &members{}
	p := &Pacer{Members: m}
	for range 100 {
		if err := p.Wait(context.Background(), "bucket/b", 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	if m.beats != 0 {
		t.Errorf("%d heartbeats without a budget, want 0", m.beats)
	}
}

// TestUnknownMembersStopRequests: a member that cannot write its heartbeat
// sends nothing under the budget, since the others cannot count it; and
// one whose record is about to expire waits for a fresh one.
func TestUnknownMembersStopRequests(t *testing.T) {
	c := &clock{now: time.Unix(1e9, 0)}
	down := errors.New("table unavailable")
	m := &members{fail: down}
	var mu sync.Mutex
	var starts []time.Time
	p := newPacer(c, m, &starts, &mu)
	if err := p.Wait(context.Background(), "kms", 10, 1); !errors.Is(err, down) {
		t.Fatalf("first wait: %v, want the heartbeat's error", err)
	}
	m.fail = nil
	if err := p.Wait(context.Background(), "kms", 10, 1); err != nil {
		t.Fatal(err)
	}
	m.fail = down
	c.advance(1600 * time.Millisecond) // past 1.5 intervals: the record nears expiry
	if err := p.Wait(context.Background(), "kms", 10, 1); !errors.Is(err, down) {
		t.Fatalf("wait with an expiring record: %v, want the heartbeat's error", err)
	}
}
