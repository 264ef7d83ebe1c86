package rekey_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/budget"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// recordingPacer records what it is asked to wait for.
type recordingPacer struct {
	mu    sync.Mutex
	waits map[string]int // scope → requests
	rates map[string]float64
	err   error
}

func (p *recordingPacer) Wait(_ context.Context, scope string, perSecond float64, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.waits[scope] += n
	p.rates[scope] = perSecond
	return nil
}

// TestBudgetsCountObjectsOnceAndKMSAsS3Calls runs objects of every
// encryption under a policy with budgets, with and without bucket keys on
// the target, and checks what each is paced for: one object against its
// bucket's budget however many requests it takes, and exactly the KMS
// requests the emulated S3 makes on the caller's behalf (userguide
// bucket-key.md: with a bucket key S3 does not call KMS per object;
// UpdateObjectEncryption: S3 decrypts an SSE-KMS source's data key and
// encrypts it under the target).
func TestBudgetsCountObjectsOnceAndKMSAsS3Calls(t *testing.T) {
	for _, targetBucketKey := range []bool{true, false} {
		t.Run(fmt.Sprintf("target bucket key %v", targetBucketKey), func(t *testing.T) {
			e := emutest.Start(t, emulator.Options{})
			target, old := e.Key(t), e.Key(t)
			e.Bucket(t, "data", false)
			pol, err := policy.Parse(fmt.Appendf(nil, `{"maxKmsRequestsPerSecond":500,"buckets":{"data":{"kmsKeyArn":%q,"bucketKeyEnabled":%v,"maxObjectsPerSecond":200}}}`,
				target, targetBucketKey))
			if err != nil {
				t.Fatal(err)
			}
			kms := func(key string, bk bool) func(*s3.PutObjectInput) {
				return func(in *s3.PutObjectInput) {
					in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, aws.String(key), aws.Bool(bk)
				}
			}
			objects := map[string]func(*s3.PutObjectInput){
				"sse-s3": nil, "kms old no bk": kms(old, false), "kms old bk": kms(old, true), "kms target bk": kms(target, true),
			}
			for key, edit := range objects {
				in := &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key)}
				if edit != nil {
					edit(in)
				}
				e.Put(t, in, "x")
			}
			e.Emu.ResetCounts()
			pacer := &recordingPacer{waits: map[string]int{}, rates: map[string]float64{}}
			r := &rekey.Rekeyer{Head: e.S3, Update: e.S3, Policy: pol, Budget: pacer}
			requests := 0
			for key := range objects {
				res := r.Rekey(context.Background(), messages.Object{Bucket: "data", Key: key})
				requests += res.Heads + res.Updates
			}
			s3KMS := e.Emu.CountOf("kms", "Decrypt", "data") + e.Emu.CountOf("kms", "Encrypt", "data")
			if got := pacer.waits["kms"]; int64(got) != s3KMS {
				t.Errorf("paced for %d KMS requests, S3 made %d", got, s3KMS)
			}
			if got := pacer.waits[rekey.ScopeBucket("data")]; got != len(objects) {
				t.Errorf("%d objects counted against the bucket's budget for %d requests, want %d", got, requests, len(objects))
			}
			if pacer.rates[rekey.ScopeBucket("data")] != 200 || (s3KMS > 0 && pacer.rates["kms"] != 500) {
				t.Errorf("budgets %v, want the policy's 200 objects/s and 500 KMS requests/s", pacer.rates)
			}
		})
	}
}

// TestBudgetUnavailableSendsNothing: an object whose budget cannot be
// waited for is retried, with no request sent.
func TestBudgetUnavailableSendsNothing(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	e.Bucket(t, "data", false)
	pol, err := policy.Parse(fmt.Appendf(nil, `{"buckets":{"data":{"kmsKeyArn":%q,"maxObjectsPerSecond":10}}}`, e.Key(t)))
	if err != nil {
		t.Fatal(err)
	}
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("k")}, "x")
	pacer := &recordingPacer{err: errors.New("table unavailable")}
	r := &rekey.Rekeyer{Head: e.S3, Update: e.S3, Policy: pol, Budget: pacer}
	res := r.Rekey(context.Background(), messages.Object{Bucket: "data", Key: "k"})
	if res.Status != rekey.Retry || res.Reason != rekey.ReasonBudget || res.Heads+res.Updates != 0 || !rekey.Waiting(res.Outcome) {
		t.Errorf("got %+v, want a budget retry with no request sent", res)
	}
}

// takingPacer is a recordingPacer that also takes requests without
// waiting (rekey.Taker), recording whether each call came from an upload.
type takingPacer struct {
	mu                     sync.Mutex
	waits, takes, aheadOff map[string]int
}

func (p *takingPacer) Wait(ctx context.Context, scope string, _ float64, n int) error {
	return p.record(ctx, p.waits, scope, n)
}

func (p *takingPacer) Take(ctx context.Context, scope string, _ float64, n int) error {
	return p.record(ctx, p.takes, scope, n)
}

func (p *takingPacer) record(ctx context.Context, into map[string]int, scope string, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	into[scope] += n
	if !budget.IsAhead(ctx) {
		p.aheadOff[scope] += n
	}
	return nil
}

// TestUploadsGoAheadUnderBudgets: an upload's object (its context marked
// by budget.Ahead, as the encrypt handler marks uploads) is counted against
// its bucket's budget without waiting for it, and waits for the KMS budget
// as a request ahead; a backfill's object waits for both.
func TestUploadsGoAheadUnderBudgets(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	target := e.Key(t)
	e.Bucket(t, "data", false)
	pol, err := policy.Parse(fmt.Appendf(nil, `{"maxKmsRequestsPerSecond":500,"buckets":{"data":{"kmsKeyArn":%q,"maxObjectsPerSecond":200}}}`, target))
	if err != nil {
		t.Fatal(err)
	}
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("upload")}, "x")
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("backfill")}, "x")
	for _, tc := range []struct {
		name, key                 string
		ctx                       context.Context
		wantWaits, wantTakes, off int
	}{
		{"upload", "upload", budget.Ahead(context.Background()), 1, 1, 0},
		{"backfill", "backfill", context.Background(), 2, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pacer := &takingPacer{waits: map[string]int{}, takes: map[string]int{}, aheadOff: map[string]int{}}
			r := &rekey.Rekeyer{Head: e.S3, Update: e.S3, Policy: pol, Budget: pacer}
			if res := r.Rekey(tc.ctx, messages.Object{Bucket: "data", Key: tc.key}); res.Status != rekey.Updated {
				t.Fatalf("outcome %v", res.Outcome)
			}
			bucket := rekey.ScopeBucket("data")
			waits := pacer.waits[bucket] + pacer.waits[rekey.ScopeKMS]
			if waits != tc.wantWaits || pacer.takes[bucket] != tc.wantTakes || pacer.takes[rekey.ScopeKMS] != 0 {
				t.Errorf("waits %v, takes %v; want %d waits and %d takes of the bucket's budget", pacer.waits, pacer.takes, tc.wantWaits, tc.wantTakes)
			}
			if got := pacer.aheadOff[bucket] + pacer.aheadOff[rekey.ScopeKMS]; got != tc.off {
				t.Errorf("%d requests not marked ahead, want %d", got, tc.off)
			}
		})
	}
}
