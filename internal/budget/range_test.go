package budget

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestSpacingOverTheWholeRange: for every positive budget a policy can hold
// (any positive float64, JSON having no infinity) and every request count,
// the spacing is n/perSecond seconds to the nanosecond, or the longest
// duration when that does not fit: never negative, never zero for a budget
// that allows less than one request a nanosecond, and monotone in n.
func TestSpacingOverTheWholeRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	budgets := []float64{math.SmallestNonzeroFloat64, 1e-300, 1e-12, 1e-9, 1.0 / 3, 1, 7, 1e9, 1e9 + 1, 1e18, 1e300, math.MaxFloat64}
	for range 5000 {
		// Log-uniform over the whole positive float64 range.
		budgets = append(budgets, math.Pow(2, rng.Float64()*2098-1074))
	}
	for _, perSecond := range budgets {
		if !(perSecond > 0) || math.IsInf(perSecond, 0) {
			continue
		}
		prev := time.Duration(0)
		for _, n := range []int{1, 2, 3, 10, 1000, 1 << 20} {
			got := spacing(n, perSecond)
			want := float64(n) / perSecond * 1e9 // nanoseconds, exact or +Inf
			switch {
			case got < 0:
				t.Fatalf("spacing(%d, %g) = %v: negative", n, perSecond, got)
			case want >= float64(math.MaxInt64):
				if got != maxSpacing {
					t.Fatalf("spacing(%d, %g) = %v, want the longest duration (%g ns do not fit)", n, perSecond, got, want)
				}
			case math.Abs(float64(got)-want) > 1+want*1e-15:
				t.Fatalf("spacing(%d, %g) = %v, want %g ns", n, perSecond, got, want)
			case want >= 1 && got == 0:
				t.Fatalf("spacing(%d, %g) = 0 for %g ns", n, perSecond, want)
			}
			if got < prev {
				t.Fatalf("spacing(%d, %g) = %v < %v for fewer requests", n, perSecond, got, prev)
			}
			prev = got
		}
	}
}

// TestTinyAndHugeBudgetsPace runs a pacer under budgets from the tiniest to
// the largest: after the first request (which the catch-up lets through),
// the second waits the spacing less the catch-up, and the third waits longer
// still, saturating rather than wrapping; a huge budget never waits.
func TestTinyAndHugeBudgetsPace(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perSecond float64
	}{
		{"smallest positive", math.SmallestNonzeroFloat64},
		{"one a millennium", 1 / (1000 * 365.25 * 86400)},
		{"one a day", 1.0 / 86400},
		{"one a second", 1},
		{"a thousand a second", 1000},
		{"a billion a second", 1e9},
		{"largest", math.MaxFloat64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: time.Unix(1_000_000, 0)}
			var waits []time.Duration
			var mu sync.Mutex
			p := &Pacer{Members: &members{}, Interval: time.Second, Now: c.Now}
			p.sleep = func(_ context.Context, d time.Duration) error {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
				return nil
			}
			for range 3 {
				if err := p.Wait(context.Background(), "s", tc.perSecond, 1); err != nil {
					t.Fatal(err)
				}
			}
			interval := spacing(1, tc.perSecond)
			var want []time.Duration
			for k := 1; k <= 2; k++ {
				// The k-th request after the first starts k spacings after the
				// first's slot, which the catch-up put a tenth of a second back.
				d := time.Duration(math.MaxInt64)
				if interval < maxSpacing/4 {
					d = time.Duration(k)*interval - burst
				}
				if d > 0 {
					want = append(want, d)
				}
			}
			if len(waits) != len(want) {
				t.Fatalf("waits %v, want %v", waits, want)
			}
			for i := range want {
				if waits[i] <= 0 || (want[i] < maxSpacing && waits[i] != want[i]) || (want[i] == maxSpacing && waits[i] < maxSpacing/2) {
					t.Errorf("wait %d: %v, want %v", i+1, waits[i], want[i])
				}
			}
		})
	}
}
