package core

import (
	"sync"
	"time"
)

// Quota is a request rate limit as AWS services apply them: a token
// bucket refilled at Rate tokens a second that holds at most one second's
// worth, so a burst of up to Rate requests passes and a sustained rate
// above it is refused.
type Quota struct {
	rate, capacity float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewQuota returns a quota of rate requests a second on the given clock
// (nil: time.Now); nil (no limit) for a rate of 0 or less.
func NewQuota(rate float64, clock func() time.Time) *Quota {
	if rate <= 0 {
		return nil
	}
	if clock == nil {
		clock = time.Now
	}
	capacity := max(rate, 1) // a rate under one a second still lets one request through
	return &Quota{rate: rate, capacity: capacity, tokens: capacity, now: clock}
}

// Take spends n tokens if there are that many, and reports whether it did.
// A nil quota always allows.
func (q *Quota) Take(n float64) bool {
	if q == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	if !q.last.IsZero() {
		q.tokens = min(q.capacity, q.tokens+now.Sub(q.last).Seconds()*q.rate)
	}
	q.last = now
	if q.tokens < n {
		return false
	}
	q.tokens -= n
	return true
}
