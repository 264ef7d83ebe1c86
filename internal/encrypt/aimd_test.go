package encrypt

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// capacity stands for a service that answers SlowDown to whatever it
// receives beyond `limit` requests at once.
type capacity struct {
	limit              int64
	inflight, maxSeen  atomic.Int64
	throttled, updated atomic.Int64
}

func (c *capacity) Rekey(ctx context.Context, obj messages.Object) rekey.Result {
	n := c.inflight.Add(1)
	defer c.inflight.Add(-1)
	for m := c.maxSeen.Load(); n > m && !c.maxSeen.CompareAndSwap(m, n); m = c.maxSeen.Load() {
	}
	time.Sleep(time.Millisecond)
	if n > c.limit {
		c.throttled.Add(1)
		return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: "SlowDown"}}
	}
	c.updated.Add(1)
	return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Updated}}
}

type nopSender struct{}

func (nopSender) Send(_ context.Context, _ string, msgs []queue.Message) []error {
	return make([]error, len(msgs))
}

// TestWindowFindsTheCapacity: with room for 16 requests at once and 256
// objects allowed in flight, the window comes down to the capacity in the
// first batch and stays near it: after that, a few percent of requests are
// throttled (each probe past the capacity, about 4 % here), where a fixed
// window of 256 would see nearly all of them throttled.
func TestWindowFindsTheCapacity(t *testing.T) {
	svc := &capacity{limit: 16}
	h := &Handler{Rekeyer: svc, Sender: nopSender{}, Config: Config{WorkQueueURL: "w", DeadLetterQueueURL: "d", Concurrency: 256}}
	var firstThrottled, firstTotal int64
	for batch := range 4 {
		if batch == 1 {
			firstThrottled, firstTotal = svc.throttled.Load(), svc.throttled.Load()+svc.updated.Load()
		}
		var ev events.SQSEvent
		for m := range 10 {
			var objs []messages.Object
			for o := range 100 {
				objs = append(objs, messages.Object{Bucket: "b", Key: fmt.Sprintf("%d/%d/%d", batch, m, o)})
			}
			body, err := messages.Task{Source: messages.SourceInventory, Objects: objs}.Encode()
			if err != nil {
				t.Fatal(err)
			}
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(m), Body: body})
		}
		h.Handle(context.Background(), ev)
	}
	throttled := svc.throttled.Load() - firstThrottled
	total := svc.throttled.Load() + svc.updated.Load() - firstTotal
	if share := float64(throttled) / float64(total); share > 0.10 {
		t.Errorf("after the first batch, %d of %d requests throttled (%.0f%%): the window did not settle at the capacity", throttled, total, share*100)
	}
	if w := h.window.size(); w < 4 || w > 40 {
		t.Errorf("window ends at %.1f, want near the capacity of 16", w)
	}
	t.Logf("%d updated, %d throttled (%d in the first batch), most in flight %d, window %.1f", svc.updated.Load(), svc.throttled.Load(), firstThrottled,
		svc.maxSeen.Load(), h.window.size())
}

// Without throttling the window stays open: all the configured
// concurrency is used.
func TestWindowStaysOpenWithoutThrottling(t *testing.T) {
	a := newAIMD(8)
	var rounds []uint64
	for range 8 {
		rounds = append(rounds, a.acquire())
	}
	for _, r := range rounds {
		a.release(r, false)
	}
	if a.size() != 8 {
		t.Errorf("window %.1f after successes, want the full 8", a.size())
	}
	// One round of throttles halves it once, not once per throttle.
	r1, r2 := a.acquire(), a.acquire()
	a.release(r1, true)
	a.release(r2, true)
	if a.size() != 4 {
		t.Errorf("window %.1f after throttles of one round, want 4", a.size())
	}
}
