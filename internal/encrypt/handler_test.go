package encrypt_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/localrun"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// pipeline is an emulator with a work queue and DLQ, a policy over the
// buckets "data" (versioned) and "locked" (Object Lock), and the encrypt
// handler wired to them.
type pipeline struct {
	*emutest.Env
	target       string
	workURL      string
	dlqURL       string
	handler      *encrypt.Handler
	metrics      *syncBuffer
	policy       *policy.Policy
	versionOfKey map[string]string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newPipeline(t *testing.T, cfg encrypt.Config) *pipeline {
	e := emutest.Start(t, emulator.Options{EventBridgeRules: []emulator.EventBridgeRule{{Bucket: "data", Queue: "work"}}})
	p := &pipeline{Env: e, target: e.Key(t), metrics: &syncBuffer{}, versionOfKey: map[string]string{}}
	var dlqARN string
	p.dlqURL, dlqARN = e.Queue(t, "work-dlq", nil)
	p.workURL, _ = e.Queue(t, "work", map[string]string{
		"VisibilityTimeout": "5",
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":5}`, dlqARN),
	})
	e.Versioned(t, "data")
	e.Bucket(t, "locked", true)
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{"data":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"versions":"all"},"locked":{"kmsKeyArn":%q,"bucketKeyEnabled":true}}}`, p.target, p.target)))
	if err != nil {
		t.Fatal(err)
	}
	p.policy = pol
	cfg.WorkQueueURL, cfg.DeadLetterQueueURL = p.workURL, p.dlqURL
	p.handler = &encrypt.Handler{
		Rekeyer: &rekey.Rekeyer{Head: e.S3, Update: e.S3, Policy: pol},
		Sender:  &queue.Sender{API: e.SQS, Backoff: time.Millisecond},
		Config:  cfg,
		Metrics: p.metrics,
	}
	return p
}

func (p *pipeline) send(t *testing.T, body string) {
	t.Helper()
	if _, err := p.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(p.workURL), MessageBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}
}

func (p *pipeline) sendTask(t *testing.T, objs ...messages.Object) {
	t.Helper()
	body, err := messages.Task{Source: messages.SourceManual, Objects: objs}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	p.send(t, body)
}

func (p *pipeline) runUntilIdle(t *testing.T) *localrun.Runner {
	t.Helper()
	r := &localrun.Runner{API: p.SQS, Region: "us-east-1", Sources: []localrun.Source{{
		QueueURL: p.workURL, Handler: p.handler.Handle, BatchSize: 10, Concurrency: 1, InvocationTimeout: 30 * time.Second,
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.RunUntilIdle(ctx, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return r
}

type deadLetter struct {
	body  string
	attrs map[string]string
}

func (p *pipeline) drainDLQ(t *testing.T) []deadLetter {
	t.Helper()
	var out []deadLetter
	for {
		res, err := p.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(p.dlqURL), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			d := deadLetter{body: aws.ToString(m.Body), attrs: map[string]string{}}
			for k, v := range m.MessageAttributes {
				d.attrs[k] = aws.ToString(v.StringValue)
			}
			out = append(out, d)
			if _, err := p.SQS.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(p.dlqURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (p *pipeline) encryption(bucket, key, version string) emulator.ObjectState {
	st, _ := p.Emu.Inspect(bucket, key, version)
	return st
}

// TestMixedBucketEndToEnd brings a bucket holding every encryption state,
// versions and locked objects to its exact expected end state through the
// local run loop, with work arriving in all three message shapes.
func TestMixedBucketEndToEnd(t *testing.T) {
	p := newPipeline(t, encrypt.Config{})
	ctx := context.Background()
	old := p.Key(t)
	put := func(bucket, key string, edit func(*s3.PutObjectInput), opts ...func(*s3.Options)) string {
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
		if edit != nil {
			edit(in)
		}
		return aws.ToString(p.Put(t, in, "content of "+key, opts...).VersionId)
	}
	kms := func(key string, bk bool) func(*s3.PutObjectInput) {
		return func(in *s3.PutObjectInput) {
			in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, aws.String(key), aws.Bool(bk)
		}
	}
	// Seed before EventBridge delivery is on, so only the tasks below and
	// the later uploads produce work.
	v1 := put("data", "doc.txt", nil)
	v2 := put("data", "doc.txt", kms(old, false))
	put("data", "a b+c/ü.txt", nil)
	put("data", "compliant.txt", kms(p.target, true))
	put("data", "legacy.txt", nil, emulator.LegacyUnencrypted)
	put("data", "dsse.bin", func(in *s3.PutObjectInput) {
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKmsDsse, aws.String(old)
	})
	put("data", "gone.txt", nil)
	if _, err := p.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("gone.txt")}); err != nil {
		t.Fatal(err)
	}
	customer := bytes.Repeat([]byte{5}, 32)
	customerMD5 := md5.Sum(customer)
	put("data", "ssec.bin", func(in *s3.PutObjectInput) {
		in.SSECustomerAlgorithm, in.SSECustomerKey = aws.String("AES256"), aws.String(base64.StdEncoding.EncodeToString(customer))
		in.SSECustomerKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(customerMD5[:]))
	})
	put("locked", "held.txt", func(in *s3.PutObjectInput) { in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn })
	put("locked", "retained.txt", func(in *s3.PutObjectInput) {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockModeGovernance, aws.Time(time.Now().Add(time.Hour))
	})
	put("locked", "free.txt", nil)

	p.sendTask(t,
		messages.Object{Bucket: "data", Key: "doc.txt", VersionID: v1},
		messages.Object{Bucket: "data", Key: "doc.txt", VersionID: v2},
		messages.Object{Bucket: "data", Key: "a b+c/ü.txt"},
		messages.Object{Bucket: "data", Key: "compliant.txt"},
		messages.Object{Bucket: "data", Key: "legacy.txt"},
		messages.Object{Bucket: "data", Key: "dsse.bin"},
		messages.Object{Bucket: "data", Key: "gone.txt"},
		messages.Object{Bucket: "data", Key: "ssec.bin"},
	)
	p.sendTask(t, messages.Object{Bucket: "locked", Key: "held.txt"}, messages.Object{Bucket: "locked", Key: "free.txt"},
		messages.Object{Bucket: "locked", Key: "retained.txt"},
		messages.Object{Bucket: "elsewhere", Key: "x"})
	p.sendTask(t, messages.Object{Bucket: "data", Key: "compliant.txt"}) // a duplicate
	p.send(t, `{"this is": "not a task"}`)
	p.send(t, `{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"data"}`)
	// A classic S3 notification record, as S3 writes it.
	p.send(t, `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"locked"},"object":{"key":"free.txt"}}}]}`)

	// The enforcement path: EventBridge delivery on, new SSE-S3 uploads.
	if _, err := p.S3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("data"),
		NotificationConfiguration: &types.NotificationConfiguration{EventBridgeConfiguration: &types.EventBridgeConfiguration{}}}); err != nil {
		t.Fatal(err)
	}
	fresh := put("data", "new upload 1+1.txt", nil)

	p.runUntilIdle(t)

	wantKMS := []struct{ bucket, key, version string }{
		{"data", "doc.txt", v1}, {"data", "doc.txt", v2}, {"data", "a b+c/ü.txt", ""}, {"data", "compliant.txt", ""},
		{"locked", "free.txt", ""}, {"data", "new upload 1+1.txt", fresh},
	}
	for _, w := range wantKMS {
		if st := p.encryption(w.bucket, w.key, w.version); st.Encryption != "SSE-KMS" || st.KMSKeyARN != p.target || !st.BucketKey {
			t.Errorf("%s/%s@%s ends %s %s bucketKey=%v, want SSE-KMS under the target with a bucket key", w.bucket, w.key, w.version, st.Encryption, st.KMSKeyARN, st.BucketKey)
		}
	}
	for key, enc := range map[string]string{"legacy.txt": "NOT-SSE", "dsse.bin": "DSSE-KMS", "ssec.bin": "SSE-C"} {
		if st := p.encryption("data", key, ""); st.Encryption != enc {
			t.Errorf("%s ends %s, want %s untouched", key, st.Encryption, enc)
		}
	}
	for _, key := range []string{"held.txt", "retained.txt"} {
		if st := p.encryption("locked", key, ""); st.Encryption != "SSE-S3" {
			t.Errorf("locked %s ends %s, want SSE-S3 untouched", key, st.Encryption)
		}
	}
	dead := p.drainDLQ(t)
	if len(dead) != 1 || dead[0].attrs[encrypt.AttrOutcome] != "rejected" || dead[0].body != `{"this is": "not a task"}` || dead[0].attrs[encrypt.AttrReason] == "" {
		t.Errorf("DLQ holds %+v, want only the poison message, rejected with a reason", dead)
	}
	// free.txt is named twice in one batch (task and notification), and
	// compliant.txt twice: each is updated at most once. ssec.bin costs one
	// refused request: HEAD's bare 400 does not prove SSE-C, the refusal does.
	if n := p.Emu.CountOf("s3", "UpdateObjectEncryption", ""); n != 6 {
		t.Errorf("%d UpdateObjectEncryption calls, want 6 (one per object that needed it, one refused for SSE-C)", n)
	}
	if n := p.Emu.CountOf("s3", "GetObject", ""); n != 0 {
		t.Errorf("%d GetObject calls; the consumer must never read object data", n)
	}
	if !strings.Contains(p.metrics.String(), `"Outcome":"updated"`) || !strings.Contains(p.metrics.String(), `"Namespace":"s3rekey"`) {
		t.Errorf("EMF output lacks the updated count:\n%s", p.metrics.String())
	}
}

func TestRetryThenDeadLetterAfterAttempts(t *testing.T) {
	p := newPipeline(t, encrypt.Config{MaxAttempts: 3, RetryBaseDelay: time.Second})
	p.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("slow.txt")}, "x")
	// A fault that is not throttling (throttling is never dead-lettered).
	if err := p.Emu.SetFault(emulator.Fault{Service: "s3", Operation: "UpdateObjectEncryption", Code: "InternalError", Rate: 1}); err != nil {
		t.Fatal(err)
	}
	p.sendTask(t, messages.Object{Bucket: "data", Key: "slow.txt"})
	p.runUntilIdle(t)
	dead := p.drainDLQ(t)
	if len(dead) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", len(dead))
	}
	d := dead[0]
	task, err := messages.Decode(d.body)
	// The dead letter starts its attempts afresh, so that a redrive gives
	// the object a full set again; the attempts it used are an attribute.
	if err != nil || len(task.Objects) != 1 || task.Objects[0].Key != "slow.txt" || task.Attempt != 0 || !task.Redelivered {
		t.Errorf("dead letter %s decodes to %+v, %v", d.body, task, err)
	}
	if d.attrs[encrypt.AttrOutcome] != "retry" || d.attrs[encrypt.AttrReason] != "attempts-exhausted" || d.attrs[encrypt.AttrDetail] != "InternalError" ||
		d.attrs[encrypt.AttrAttempts] != "3" {
		t.Errorf("dead letter attributes %v", d.attrs)
	}
	if n := p.Emu.CountOf("s3", "UpdateObjectEncryption", "data"); n != 3 {
		t.Errorf("%d update attempts, want 3", n)
	}

	// A redrive (the body moved back to the work queue as is, as SQS's
	// message move task does) is tried MaxAttempts times again, not once.
	p.send(t, d.body)
	p.runUntilIdle(t)
	if n := p.Emu.CountOf("s3", "UpdateObjectEncryption", "data"); n != 6 {
		t.Errorf("%d update attempts after a redrive, want 3 + 3", n)
	}
	if again := p.drainDLQ(t); len(again) != 1 || again[0].attrs[encrypt.AttrAttempts] != "3" {
		t.Errorf("after the redrive the DLQ holds %+v, want the object once, after 3 attempts", again)
	}
}

// A throttled object is tried again past the attempt limit, never
// dead-lettered: throttling passes with time, and a dead letter would need
// a person for nothing.
func TestThrottlingIsNeverDeadLettered(t *testing.T) {
	p := newPipeline(t, encrypt.Config{MaxAttempts: 2, RetryBaseDelay: time.Second})
	p.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("hot.txt")}, "x")
	if err := p.Emu.SetFault(emulator.Fault{Service: "s3", Operation: "UpdateObjectEncryption", Code: "SlowDown", Rate: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Clear the throttling once the object was refused more often than
		// MaxAttempts allows for other errors.
		for p.Emu.CountOf("s3", "UpdateObjectEncryption", "data") < 3 && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		p.Emu.ClearFaults()
	}()
	p.sendTask(t, messages.Object{Bucket: "data", Key: "hot.txt"})
	p.runUntilIdle(t)
	if dead := p.drainDLQ(t); len(dead) != 0 {
		t.Fatalf("a throttled object was dead-lettered: %+v", dead)
	}
	if n := p.Emu.CountOf("s3", "UpdateObjectEncryption", "data"); n < 4 {
		t.Errorf("%d update attempts, want the 3 throttled ones and the one that went through", n)
	}
	if st, _ := p.Emu.Inspect("data", "hot.txt", ""); st.Encryption != "SSE-KMS" {
		t.Errorf("the object ends %s, want updated once the throttling passed", st.Encryption)
	}
}

func TestRetrySucceedsOnceTheFaultClears(t *testing.T) {
	p := newPipeline(t, encrypt.Config{RetryBaseDelay: time.Second})
	p.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("k")}, "x")
	fault := emulator.Fault{Service: "s3", Operation: "UpdateObjectEncryption", Code: "InternalError", Rate: 1}
	if err := p.Emu.SetFault(fault); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	inner := p.handler.Handle
	handle := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := inner(ctx, ev)
		if calls.Add(1) == 1 {
			fault.Rate = 0
			_ = p.Emu.SetFault(fault)
		}
		return resp, err
	}
	p.sendTask(t, messages.Object{Bucket: "data", Key: "k"})
	r := &localrun.Runner{API: p.SQS, Sources: []localrun.Source{{QueueURL: p.workURL, Handler: handle}}}
	if err := r.RunUntilIdle(context.Background(), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if st := p.encryption("data", "k", ""); st.KMSKeyARN != p.target {
		t.Errorf("after the fault cleared the object is %s %s", st.Encryption, st.KMSKeyARN)
	}
	if len(p.drainDLQ(t)) != 0 {
		t.Error("a recovered retry reached the DLQ")
	}
}

func TestAccessDeniedGoesToDLQWithReason(t *testing.T) {
	p := newPipeline(t, encrypt.Config{})
	p.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("denied.txt")}, "x")
	p.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("fine.txt")}, "x")
	if err := p.Emu.SetFault(emulator.Fault{Service: "s3", Operation: "UpdateObjectEncryption", Code: "AccessDenied", Rate: 1}); err != nil {
		t.Fatal(err)
	}
	resp, sum := p.handler.HandleWithSummary(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", Body: mustEncode(t, messages.Object{Bucket: "data", Key: "denied.txt"})},
	}})
	if len(resp.BatchItemFailures) != 0 || sum.Outcomes["failed: access-denied"] != 1 || sum.DeadLetter != 1 {
		t.Errorf("response %+v summary %+v", resp, sum)
	}
	dead := p.drainDLQ(t)
	if len(dead) != 1 || dead[0].attrs[encrypt.AttrReason] != "access-denied" || dead[0].attrs[encrypt.AttrSource] != "m1" {
		t.Errorf("DLQ %+v", dead)
	}
}

func mustEncode(t *testing.T, objs ...messages.Object) string {
	t.Helper()
	body, err := messages.Task{Source: messages.SourceManual, Objects: objs}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// fakeRekeyer answers from a func; fakeSender records or fails sends.
type fakeRekeyer struct {
	rekey func(ctx context.Context, obj messages.Object) rekey.Result
}

func (f fakeRekeyer) Rekey(ctx context.Context, obj messages.Object) rekey.Result {
	return f.rekey(ctx, obj)
}

type fakeSender struct {
	mu   sync.Mutex
	sent map[string][]queue.Message
	err  error
}

func (f *fakeSender) Send(_ context.Context, url string, msgs []queue.Message) []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		if f.err != nil {
			errs[i] = f.err
			continue
		}
		if f.sent == nil {
			f.sent = map[string][]queue.Message{}
		}
		f.sent[url] = append(f.sent[url], m)
	}
	return errs
}

func TestDeadlineRequeuesUnstartedObjects(t *testing.T) {
	sender := &fakeSender{}
	var started atomic.Int32
	h := &encrypt.Handler{
		Rekeyer: fakeRekeyer{func(ctx context.Context, obj messages.Object) rekey.Result {
			started.Add(1)
			time.Sleep(40 * time.Millisecond)
			return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Updated}}
		}},
		Sender: sender,
		Config: encrypt.Config{WorkQueueURL: "work", DeadLetterQueueURL: "dlq", Concurrency: 1, DeadlineMargin: 200 * time.Millisecond},
	}
	var objs []messages.Object
	for i := range 50 {
		objs = append(objs, messages.Object{Bucket: "bkt", Key: fmt.Sprintf("k%02d", i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	resp, sum := h.HandleWithSummary(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: mustEncode(t, objs...)}}})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch item failures %+v", resp.BatchItemFailures)
	}
	requeued := sender.sent["work"]
	if len(requeued) != 1 {
		t.Fatalf("requeued %d messages, want 1", len(requeued))
	}
	task, err := messages.Decode(requeued[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	n := int(started.Load())
	if n == 0 || n == 50 || len(task.Objects) != 50-n || sum.Requeued != 50-n {
		t.Errorf("%d started, %d requeued (summary %d); want every object either started or requeued", n, len(task.Objects), sum.Requeued)
	}
	if task.Objects[0].Key != fmt.Sprintf("k%02d", n) || task.Attempt != 0 {
		t.Errorf("requeued task starts at %s attempt %d", task.Objects[0].Key, task.Attempt)
	}
}

func TestConcurrencyBoundsObjectsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		concurrency, objects int
	}{
		{"more objects than workers", 4, 60},
		{"fewer objects than workers", 16, 5},
		{"one at a time", 1, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := int32(min(tc.concurrency, tc.objects))
			var arrived, inFlight, peak atomic.Int32
			firstWaveIn := make(chan struct{})
			h := &encrypt.Handler{
				Rekeyer: fakeRekeyer{func(ctx context.Context, obj messages.Object) rekey.Result {
					n := inFlight.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					// The first wave holds until all of it is in flight (or
					// gives up), so reaching the bound does not depend on
					// timing.
					switch a := arrived.Add(1); {
					case a == want:
						close(firstWaveIn)
					case a < want:
						select {
						case <-firstWaveIn:
						case <-time.After(5 * time.Second):
						}
					}
					time.Sleep(time.Millisecond)
					inFlight.Add(-1)
					return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Updated}}
				}},
				Sender: &fakeSender{},
				Config: encrypt.Config{WorkQueueURL: "work", DeadLetterQueueURL: "dlq", Concurrency: tc.concurrency},
			}
			var objs []messages.Object
			for i := range tc.objects {
				objs = append(objs, messages.Object{Bucket: "bkt", Key: fmt.Sprintf("k%02d", i)})
			}
			_, sum := h.HandleWithSummary(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: mustEncode(t, objs...)}}})
			if sum.Outcomes["updated"] != tc.objects {
				t.Fatalf("outcomes %v, want %d updated", sum.Outcomes, tc.objects)
			}
			if peak.Load() != want {
				t.Errorf("peak %d objects in flight, want %d", peak.Load(), want)
			}
		})
	}
}

func TestSendFailureBecomesBatchItemFailure(t *testing.T) {
	h := &encrypt.Handler{
		Rekeyer: fakeRekeyer{func(ctx context.Context, obj messages.Object) rekey.Result {
			if obj.Key == "retry" {
				return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: "SlowDown"}}
			}
			return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Updated}}
		}},
		Sender: &fakeSender{err: errors.New("SQS is down")},
		Config: encrypt.Config{WorkQueueURL: "work", DeadLetterQueueURL: "dlq"},
	}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "ok", Body: mustEncode(t, messages.Object{Bucket: "bkt", Key: "fine"})},
		{MessageId: "needs-retry", Body: mustEncode(t, messages.Object{Bucket: "bkt", Key: "retry"})},
		{MessageId: "poison", Body: "nope"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	if strings.Join(ids, ",") != "poison,needs-retry" && strings.Join(ids, ",") != "needs-retry,poison" {
		t.Errorf("batch item failures %v, want the two messages whose follow-up could not be sent", ids)
	}
}

func TestRetryDelayGrowsAndIsCapped(t *testing.T) {
	sender := &fakeSender{}
	reason := "InternalError"
	h := &encrypt.Handler{
		Rekeyer: fakeRekeyer{func(context.Context, messages.Object) rekey.Result {
			return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: reason}}
		}},
		Sender: sender,
		Config: encrypt.Config{WorkQueueURL: "work", DeadLetterQueueURL: "dlq", MaxAttempts: 100, RetryBaseDelay: 2 * time.Second},
	}
	for _, attempt := range []int{0, 3, 20} {
		body, _ := messages.Task{Source: messages.SourceManual, Attempt: attempt, Objects: []messages.Object{{Bucket: "bkt", Key: "k"}}}.Encode()
		if _, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: body}}}); err != nil {
			t.Fatal(err)
		}
	}
	got := sender.sent["work"]
	if len(got) != 3 {
		t.Fatalf("%d requeues", len(got))
	}
	bounds := [][2]int32{{1, 2}, {8, 16}, {450, 900}}
	for i, m := range got {
		if m.DelaySeconds < bounds[i][0] || m.DelaySeconds > bounds[i][1] {
			t.Errorf("requeue %d delay %ds, want %d..%d", i, m.DelaySeconds, bounds[i][0], bounds[i][1])
		}
	}
	// Throttled objects come back within two seconds, however many times
	// they were refused: the window of objects in flight does the slowing.
	reason = "SlowDown"
	body, _ := messages.Task{Source: messages.SourceManual, Attempt: 20, Objects: []messages.Object{{Bucket: "bkt", Key: "k"}}}.Encode()
	if _, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: body}}}); err != nil {
		t.Fatal(err)
	}
	if d := sender.sent["work"][3].DelaySeconds; d < 1 || d > 2 {
		t.Errorf("throttled retry at attempt 20: delay %ds, want 1..2", d)
	}
	// So do objects held back by their budget, and neither runs out of
	// attempts.
	h.Config.MaxAttempts = 2
	for i, r := range []string{"SlowDown", rekey.ReasonBudget} {
		reason = r
		if _, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: body}}}); err != nil {
			t.Fatal(err)
		}
		if d := sender.sent["work"][4+i].DelaySeconds; d < 1 || d > 2 {
			t.Errorf("%s retry at attempt 20: delay %ds, want 1..2", r, d)
		}
	}
	if dead := sender.sent["dlq"]; len(dead) != 0 {
		t.Errorf("%d dead letters for throttling or budget waits, want none", len(dead))
	}
}

func TestEMFDocuments(t *testing.T) {
	p := newPipeline(t, encrypt.Config{})
	p.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("k")}, "x")
	if _, err := p.handler.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m", Body: mustEncode(t, messages.Object{Bucket: "data", Key: "k"}, messages.Object{Bucket: "data", Key: "missing"})},
	}}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(p.metrics.String()), "\n") {
		var doc struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
				}
			} `json:"_aws"`
			Outcome, Bucket string
			Objects         float64
		}
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		if doc.AWS.CloudWatchMetrics[0].Namespace != "s3rekey" || doc.Bucket != "data" {
			t.Errorf("EMF document %s", line)
		}
		seen[doc.Outcome] = doc.Objects
	}
	if seen["updated"] != 1 || seen["gone"] != 1 {
		t.Errorf("EMF counts %v", seen)
	}
}

func TestDuplicatesInOneBatchRunOnce(t *testing.T) {
	var calls atomic.Int32
	sender := &fakeSender{}
	h := &encrypt.Handler{
		Rekeyer: fakeRekeyer{func(context.Context, messages.Object) rekey.Result {
			calls.Add(1)
			return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Retry, Reason: "SlowDown"}}
		}},
		Sender: sender,
		Config: encrypt.Config{WorkQueueURL: "work", DeadLetterQueueURL: "dlq"},
	}
	obj := messages.Object{Bucket: "bkt", Key: "same"}
	_, sum := h.HandleWithSummary(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "a", Body: mustEncode(t, obj, obj)}, {MessageId: "b", Body: mustEncode(t, obj)},
	}})
	if calls.Load() != 1 || sum.Duplicates != 2 || sum.Requeued != 1 || len(sender.sent["work"]) != 1 {
		t.Errorf("calls %d, summary %+v, requeued messages %d; want one call and one requeue", calls.Load(), sum, len(sender.sent["work"]))
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv(encrypt.EnvWorkQueueURL, "https://sqs.us-east-1.amazonaws.com/111122223333/work")
	t.Setenv(encrypt.EnvDeadLetterQueueURL, "https://sqs.us-east-1.amazonaws.com/111122223333/work-dlq")
	t.Setenv(encrypt.EnvMaxAttempts, "")
	t.Setenv(encrypt.EnvConcurrency, "64")
	cfg, err := encrypt.ConfigFromEnv()
	if err != nil || cfg.Concurrency != 64 || cfg.MaxAttempts != 8 {
		t.Errorf("config %+v, %v", cfg, err)
	}
	t.Setenv(encrypt.EnvMaxAttempts, "zero")
	if _, err := encrypt.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), encrypt.EnvMaxAttempts) {
		t.Errorf("bad attempts: %v", err)
	}
	t.Setenv(encrypt.EnvMaxAttempts, "3")
	t.Setenv(encrypt.EnvUploadsQueueURL, "https://sqs.us-east-1.amazonaws.com/111122223333/uploads")
	if _, err := encrypt.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), encrypt.EnvUploadsDLQURL) {
		t.Errorf("an uploads queue without its DLQ: %v", err)
	}
	t.Setenv(encrypt.EnvUploadsDLQURL, "https://sqs.us-east-1.amazonaws.com/111122223333/uploads-dlq")
	if cfg, err := encrypt.ConfigFromEnv(); err != nil || cfg.UploadsDLQURL == "" {
		t.Errorf("uploads queue and DLQ: %+v, %v", cfg, err)
	}
	t.Setenv(encrypt.EnvWorkQueueURL, "")
	if _, err := encrypt.ConfigFromEnv(); err == nil {
		t.Error("missing work queue URL accepted")
	}
}

func TestRedeliveriesReadTheObjectInsteadOfTrustingFacts(t *testing.T) {
	var withFacts, withoutFacts atomic.Int32
	h := &encrypt.Handler{
		Rekeyer: fakeRekeyer{func(_ context.Context, obj messages.Object) rekey.Result {
			if obj.Facts != nil {
				withFacts.Add(1)
			} else {
				withoutFacts.Add(1)
			}
			return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Compliant}}
		}},
		Sender: &fakeSender{},
		Config: encrypt.Config{WorkQueueURL: "work", DeadLetterQueueURL: "dlq"},
	}
	facts := &messages.Facts{Encryption: "SSE-S3"}
	fresh := mustEncode(t, messages.Object{Bucket: "bkt", Key: "a", Facts: facts})
	retried, _ := messages.Task{Source: messages.SourceInventory, Attempt: 1, Objects: []messages.Object{{Bucket: "bkt", Key: "b", Facts: facts}}}.Encode()
	if _, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "fresh", Body: fresh, Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
		{MessageId: "redelivered", Body: mustEncode(t, messages.Object{Bucket: "bkt", Key: "c", Facts: facts}), Attributes: map[string]string{"ApproximateReceiveCount": "2"}},
		{MessageId: "retry", Body: retried},
	}}); err != nil {
		t.Fatal(err)
	}
	if withFacts.Load() != 1 || withoutFacts.Load() != 2 {
		t.Errorf("%d objects kept their facts, %d lost them; want only the fresh first delivery to keep them", withFacts.Load(), withoutFacts.Load())
	}
}

func TestConcurrentBatchesSerialiseOneObject(t *testing.T) {
	var inside, overlap atomic.Int32
	h := &encrypt.Handler{
		Rekeyer: fakeRekeyer{func(context.Context, messages.Object) rekey.Result {
			if inside.Add(1) > 1 {
				overlap.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
			inside.Add(-1)
			return rekey.Result{Outcome: rekey.Outcome{Status: rekey.Compliant}}
		}},
		Sender: &fakeSender{},
		Config: encrypt.Config{WorkQueueURL: "work", DeadLetterQueueURL: "dlq"},
	}
	body := mustEncode(t, messages.Object{Bucket: "bkt", Key: "same"})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: fmt.Sprint(i), Body: body}}})
		}()
	}
	wg.Wait()
	if overlap.Load() != 0 {
		t.Errorf("the same object was rekeyed by %d batches at once", overlap.Load()+1)
	}
}

// Budgets are shared through the jobs table: a policy with budgets and no
// table is refused at start, not run unpaced.
func TestBudgetsNeedTheJobsTable(t *testing.T) {
	pol, err := policy.Parse([]byte(`{"buckets":{"b1b":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k","maxObjectsPerSecond":100}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := (encrypt.Config{}).Check(pol); err == nil || !strings.Contains(err.Error(), jobs.EnvTable) {
		t.Errorf("budgets without a jobs table: %v, want an error naming %s", err, jobs.EnvTable)
	}
	if err := (encrypt.Config{Jobs: jobs.Config{Table: "jobs"}}).Check(pol); err != nil {
		t.Errorf("budgets with a jobs table: %v", err)
	}
}
