package jobs_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// The model's world: the real jobs store, committer, encrypt handler and
// planner against the emulator's DynamoDB and S3 (served in-process, no
// sockets), with the queues, the clock, crashes and the objects' fate
// under the schedule's control.

// inProcess serves SDK requests straight from the emulator's handler.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil {
		r.Body = http.NoBody // as a server's request always has one
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// modelClock is the time every part of the world reads.
type modelClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *modelClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *modelClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// qmsg is one message on a model queue.
type qmsg struct {
	id, body  string
	attrs     map[string]string
	visibleAt time.Time
	receives  int
	// bySQS marks a dead letter SQS moved (maxReceives), which carries no
	// reason of s3rekey's.
	bySQS bool
}

var (
	errCrash     = errors.New("model: the invocation crashed")
	errSendFault = errors.New("model: send failed")
)

// crashPlan makes an invocation crash after the n-th call of one kind
// (its effect applied or not): every later call of any kind fails, and
// the batch's messages stay on the queue.
type crashPlan struct {
	op      string // "send", "transact", "update", "put", "query"
	after   int
	applied bool // the n-th call takes effect before the crash
	count   int
	crashed bool
}

// world is one schedule's world.
type world struct {
	rng   *rand.Rand
	seed  uint64
	clock *modelClock

	mu     sync.Mutex
	queues map[string][]*qmsg
	nextID int
	crash  *crashPlan
	// sendFaultRate loses a share of sends (some of them after they
	// were delivered: an answer lost).
	sendFaultRate float64
	// failPut fails a report write once, by key suffix.
	failPut map[string]int
	objects map[string]*modelObject
	calls   map[string]int
	// transientRate is the share of an object's tries that come back to
	// retry.
	transientRate float64
	// delivered holds every work message body a handler received.
	delivered []string
	// down are queues every send to fails.
	down map[string]bool
	// silentMoves are messages SQS moved to a DLQ after maxReceives
	// although no crash and no lost send kept their function from
	// dead-lettering them itself, with a reason.
	silentMoves []string
}

// modelObject is the truth about one object.
type modelObject struct {
	key                string
	exists, everExists bool
	initial            bool // there when the job started
	deleted            bool
	updated            bool
	denied             bool
	failReason         string // why it is denied (default access-denied)
	flaky              int    // tries left that come back to retry
	flakyAs            string
	excluded           bool
}

func (w *world) tick(op string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.crash
	if c == nil {
		return nil
	}
	if c.crashed {
		return errCrash
	}
	if c.op == op {
		c.count++
		if c.count >= c.after {
			c.crashed = true
			if !c.applied {
				return errCrash
			}
		}
	}
	return nil
}

// after reports the crash for a call that took effect.
func (w *world) after(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil && w.crash != nil && w.crash.crashed {
		return errCrash
	}
	return err
}

// dynamo is the jobs table, through the crash plan.
type dynamo struct {
	jobs.DynamoDBAPI
	w *world
}

func (d *dynamo) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := d.w.tick("update"); err != nil {
		return nil, err
	}
	out, err := d.DynamoDBAPI.UpdateItem(ctx, in, o...)
	return out, d.w.after(err)
}

func (d *dynamo) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := d.w.tick("update"); err != nil {
		return nil, err
	}
	out, err := d.DynamoDBAPI.PutItem(ctx, in, o...)
	return out, d.w.after(err)
}

func (d *dynamo) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if err := d.w.tick("query"); err != nil {
		return nil, err
	}
	out, err := d.DynamoDBAPI.Query(ctx, in, o...)
	return out, d.w.after(err)
}

func (d *dynamo) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := d.w.tick("transact"); err != nil {
		return nil, err
	}
	out, err := d.DynamoDBAPI.TransactWriteItems(ctx, in, o...)
	return out, d.w.after(err)
}

// reportStore is the report bucket, through the crash plan.
type reportStore struct {
	api *s3.Client
	w   *world
}

func (r *reportStore) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if err := r.w.tick("put"); err != nil {
		return nil, err
	}
	r.w.mu.Lock()
	for suffix, n := range r.w.failPut {
		if n > 0 && len(*in.Key) >= len(suffix) && (*in.Key)[len(*in.Key)-len(suffix):] == suffix {
			r.w.failPut[suffix]--
			r.w.mu.Unlock()
			return nil, fmt.Errorf("model: put %s failed", *in.Key)
		}
	}
	r.w.mu.Unlock()
	out, err := r.api.PutObject(ctx, in, o...)
	return out, r.w.after(err)
}

func (r *reportStore) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if err := r.w.tick("query"); err != nil {
		return nil, err
	}
	out, err := r.api.HeadObject(ctx, in, o...)
	return out, r.w.after(err)
}

func (r *reportStore) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if err := r.w.tick("query"); err != nil {
		return nil, err
	}
	out, err := r.api.GetObject(ctx, in, o...)
	return out, r.w.after(err)
}

// Send puts messages on a model queue; a share is lost, some of those
// after all (the answer was lost), as SendMessageBatch may do.
func (w *world) Send(ctx context.Context, url string, msgs []queue.Message) []error {
	errs := make([]error, len(msgs))
	if err := w.tick("send"); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, m := range msgs {
		if w.down[url] {
			errs[i] = errSendFault
			continue
		}
		lost := w.sendFaultRate > 0 && w.rng.Float64() < w.sendFaultRate
		if lost {
			errs[i] = errSendFault
			if w.rng.IntN(2) == 0 {
				continue
			}
		}
		w.enqueueLocked(url, m.Body, m.Attributes, time.Duration(m.DelaySeconds)*time.Second)
	}
	if w.crash != nil && w.crash.crashed {
		for i := range errs {
			errs[i] = errCrash
		}
	}
	return errs
}

func (w *world) enqueueLocked(url, body string, attrs map[string]string, delay time.Duration) {
	w.nextID++
	w.queues[url] = append(w.queues[url], &qmsg{id: "m" + strconv.Itoa(w.nextID), body: body, attrs: attrs, visibleAt: w.clock.Now().Add(delay)})
}

func (w *world) enqueue(url, body string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.enqueueLocked(url, body, nil, 0)
}

// visible are the messages of a queue that can be received now.
func (w *world) visible(url string) []*qmsg {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*qmsg
	now := w.clock.Now()
	for _, m := range w.queues[url] {
		if !m.visibleAt.After(now) {
			out = append(out, m)
		}
	}
	return out
}

// nextVisible is when the next message of any queue but the DLQ becomes
// visible (zero: none waits).
func (w *world) nextVisible() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var t time.Time
	for url, q := range w.queues {
		if url == dlqURL || url == controlDLQURL {
			continue
		}
		for _, m := range q {
			if t.IsZero() || m.visibleAt.Before(t) {
				t = m.visibleAt
			}
		}
	}
	return t
}

func (w *world) remove(url string, m *qmsg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queues[url]
	for i, x := range q {
		if x == m {
			w.queues[url] = append(q[:i:i], q[i+1:]...)
			return
		}
	}
}

// receive makes a batch's messages invisible for the visibility timeout,
// and renders them as Lambda's event.
func (w *world) receive(url string, batch []*qmsg) events.SQSEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ev events.SQSEvent
	for _, m := range batch {
		m.receives++
		m.visibleAt = w.clock.Now().Add(visibilityTimeout)
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.id, Body: m.body,
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives)}})
		if url == workURL {
			w.delivered = append(w.delivered, m.body)
		}
	}
	return ev
}

// settle ends a batch as Lambda does: the messages it did not report
// failed are deleted, unless the invocation crashed; a message received
// maxReceives times and not deleted goes to its queue's DLQ (the redrive
// policy the stack gives the work and the control queue alike).
func (w *world) settle(url string, batch []*qmsg, failures []events.SQSBatchItemFailure, crashed bool) {
	failed := map[string]bool{}
	for _, f := range failures {
		failed[f.ItemIdentifier] = true
	}
	for _, m := range batch {
		switch {
		case !crashed && !failed[m.id]:
			w.remove(url, m)
		case m.receives >= maxReceives && (url == workURL || url == controlURL):
			if !crashed && w.sendFaultRate == 0 && !w.down[dlqURL] && !w.down[controlDLQURL] {
				w.silentMoves = append(w.silentMoves, url+" "+m.id)
			}
			dead := dlqURL
			if url == controlURL {
				dead = controlDLQURL
			}
			w.remove(url, m)
			w.mu.Lock()
			w.queues[dead] = append(w.queues[dead], &qmsg{id: m.id, body: m.body, bySQS: true})
			w.mu.Unlock()
		}
	}
}

// Rekey is the model's object: gone when deleted, failed while denied,
// back to retry at the transient rate, and updated once, compliant after.
// Its randomness is a function of the seed, the key and the try, so a
// schedule does not depend on the order the handler's workers run in.
func (w *world) Rekey(ctx context.Context, obj messages.Object) rekey.Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.objects[obj.Key]
	w.calls[obj.Key]++
	h := fnv.New64a()
	_ = binary.Write(h, binary.LittleEndian, w.seed)
	h.Write([]byte(obj.Key + "#" + strconv.Itoa(w.calls[obj.Key])))
	roll := float64(h.Sum64()%10000) / 10000
	switch {
	case o == nil || !o.exists:
		return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Gone}}
	case o.denied && o.failReason != "":
		return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Failed, Reason: o.failReason}}
	case o.denied:
		return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonAccessDenied}}
	case o.flaky > 0:
		o.flaky--
		return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: o.flakyAs}}
	case roll < w.transientRate/2:
		return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: "InternalError"}}
	case roll < w.transientRate:
		return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: "ServiceUnavailable"}}
	case o.updated:
		return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Compliant}}
	}
	o.updated = true
	return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Updated}, Updates: 1}
}

// Model queues and limits.
const (
	workURL           = "work"
	dlqURL            = "work-dlq"
	controlURL        = "control"
	controlDLQURL     = "control-dlq"
	visibilityTimeout = 16 * time.Minute // at least the function timeout, as Lambda needs
	maxReceives       = 5
)

// sortedKeys is the model's objects in key order.
func (w *world) sortedKeys() []string {
	var out []string
	for k := range w.objects {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// emulatorConfig is the SDK configuration that reaches emu in-process.
func emulatorConfig(emu *emulator.Emulator) aws.Config {
	cfg := emu.AWSConfig()
	cfg.HTTPClient = &http.Client{Transport: inProcess{emu}}
	cfg.RetryMaxAttempts = 1
	// One attempt, as RetryMaxAttempts 1 says, without the standard
	// retryer's token bucket and backoff bookkeeping on every request.
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return cfg
}
