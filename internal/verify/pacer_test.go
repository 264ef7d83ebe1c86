package verify

import (
	"context"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// HEADs are spaced at the bucket's maxObjectsPerSecond, shared by every
// worker: n waits take at least (n-1) intervals. A lower bound, which no
// machine's speed can break.
func TestPacerSpacesRequests(t *testing.T) {
	p := newPacer(50) // 20 ms apart
	start := time.Now()
	for range 6 {
		if err := p.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := time.Since(start); got < 100*time.Millisecond {
		t.Fatalf("6 requests at 50/s took %v, want at least 100ms", got)
	}
	if err := newPacer(0).wait(context.Background()); err != nil {
		t.Fatalf("no budget: %v", err)
	}
}

// The estimate says how long the HEADs take at the budget.
func TestEstimateAtBudget(t *testing.T) {
	var got Estimate
	err := announce(Options{Estimate: func(e Estimate) error { got = e; return nil }}, &Bucket{Bucket: "b", Source: SourceListing},
		policy.Bucket{MaxObjectsPerSecond: 100}, 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.AtBudget != 10*time.Second || got.Heads != 1000 || got.Dollars <= 0 {
		t.Fatalf("estimate %+v, want 1000 HEADs in 10s, priced", got)
	}
}
