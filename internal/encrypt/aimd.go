package encrypt

import "sync"

// aimd bounds the objects in flight and adapts the bound to throttling,
// additive increase and multiplicative decrease as TCP does: every object
// that comes back without throttling widens the window by 1/window (about
// one more object per round of the window) while the window is full, and
// a throttled one halves it
// — once per round: throttles of requests that started before the last
// halving do not halve it again, since they answer the old window. A
// backfill without a budget then settles at what S3 and KMS allow instead
// of swinging between a full window and a stall.
//
// The window is shared by all the batches the process handles, and by its
// invocations while Lambda keeps the process warm.
type aimd struct {
	mu          sync.Mutex
	cond        *sync.Cond
	window, max float64
	inflight    int
	round       uint64 // halvings so far
}

func newAIMD(max int) *aimd {
	a := &aimd{window: float64(max), max: float64(max)}
	a.cond = sync.NewCond(&a.mu)
	return a
}

// acquire waits for room in the window and returns the round the request
// starts in.
func (a *aimd) acquire() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.inflight >= max(1, int(a.window)) {
		a.cond.Wait()
	}
	a.inflight++
	return a.round
}

// release returns the slot of a request started in round, and adapts the
// window to how it fared.
func (a *aimd) release(round uint64, throttled bool) {
	a.mu.Lock()
	// Only a full window learns from a success: one that is not full (a
	// batch's tail) has not tested its size.
	full := a.inflight >= int(a.window)
	a.inflight--
	switch {
	case throttled && round == a.round:
		a.window = max(1, a.window/2)
		a.round++
	case !throttled && full:
		a.window = min(a.max, a.window+1/a.window)
	}
	a.mu.Unlock()
	a.cond.Broadcast()
}

// size is the current window.
func (a *aimd) size() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.window
}
