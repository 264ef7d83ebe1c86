package encrypt_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// breakerRig is an emulator with a work queue, a DLQ, a jobs table for the
// pauses, a bucket "data" of SSE-S3 objects, and a handler whose rekeyer
// the breaker guards (one object at a time, so that request counts are
// exact).
type breakerRig struct {
	*emutest.Env
	target          string
	workURL, dlqURL string
	table           *encrypt.PauseTable
	objects         []messages.Object
}

const breakerTable = "jobs"

func newBreakerRig(t *testing.T, opts emulator.Options, n int) *breakerRig {
	t.Helper()
	e := emutest.Start(t, opts)
	r := &breakerRig{Env: e, target: e.Key(t)}
	r.dlqURL, _ = e.Queue(t, "work-dlq", nil)
	r.workURL, _ = e.Queue(t, "work", nil)
	if err := demo.CreateJobsTable(context.Background(), e.Cfg, breakerTable); err != nil {
		t.Fatal(err)
	}
	r.table = &encrypt.PauseTable{API: dynamodb.NewFromConfig(e.Cfg), Name: breakerTable}
	e.Bucket(t, "data", false)
	for i := range n {
		key := fmt.Sprintf("obj/%03d", i)
		e.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key)}, "precious "+key)
		r.objects = append(r.objects, messages.Object{Bucket: "data", Key: key})
	}
	return r
}

// handler is one invocation environment: its own breaker state, shared with
// the others through the table.
func (r *breakerRig) handler(t *testing.T) (*encrypt.Handler, *encrypt.Breaker) {
	t.Helper()
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{"data":{"kmsKeyArn":%q,"bucketKeyEnabled":true}}}`, r.target)))
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(r.Cfg, emulator.PathStyle, encrypt.DetectNotS3)
	br := &encrypt.Breaker{Store: r.table, Refresh: time.Nanosecond, ProbeInterval: 400 * time.Millisecond}
	h := &encrypt.Handler{
		Rekeyer: br.Guard(&rekey.Rekeyer{Head: s3c, Update: s3c, Policy: pol}, policy.Static(pol)),
		Breaker: br,
		Sender:  &queue.Sender{API: r.SQS, Backoff: time.Millisecond},
		Config:  encrypt.Config{WorkQueueURL: r.workURL, DeadLetterQueueURL: r.dlqURL, Concurrency: 1, PausedRetryDelay: time.Second},
	}
	return h, br
}

// batch is the rig's objects as messages of five.
func (r *breakerRig) batch(t *testing.T) events.SQSEvent {
	t.Helper()
	var ev events.SQSEvent
	for i := 0; i < len(r.objects); i += 5 {
		body, err := messages.Task{Source: messages.SourceManual, Objects: r.objects[i:min(i+5, len(r.objects))]}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: strconv.Itoa(i), Body: body})
	}
	return ev
}

// receive takes what is on a queue now (waiting out delays up to wait).
func (r *breakerRig) receive(t *testing.T, url string, wait time.Duration) []messages.Task {
	t.Helper()
	var out []messages.Task
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		res, err := r.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Messages {
			task, err := messages.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, task)
			if _, err := r.SQS.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
		if len(res.Messages) == 0 && len(out) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

func objectCount(tasks []messages.Task) (n, maxAttempt int) {
	for _, task := range tasks {
		n += len(task.Objects)
		maxAttempt = max(maxAttempt, task.Attempt)
	}
	return n, maxAttempt
}

// TestBreakerPausesAndResumes: a target key S3 cannot use, or an endpoint
// that answers UpdateObjectEncryption as a PutObject, pauses the scope after
// one request: nothing is dead-lettered, every object's message is kept on
// the work queue (same attempt, delayed), no further request is sent for
// it, the pause is shared with other invocations, and the work resumes
// once the cause is fixed (by a probe) or by resume.
func TestBreakerPausesAndResumes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		opts       emulator.Options
		breakIt    func(t *testing.T, r *breakerRig)
		fix        func(t *testing.T, r *breakerRig)
		wantScope  func(r *breakerRig) string
		wantReason string
		probes     bool
	}{
		{
			// key-state.md [1]: S3 answers KMS.DisabledException.
			name: "disabled key",
			breakIt: func(t *testing.T, r *breakerRig) {
				must(t, func() error {
					_, err := r.KMS.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(r.target)})
					return err
				})
			},
			fix: func(t *testing.T, r *breakerRig) {
				must(t, func() error {
					_, err := r.KMS.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(r.target)})
					return err
				})
			},
			wantScope: func(r *breakerRig) string { return encrypt.ScopeKeyPrefix + r.target }, wantReason: encrypt.PauseKeyDisabled, probes: true,
		},
		{
			// API_ScheduleKeyDeletion.md; key-state.md [3]:
			// KMS.KMSInvalidStateException. CancelKeyDeletion leaves the key
			// Disabled (API_CancelKeyDeletion.md), so the fix enables it too.
			name: "key pending deletion",
			breakIt: func(t *testing.T, r *breakerRig) {
				must(t, func() error {
					_, err := r.KMS.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(r.target), PendingWindowInDays: aws.Int32(7)})
					return err
				})
			},
			fix: func(t *testing.T, r *breakerRig) {
				must(t, func() error {
					_, err := r.KMS.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(r.target)})
					return err
				})
				must(t, func() error {
					_, err := r.KMS.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(r.target)})
					return err
				})
			},
			wantScope: func(r *breakerRig) string { return encrypt.ScopeKeyPrefix + r.target }, wantReason: encrypt.PauseKeyPendingDeletion, probes: true,
		},
		{
			// key-policies.md: no principal may use a key its key policy
			// does not allow; conditions-kms.md: kms:ViaService.
			name: "key policy denies S3",
			breakIt: func(t *testing.T, r *breakerRig) {
				putKeyPolicy(t, r, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
				 {"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}]}`)
			},
			fix: func(t *testing.T, r *breakerRig) {
				putKeyPolicy(t, r, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`)
			},
			wantScope: func(r *breakerRig) string { return encrypt.ScopeKeyPrefix + r.target }, wantReason: encrypt.PauseKeyAccessDenied, probes: true,
		},
		{
			// UpdateObjectEncryption's answer has no ETag (Response Syntax:
			// RequestCharged only); one with an ETag is a PutObject's.
			name: "UpdateObjectEncryption answered with an ETag",
			breakIt: func(t *testing.T, r *breakerRig) {
				r.Emu.SetNotS3UpdateEncryption(true)
			},
			fix: func(t *testing.T, r *breakerRig) {
				r.Emu.SetNotS3UpdateEncryption(false)
				// No probe would be safe: only resume (s3rekey resume) ends it.
				if err := r.table.Resume(ctx, encrypt.ScopeAll); err != nil {
					t.Fatal(err)
				}
			},
			wantScope: func(*breakerRig) string { return encrypt.ScopeAll }, wantReason: encrypt.PauseNotS3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newBreakerRig(t, tc.opts, 15)
			h, br := r.handler(t)
			tc.breakIt(t, r)

			_, sum := h.HandleWithSummary(ctx, r.batch(t))
			if sum.DeadLetter != 0 || sum.Outcomes["retry: paused"] != len(r.objects) || sum.Requeued != len(r.objects) {
				t.Fatalf("first invocation: %+v; want every object held, none dead-lettered", sum)
			}
			if n := r.Emu.CountOf("s3", "UpdateObjectEncryption", "data"); n != 1 {
				t.Errorf("%d UpdateObjectEncryption requests, want 1: none after the first answer showed the fault", n)
			}
			paused := br.Paused(ctx)
			if len(paused) != 1 || paused[0].Scope != tc.wantScope(r) || paused[0].Reason != tc.wantReason || paused[0].Probes() != tc.probes {
				t.Fatalf("paused %+v, want %s %s (probes %v)", paused, tc.wantScope(r), tc.wantReason, tc.probes)
			}
			// Another invocation environment learns of it from the table.
			other, otherBreaker := r.handler(t)
			if got := otherBreaker.Paused(ctx); len(got) != 1 || got[0].Reason != tc.wantReason {
				t.Errorf("another invocation sees %+v", got)
			}
			kept := r.receive(t, r.workURL, 5*time.Second)
			if n, attempt := objectCount(kept); n != len(r.objects) || attempt != 0 {
				t.Fatalf("work queue holds %d objects (highest attempt %d), want all %d at attempt 0", n, attempt, len(r.objects))
			}
			if dead := r.receive(t, r.dlqURL, 100*time.Millisecond); len(dead) != 0 {
				t.Fatalf("dead-lettered: %+v", dead)
			}
			// While paused, the other invocation sends nothing either.
			time.Sleep(450 * time.Millisecond) // past a probe interval: a probe of a broken key re-pauses
			_, sum = other.HandleWithSummary(ctx, r.batch(t))
			wantRequests := int64(1)
			if tc.probes {
				wantRequests = 2 // the probe: one object let through
			}
			if n := r.Emu.CountOf("s3", "UpdateObjectEncryption", "data"); n != wantRequests || sum.DeadLetter != 0 {
				t.Errorf("while paused: %d requests in all (want %d), %d dead-lettered", n, wantRequests, sum.DeadLetter)
			}
			r.receive(t, r.workURL, 5*time.Second)

			tc.fix(t, r)
			time.Sleep(450 * time.Millisecond) // the next probe is due
			for round := 0; round < 5; round++ {
				_, sum = h.HandleWithSummary(ctx, r.batch(t))
				if sum.DeadLetter != 0 {
					t.Fatalf("after the fix: %+v", sum)
				}
				if sum.Outcomes["retry: paused"] == 0 {
					break
				}
				time.Sleep(450 * time.Millisecond)
			}
			if p := br.Paused(ctx); len(p) != 0 {
				t.Errorf("still paused after the fix: %+v", p)
			}
			intact := 0
			for _, obj := range r.objects {
				st, ok := r.Emu.Inspect("data", obj.Key, "")
				if !ok || st.KMSKeyARN != r.target {
					t.Errorf("%s: %+v, want it under the target key", obj.Key, st)
				}
				if got := r.body(t, obj.Key); got == "precious "+obj.Key {
					intact++
				}
			}
			// The server that is not S3 overwrote the one object it was
			// sent (the first, while updates ran one at a time); no other.
			if want := len(r.objects) - map[bool]int{true: 1}[tc.wantReason == encrypt.PauseNotS3]; intact != want {
				t.Errorf("%d objects intact, want %d", intact, want)
			}
		})
	}
}

func must(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func putKeyPolicy(t *testing.T, r *breakerRig, doc string) {
	t.Helper()
	must(t, func() error {
		_, err := r.KMS.PutKeyPolicy(context.Background(), &kms.PutKeyPolicyInput{KeyId: aws.String(r.target), PolicyName: aws.String("default"), Policy: aws.String(doc)})
		return err
	})
}

func (r *breakerRig) body(t *testing.T, key string) string {
	t.Helper()
	out, err := r.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b)
}

// inflightUpdates counts UpdateObjectEncryption requests (PUT ?encryption)
// in flight through an HTTP client, and the most at once.
type inflightUpdates struct {
	next      aws.HTTPClient
	now, peak atomic.Int64
}

func (c *inflightUpdates) Do(r *http.Request) (*http.Response, error) {
	if _, ok := r.URL.Query()["encryption"]; !ok || r.Method != http.MethodPut {
		return c.next.Do(r)
	}
	n := c.now.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	defer c.now.Add(-1)
	return c.next.Do(r)
}

// TestUpdatesOneAtATimeUntilS3Answers: until an UpdateObjectEncryption is
// answered as S3 answers it (200, no ETag), a client's updates go one at a
// time, so that an endpoint that is not S3 overwrites one object, not a
// window of them; once one is, they go concurrently.
func TestUpdatesOneAtATimeUntilS3Answers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		notS3    bool
		wantPeak func(int64) bool
	}{
		{"not S3: never verified", true, func(p int64) bool { return p == 1 }},
		{"S3", false, func(p int64) bool { return p > 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newBreakerRig(t, emulator.Options{NotS3UpdateEncryption: tc.notS3}, 24)
			r.Emu.SetLatency(emulator.Latency{Service: "s3", Operation: "UpdateObjectEncryption", Delay: 20 * time.Millisecond})
			cfg := r.Cfg
			counter := &inflightUpdates{next: cfg.HTTPClient}
			cfg.HTTPClient = counter
			s3c := s3.NewFromConfig(cfg, emulator.PathStyle, encrypt.DetectNotS3)
			var wg sync.WaitGroup
			for _, obj := range r.objects {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s3c.UpdateObjectEncryption(context.Background(), &s3.UpdateObjectEncryptionInput{Bucket: aws.String("data"), Key: aws.String(obj.Key),
						ObjectEncryption: &s3types.ObjectEncryptionMemberSSEKMS{Value: s3types.SSEKMSEncryption{KMSKeyArn: aws.String(r.target)}}})
					if tc.notS3 && apiCode(err) != encrypt.NotS3Code {
						t.Errorf("%s: %v, want %s", obj.Key, err, encrypt.NotS3Code)
					}
					if !tc.notS3 && err != nil {
						t.Errorf("%s: %v", obj.Key, err)
					}
				}()
			}
			wg.Wait()
			if !tc.wantPeak(counter.peak.Load()) {
				t.Errorf("peak updates in flight %d", counter.peak.Load())
			}
		})
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
