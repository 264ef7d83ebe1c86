package localrun

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func messages(n, bodyBytes int) []types.Message {
	out := make([]types.Message, n)
	for i := range out {
		out[i] = types.Message{MessageId: aws.String(string(rune('a' + i%26))), Body: aws.String(strings.Repeat("x", bodyBytes))}
	}
	return out
}

// The three criteria of the event source mapping's batching (Lambda
// developer guide, invocation-eventsourcemapping, "Batching behavior"):
// the window reaches its maximum, the batch size is met, or the payload
// reaches 6 MB; with a window of 0, as soon as records are available.
func TestBatcherInvokesOnSizeWindowOrPayload(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	cases := []struct {
		name       string
		size       int
		window     time.Duration
		received   []types.Message
		at         time.Duration // after the previous invocation ended
		ready      bool
		batch      int // messages in the batch
		carried    int // messages carried into the next batch
		longPollAt int32
	}{
		{name: "no window: one message is a batch", size: 10, received: messages(1, 10), ready: true, batch: 1, longPollAt: 0},
		{name: "no window, nothing received", size: 10, ready: false, longPollAt: 1},
		{name: "window open, batch not full", size: 10, window: time.Second, received: messages(3, 10), at: 400 * time.Millisecond,
			ready: false, batch: 3, longPollAt: 0},
		{name: "window over", size: 10, window: time.Second, received: messages(3, 10), at: time.Second, ready: true, batch: 3, longPollAt: 0},
		{name: "window over, nothing received", size: 10, window: time.Second, at: 2 * time.Second, ready: false, longPollAt: 1},
		{name: "batch size met within the window", size: 10, window: 5 * time.Second, received: messages(10, 10), at: time.Millisecond,
			ready: true, batch: 10, longPollAt: 4},
		{name: "a receive past the batch size is carried over", size: 4, window: 5 * time.Second, received: messages(10, 10),
			ready: true, batch: 4, carried: 6, longPollAt: 5},
		{name: "payload reaches 6 MB before size or window", size: 100, window: 30 * time.Second, received: messages(10, 1<<20),
			at: time.Millisecond, ready: true, batch: 5, carried: 5, longPollAt: 20},
		{name: "long polls at most 20 s", size: 100, window: 300 * time.Second, received: messages(2, 10), ready: false, batch: 2, longPollAt: 20},
		{name: "a batch under way long-polls no longer than its window", size: 100, window: 3 * time.Second, received: messages(2, 10),
			at: 1500 * time.Millisecond, ready: false, batch: 2, longPollAt: 1},
		{name: "in the window's last part of a second, polls without waiting", size: 100, window: 2 * time.Second, received: messages(2, 10),
			at: 1500 * time.Millisecond, ready: false, batch: 2, longPollAt: 0},
		{name: "an empty batch long-polls for its first message", size: 10, window: 5 * time.Second, ready: false, longPollAt: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBatcher(Source{BatchSize: c.size, BatchingWindow: c.window})
			b.start(t0)
			b.add(c.received)
			now := t0.Add(c.at)
			if got := b.ready(now); got != c.ready {
				t.Errorf("ready = %v, want %v", got, c.ready)
			}
			if len(b.batch) != c.batch || len(b.carry) != c.carried {
				t.Errorf("batch %d, carried %d; want %d, %d", len(b.batch), len(b.carry), c.batch, c.carried)
			}
			if b.bytes > maxPayloadBytes {
				t.Errorf("payload %d bytes, over %d", b.bytes, maxPayloadBytes)
			}
			in := b.receiveInput(Source{QueueURL: "q"}, now)
			if in.WaitTimeSeconds != c.longPollAt {
				t.Errorf("WaitTimeSeconds = %d, want %d", in.WaitTimeSeconds, c.longPollAt)
			}
			if want := int32(min(10, max(0, c.size-c.batch))); in.MaxNumberOfMessages != want {
				t.Errorf("MaxNumberOfMessages = %d, want %d", in.MaxNumberOfMessages, want)
			}
		})
	}
}

// What is carried over opens the next batch, in the order received, and
// the next window starts when the previous invocation ends.
func TestBatcherCarriesOverIntoTheNextBatch(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := newBatcher(Source{BatchSize: 4, BatchingWindow: time.Second})
	b.start(t0)
	b.add(messages(6, 10))
	first := b.take()
	b.start(t0.Add(3 * time.Second))
	if len(first) != 4 || len(b.batch) != 2 || len(b.carry) != 0 {
		t.Fatalf("first %d, then %d (carried %d); want 4 then 2", len(first), len(b.batch), len(b.carry))
	}
	if aws.ToString(b.batch[0].MessageId) != "e" || aws.ToString(b.batch[1].MessageId) != "f" {
		t.Errorf("carried %s, %s; want e, f", aws.ToString(b.batch[0].MessageId), aws.ToString(b.batch[1].MessageId))
	}
	if b.ready(t0.Add(3500*time.Millisecond)) || !b.ready(t0.Add(4*time.Second)) {
		t.Error("the second window should end 1 s after the second start")
	}
}
