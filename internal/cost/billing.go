package cost

import (
	"math"
	"time"
)

// BillingGranularity is the step Lambda rounds each invocation's duration
// up to (1 ms since Lambda's per-millisecond billing; not stated in the
// documentation this project follows, so an assumption: a coarser step
// would only raise the per-invocation floor).
const BillingGranularity = time.Millisecond

// BilledSeconds is the function time Lambda bills for invocations of the
// given durations: each rounded up to BillingGranularity, at least one
// step.
func BilledSeconds(durations []time.Duration) float64 {
	var steps int64
	for _, d := range durations {
		steps += max(1, int64(math.Ceil(float64(d)/float64(BillingGranularity))))
	}
	return (time.Duration(steps) * BillingGranularity).Seconds()
}

// ShareByWall splits busy time (for example a process's CPU time) over
// invocations in proportion to their wall times: what each invocation is
// billed for when the busy time cannot be measured per invocation.
func ShareByWall(busy time.Duration, walls []time.Duration) []time.Duration {
	var total time.Duration
	for _, w := range walls {
		total += w
	}
	out := make([]time.Duration, len(walls))
	if total <= 0 {
		return out
	}
	for i, w := range walls {
		out[i] = time.Duration(float64(busy) * float64(w) / float64(total))
	}
	return out
}
