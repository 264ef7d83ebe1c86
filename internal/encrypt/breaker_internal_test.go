package encrypt

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/keyalias"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

const testTarget = "arn:aws:kms:us-east-1:111122223333:key/target"

// TestTripSigns: which answers pause which scope. Whether S3's message for
// a disabled key names the key is not documented, so each reading is
// taken: naming the target pauses it, naming no key pauses the target (a
// probe ends it if that was wrong), naming another key (the object's
// source key) is the object's own failure.
func TestTripSigns(t *testing.T) {
	keyScope := ScopeKeyPrefix + testTarget
	for _, tc := range []struct {
		name               string
		outcome            rekey.Outcome
		wantScope, wantWhy string
		wantProbes         bool
	}{
		{"disabled target, named", rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonInvalidRequest, Detail: "KMS.DisabledException: " + testTarget + " is disabled."},
			keyScope, PauseKeyDisabled, true},
		{"disabled key, unnamed", rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonInvalidRequest, Detail: "KMS.DisabledException: The request was rejected because the specified KMS key is not enabled."},
			keyScope, PauseKeyDisabled, true},
		{"disabled source key", rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonInvalidRequest, Detail: "KMS.DisabledException: arn:aws:kms:us-east-1:111122223333:key/source is disabled."},
			"", "", false},
		{"pending deletion", rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonInvalidRequest, Detail: "KMS.KMSInvalidStateException: " + testTarget + " is pending deletion."},
			keyScope, PauseKeyPendingDeletion, true},
		{"deleted key", rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonInvalidRequest, Detail: "KMS.NotFoundException: Invalid keyId " + testTarget},
			keyScope, PauseKeyNotFound, true},
		{"key policy denies S3", rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonAccessDenied, Detail: "User is not authorized to perform: kms:GenerateDataKey on resource: " + testTarget + " because no resource-based policy allows the kms:GenerateDataKey action"},
			keyScope, PauseKeyAccessDenied, true},
		{"key of another account (seed 000)", rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonAccessDenied, Detail: "The Amazon Web Services KMS key in the request must be owned by the same account as the bucket. Modify the request to specify a KMS key from the same account, and then try again."},
			keyScope, PauseKeyOtherAccount, true},
		{"plain access denied: the object's", rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonAccessDenied, Detail: "Access Denied"},
			"", "", false},
		{"not S3", rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonInvalidRequest, Detail: NotS3Code + ": UpdateObjectEncryption was answered with ETag"},
			ScopeAll, PauseNotS3, false},
		{"throttled", rekey.Outcome{Status: rekey.Retry, Reason: "SlowDown", Detail: "KMS.DisabledException"}, "", "", false},
		{"disabled, answered as a 5xx", rekey.Outcome{Status: rekey.Retry, Reason: "KMS.DisabledException", Detail: testTarget + " is disabled."},
			keyScope, PauseKeyDisabled, true},
		{"KMS internal error: passes by itself", rekey.Outcome{Status: rekey.Retry, Reason: "KMS.KMSInternalException", Detail: "internal"}, "", "", false},
		{"updated", rekey.Outcome{Status: rekey.Updated}, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scope, why, probes := tripSign(tc.outcome, testTarget, "data")
			if scope != tc.wantScope || why != tc.wantWhy || probes != tc.wantProbes {
				t.Errorf("tripSign = %q %q %v, want %q %q %v", scope, why, probes, tc.wantScope, tc.wantWhy, tc.wantProbes)
			}
		})
	}
}

// resolverSource is a policy source that reports key states and errors as
// keyalias.Resolver does.
type resolverSource struct {
	mu       sync.Mutex
	pol      *policy.Policy
	err      error
	unusable map[string]string
}

func (s *resolverSource) Current(context.Context) (*policy.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.pol, nil
}

func (s *resolverSource) Unusable() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unusable
}

type countingRekeyer struct {
	calls, inFlight, peak atomic.Int64
	outcome               rekey.Outcome
}

func (c *countingRekeyer) Rekey(context.Context, messages.Object) rekey.Result {
	c.calls.Add(1)
	n := c.inFlight.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	time.Sleep(time.Millisecond)
	c.inFlight.Add(-1)
	return rekey.Result{Outcome: c.outcome, Updates: 1}
}

// TestGuardFollowsTheResolver: a target the key resolver reports disabled
// is paused before any request, and resumed when the resolver sees it
// enabled; an alias resolving to an untrusted key pauses everything until
// the resolution is trusted again.
func TestGuardFollowsTheResolver(t *testing.T) {
	pol, err := policy.Parse([]byte(`{"buckets":{"data":{"kmsKeyArn":"` + testTarget + `"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	src := &resolverSource{pol: pol, unusable: map[string]string{testTarget: "Disabled"}}
	inner := &countingRekeyer{outcome: rekey.Outcome{Status: rekey.Updated}}
	b := &Breaker{}
	g := b.Guard(inner, src)
	obj := messages.Object{Bucket: "data", Key: "k"}
	if res := g.Rekey(context.Background(), obj); !IsPaused(res.Outcome) || inner.calls.Load() != 0 {
		t.Fatalf("disabled per DescribeKey: %v after %d requests, want paused before any", res.Outcome, inner.calls.Load())
	}
	if p := b.Paused(context.Background()); len(p) != 1 || p[0].Reason != PauseKeyDisabled {
		t.Fatalf("paused %+v", p)
	}
	src.mu.Lock()
	src.unusable = nil
	src.mu.Unlock()
	if res := g.Rekey(context.Background(), obj); res.Status != rekey.Updated || len(b.Paused(context.Background())) != 0 {
		t.Fatalf("enabled again: %v, paused %+v", res.Outcome, b.Paused(context.Background()))
	}

	src.mu.Lock()
	src.err = &keyalias.UntrustedKeyError{Alias: "alias/x", KeyARN: "arn:aws:kms:us-east-1:111122223333:key/evil", Why: "is not in trustedKeys.keyArns"}
	src.mu.Unlock()
	before := inner.calls.Load()
	if res := g.Rekey(context.Background(), obj); !IsPaused(res.Outcome) || inner.calls.Load() != before {
		t.Fatalf("untrusted key: %v", res.Outcome)
	}
	if p := b.Paused(context.Background()); len(p) != 1 || p[0].Scope != ScopeAll || p[0].Reason != PauseUntrustedKey {
		t.Fatalf("paused %+v", p)
	}
	src.mu.Lock()
	src.err = nil
	src.mu.Unlock()
	if res := g.Rekey(context.Background(), obj); res.Status != rekey.Updated || len(b.Paused(context.Background())) != 0 {
		t.Errorf("trusted again: %v, paused %+v", res.Outcome, b.Paused(context.Background()))
	}
}

// TestProbeOutranksAStaleKeyState: the key resolver reads a key's state
// every few minutes; once a probe has shown the key working, its older
// report of the key disabled does not pause it again.
func TestProbeOutranksAStaleKeyState(t *testing.T) {
	pol, err := policy.Parse([]byte(`{"buckets":{"data":{"kmsKeyArn":"` + testTarget + `"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	src := &resolverSource{pol: pol, unusable: map[string]string{testTarget: "Disabled"}}
	inner := &countingRekeyer{outcome: rekey.Outcome{Status: rekey.Updated}}
	b := &Breaker{ProbeInterval: time.Second, Now: func() time.Time { return now }}
	g := b.Guard(inner, src)
	obj := messages.Object{Bucket: "data", Key: "k"}
	if res := g.Rekey(context.Background(), obj); !IsPaused(res.Outcome) || inner.calls.Load() != 0 {
		t.Fatalf("first: %v", res.Outcome)
	}
	if res := g.Rekey(context.Background(), obj); !IsPaused(res.Outcome) || inner.calls.Load() != 0 {
		t.Fatalf("before the probe is due: %v", res.Outcome)
	}
	now = now.Add(time.Second)
	if res := g.Rekey(context.Background(), obj); res.Status != rekey.Updated || inner.calls.Load() != 1 {
		t.Fatalf("the probe: %v after %d requests", res.Outcome, inner.calls.Load())
	}
	for range 3 {
		if res := g.Rekey(context.Background(), obj); res.Status != rekey.Updated {
			t.Fatalf("after a successful probe, with the resolver still reporting Disabled: %v", res.Outcome)
		}
	}
	if p := b.Paused(context.Background()); len(p) != 0 {
		t.Errorf("paused %+v", p)
	}
}

// TestAccessDeniedStreakPausesTheBucket: S3 may answer a KMS refusal with
// a bare AccessDenied (undocumented); so may a bucket policy that refuses
// everything. After DeniedStreak such answers in a row the bucket is
// paused, not dead-lettered object by object; a probe denied again keeps
// it paused, and one that succeeds resumes it. Denials broken by a success
// never pause.
func TestAccessDeniedStreakPausesTheBucket(t *testing.T) {
	pol, err := policy.Parse([]byte(`{"buckets":{"data":{"kmsKeyArn":"` + testTarget + `"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	inner := &countingRekeyer{outcome: rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonAccessDenied, Detail: "Access Denied"}}
	b := &Breaker{ProbeInterval: time.Second, Now: func() time.Time { return now }}
	g := b.Guard(inner, policy.Static(pol))
	obj := messages.Object{Bucket: "data", Key: "k"}
	for i := 1; i < DeniedStreak; i++ {
		if res := g.Rekey(context.Background(), obj); res.Status != rekey.Failed {
			t.Fatalf("denial %d: %v, want it the object's own", i, res.Outcome)
		}
	}
	if res := g.Rekey(context.Background(), obj); !IsPaused(res.Outcome) {
		t.Fatalf("denial %d: %v, want the bucket paused", DeniedStreak, res.Outcome)
	}
	calls := inner.calls.Load()
	if res := g.Rekey(context.Background(), obj); !IsPaused(res.Outcome) || inner.calls.Load() != calls {
		t.Fatalf("while paused: %v after %d more requests", res.Outcome, inner.calls.Load()-calls)
	}
	now = now.Add(time.Second)
	if res := g.Rekey(context.Background(), obj); !IsPaused(res.Outcome) || inner.calls.Load() != calls+1 {
		t.Fatalf("a probe denied again: %v", res.Outcome)
	}
	if p := b.Paused(context.Background()); len(p) != 1 || p[0].Scope != ScopeBucketPrefix+"data" || p[0].Reason != PauseAccessDeniedStreak {
		t.Fatalf("paused %+v", p)
	}
	now = now.Add(time.Second)
	inner.outcome = rekey.Outcome{Status: rekey.Updated}
	if res := g.Rekey(context.Background(), obj); res.Status != rekey.Updated || len(b.Paused(context.Background())) != 0 {
		t.Fatalf("a probe that succeeds: %v, paused %+v", res.Outcome, b.Paused(context.Background()))
	}
	// Interleaved with successes, denials stay the objects' own.
	for i := range 3 * DeniedStreak {
		inner.outcome = rekey.Outcome{Status: rekey.Failed, Reason: rekey.ReasonAccessDenied, Detail: "Access Denied"}
		if i%10 == 9 {
			inner.outcome = rekey.Outcome{Status: rekey.Updated}
		}
		if res := g.Rekey(context.Background(), obj); IsPaused(res.Outcome) {
			t.Fatalf("object %d paused though successes break the streak", i)
		}
	}
}

// TestPausedIsNeverExhausted: an object held by the breaker at its last
// attempt is neither dead-lettered nor counted as failed in its job.
func TestPausedIsNeverExhausted(t *testing.T) {
	cfg := Config{}.withDefaults()
	paused := pausedResult(Pause{Scope: ScopeAll, Reason: PauseNotS3}).Outcome
	if exhausted(paused, cfg.MaxAttempts-1, cfg) {
		t.Error("a paused object at its last attempt counts as exhausted")
	}
	if _, ok := counted(paused, cfg.MaxAttempts-1, cfg); ok {
		t.Error("a paused object at its last attempt is counted in its job")
	}
}
