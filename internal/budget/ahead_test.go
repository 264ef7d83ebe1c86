package budget

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestAheadDoesNotWaitBehindTheBacklog: with ten seconds of a budget's
// slots reserved by other requests, a request ahead starts at once, and
// the reserved requests give it a slot: the next one starts a spacing
// later than it would have, so that together they stay within the budget.
func TestAheadDoesNotWaitBehindTheBacklog(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Unix(1_000_000, 0)}
	var starts []time.Time
	var mu sync.Mutex
	p := newPacer(c, &members{}, &starts, &mu)
	const perSecond = 10.0
	for range 100 {
		if err := p.Wait(ctx, "kms", perSecond, 1); err != nil {
			t.Fatal(err)
		}
	}
	slot := func(k int) time.Time { return c.Now().Add(-burst).Add(time.Duration(k) * time.Second / perSecond) }
	if last := starts[len(starts)-1]; !last.Equal(slot(99)) {
		t.Fatalf("the 100th request starts at %v, want %v", last, slot(99))
	}
	waited := len(starts)
	if err := p.Wait(Ahead(ctx), "kms", perSecond, 1); err != nil {
		t.Fatal(err)
	}
	if len(starts) != waited {
		t.Fatalf("the request ahead waited until %v behind ten seconds of the others' slots", starts[len(starts)-1])
	}
	if err := p.Wait(ctx, "kms", perSecond, 1); err != nil {
		t.Fatal(err)
	}
	if got := starts[len(starts)-1]; !got.Equal(slot(101)) {
		t.Errorf("the next request starts at %v, want %v: one slot given to the request ahead", got, slot(101))
	}
	// With nothing reserved (the schedule caught up), requests ahead push
	// the schedule back instead: after three, the next starts at the
	// fourth slot.
	c.advance(20 * time.Second)
	for range 3 {
		if err := p.Wait(Ahead(ctx), "kms", perSecond, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Wait(ctx, "kms", perSecond, 1); err != nil {
		t.Fatal(err)
	}
	if got := starts[len(starts)-1]; !got.Equal(slot(3)) {
		t.Errorf("after three requests ahead on an idle schedule, the next starts at %v, want %v", got, slot(3))
	}
}

// TestAheadHeldToTheBudget: requests ahead wait for each other, so that
// they alone never exceed the budget.
func TestAheadHeldToTheBudget(t *testing.T) {
	ctx := Ahead(context.Background())
	c := &clock{now: time.Unix(1_000_000, 0)}
	var starts []time.Time
	var mu sync.Mutex
	p := newPacer(c, &members{}, &starts, &mu)
	for range 20 {
		if err := p.Wait(ctx, "kms", 10, 1); err != nil {
			t.Fatal(err)
		}
	}
	// A tenth of a second apart; the first two start at once (the first
	// one's slot is the catch-up's, a tenth of a second back).
	if len(starts) != 18 || !starts[17].Equal(c.Now().Add(-burst).Add(19*100*time.Millisecond)) {
		t.Errorf("%d waits, the last until %v, want 18 until %v", len(starts), starts[len(starts)-1], c.Now().Add(-burst).Add(1900*time.Millisecond))
	}
}

// TestOthersYieldToRequestsAheadElsewhere: a member that sent 50 requests
// ahead a second says so in its heartbeat, and another member using the
// same budget of 100 a second then paces at the 50 left.
func TestOthersYieldToRequestsAheadElsewhere(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Unix(1_000_000, 0)}
	m := &members{}
	var starts []time.Time
	var mu sync.Mutex
	uploads, backfill := newPacer(c, m, &starts, &mu), newPacer(c, m, &starts, &mu)
	for range 50 {
		if err := uploads.Take(Ahead(ctx), "bucket/x", 100, 1); err != nil {
			t.Fatal(err)
		}
	}
	if len(starts) != 0 {
		t.Fatalf("Take waited: %v", starts)
	}
	c.advance(time.Second)
	if err := uploads.beat(ctx); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := backfill.Wait(ctx, "bucket/x", 100, 1); err != nil {
			t.Fatal(err)
		}
	}
	// 50 a second: 20 ms apart, the first six within the catch-up (at the
	// whole budget of 100 a second, all ten would be).
	if len(starts) != 4 {
		t.Fatalf("waits until %v, want 4", starts)
	}
	for i := 1; i < len(starts); i++ {
		if d := starts[i].Sub(starts[i-1]); d != 20*time.Millisecond {
			t.Errorf("requests %d and %d are %v apart, want 20ms (the budget less the 50 a second ahead)", i, i+1, d)
		}
	}
	if got := backfill.othersAhead["bucket/x"]; got != 50 {
		t.Errorf("the other members' rate ahead: %v, want 50", got)
	}
}
