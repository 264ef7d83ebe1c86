// Package keyalias resolves the KMS aliases a policy names its target keys
// by, and re-resolves them every few minutes, so that repointing an alias
// (key rotation by alias) re-targets new work without a redeploy.
// UpdateObjectEncryption takes key ARNs only, and the compliance check
// compares key ARNs, so the functions only ever see resolved policies.
//
// A key an alias resolves to must be one s3rekey may move objects onto: a
// customer managed symmetric encryption key, trusted by the policy when it
// pins its keys (trustedKeys). Otherwise resolution fails naming the alias
// and the key. Resolution also reads every target's key state: a disabled
// key or one pending deletion stops a cold start, and after it is reported
// to the circuit breaker (Unusable).
package keyalias

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// DescribeKeyAPI resolves an alias (or key id) to its key.
type DescribeKeyAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// ListResourceTagsAPI reads a key's tags, for a policy that trusts keys by
// tag.
type ListResourceTagsAPI interface {
	ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, optFns ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error)
}

var (
	_ DescribeKeyAPI      = (*kms.Client)(nil)
	_ ListResourceTagsAPI = (*kms.Client)(nil)
)

// DefaultTTL is how long a resolution is used before it is made again.
const DefaultTTL = 5 * time.Minute

// Back-off of a failed re-resolution: the first retry after
// FirstRetryDelay, doubling up to the TTL, so that a KMS outage costs one
// DescribeKey per alias per period rather than one per object.
const FirstRetryDelay = 10 * time.Second

// UntrustedKeyError is an alias resolved to a key s3rekey must not move
// objects onto.
type UntrustedKeyError struct {
	Alias, KeyARN, Why string
}

func (e *UntrustedKeyError) Error() string {
	return fmt.Sprintf("alias %s resolves to %s, which %s", e.Alias, e.KeyARN, e.Why)
}

// UnusableKeyError is a target key in a state that forbids its use.
type UnusableKeyError struct {
	KeyARN, State string
}

func (e *UnusableKeyError) Error() string {
	return fmt.Sprintf("target key %s is %s: S3 cannot use it (enable it, or cancel its deletion, and the work resumes)", e.KeyARN, e.State)
}

// Resolve returns the policy with every alias replaced by its key ARN, one
// DescribeKey per alias, each resolved key checked as the package doc says;
// keys named by ARN are left unread (the CLI's view of a policy).
func Resolve(ctx context.Context, api DescribeKeyAPI, p *policy.Policy) (*policy.Policy, error) {
	out, _, err := resolve(ctx, api, p, false)
	return out, err
}

// ResolveChecked is Resolve that also reads every key named by ARN (the
// functions' cold start and refreshes: the encrypt role may DescribeKey its
// targets) and returns the key state of every target that is not Enabled
// (key ARN → state). A target it may not describe is an error naming it.
func ResolveChecked(ctx context.Context, api DescribeKeyAPI, p *policy.Policy) (*policy.Policy, map[string]string, error) {
	return resolve(ctx, api, p, true)
}

func resolve(ctx context.Context, api DescribeKeyAPI, p *policy.Policy, checkARNs bool) (*policy.Policy, map[string]string, error) {
	unusable := map[string]string{}
	out, err := p.WithKeys(func(alias string) (string, error) {
		md, err := describe(ctx, api, alias)
		if err != nil {
			return "", fmt.Errorf("does not resolve: %w", err)
		}
		arn := aws.ToString(md.Arn)
		if why := unfit(md); why != "" {
			return "", &UntrustedKeyError{Alias: alias, KeyARN: arn, Why: why}
		}
		if why, err := untrusted(ctx, api, p, arn); err != nil {
			return "", err
		} else if why != "" {
			return "", &UntrustedKeyError{Alias: alias, KeyARN: arn, Why: why}
		}
		if md.KeyState != types.KeyStateEnabled {
			unusable[arn] = string(md.KeyState)
		}
		return arn, nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, b := range out.Buckets {
		if b.KeyAlias != "" || !checkARNs {
			continue
		}
		md, err := describe(ctx, api, b.KMSKeyARN)
		if err != nil {
			return nil, nil, fmt.Errorf("policy: target key %s: reading its state: %w", b.KMSKeyARN, err)
		}
		if why := unfit(md); why != "" {
			return nil, nil, fmt.Errorf("policy: target key %s %s", b.KMSKeyARN, why)
		}
		if md.KeyState != types.KeyStateEnabled {
			unusable[b.KMSKeyARN] = string(md.KeyState)
		}
	}
	return out, unusable, nil
}

func describe(ctx context.Context, api DescribeKeyAPI, ref string) (*types.KeyMetadata, error) {
	out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
	if err != nil {
		return nil, err
	}
	if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.Arn) == "" {
		return nil, errors.New("DescribeKey returned no key")
	}
	return out.KeyMetadata, nil
}

// unfit says why a key cannot be a target: UpdateObjectEncryption takes a
// symmetric encryption key (SSE-KMS), and an AWS managed key is not one a
// policy may choose (its key policy is AWS's).
func unfit(md *types.KeyMetadata) string {
	switch {
	case md.KeyManager != types.KeyManagerTypeCustomer:
		return "is not a customer managed key (KeyManager " + string(md.KeyManager) + ")"
	case md.KeySpec != types.KeySpecSymmetricDefault:
		return "is not a symmetric encryption key (KeySpec " + string(md.KeySpec) + ")"
	case md.KeyUsage != "" && md.KeyUsage != types.KeyUsageTypeEncryptDecrypt:
		// A SYMMETRIC_DEFAULT key can only encrypt and decrypt (CreateKey:
		// "For symmetric encryption KMS keys, omit the parameter or specify
		// ENCRYPT_DECRYPT"), so an answer that leaves KeyUsage out, as
		// moto 5.2.1 does, still names an encryption key.
		return "is not an encryption key (KeyUsage " + string(md.KeyUsage) + ")"
	}
	return ""
}

// untrusted says why a policy that pins its keys does not trust arn.
func untrusted(ctx context.Context, api DescribeKeyAPI, p *policy.Policy, arn string) (string, error) {
	if !p.Pinned() || p.TrustsKeyARN(arn) {
		return "", nil
	}
	tag := p.TrustTag()
	if tag == nil {
		return "is not in trustedKeys.keyArns", nil
	}
	tags, ok := api.(ListResourceTagsAPI)
	if !ok {
		return "", errors.New("policy: trustedKeys.tag needs kms:ListResourceTags")
	}
	var marker *string
	for range 50 { // 50 tags per key at most (KMS quotas); a page holds 50
		out, err := tags.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(arn), Marker: marker})
		if err != nil {
			return "", fmt.Errorf("policy: reading the tags of %s: %w", arn, err)
		}
		for _, t := range out.Tags {
			if aws.ToString(t.TagKey) == tag.Key && aws.ToString(t.TagValue) == tag.Value {
				return "", nil
			}
		}
		if !out.Truncated || out.NextMarker == nil {
			break
		}
		marker = out.NextMarker
	}
	if len(p.TrustedKeys.KeyARNs) > 0 {
		return "is neither in trustedKeys.keyArns nor tagged " + tag.Key + "=" + tag.Value, nil
	}
	return "is not tagged " + tag.Key + "=" + tag.Value + " (trustedKeys.tag)", nil
}

// Resolver keeps a policy resolved: Current resolves again once the last
// resolution is older than TTL. A failed re-resolution keeps the last good
// policy (an alias briefly unreadable must not stop enforcement), reports
// the error, and is not tried again before its back-off ends. An alias
// repointed to a key the policy does not trust is not such a failure: the
// policy is withdrawn, and every object waits (see the circuit breaker)
// until the alias is put back or the policy changed.
type Resolver struct {
	API        DescribeKeyAPI
	Configured *policy.Policy
	TTL        time.Duration // 0: DefaultTTL
	Now        func() time.Time

	mu   sync.Mutex // held while resolving
	last atomic.Pointer[resolution]
}

// resolution is the outcome of the last resolution: a policy (the last
// good one after a failure), when it was resolved, and after a failure the
// error and when to try again.
type resolution struct {
	policy   *policy.Policy
	unusable map[string]string
	at       time.Time
	err      error
	retryAt  time.Time
	backoff  time.Duration
}

// NewResolver resolves p once, as a cold start does: an alias that does
// not resolve, a key that is not trusted, and a target disabled or pending
// deletion are errors naming them.
func NewResolver(ctx context.Context, api DescribeKeyAPI, p *policy.Policy) (*Resolver, error) {
	r := &Resolver{API: api, Configured: p}
	if _, err := r.Current(ctx); err != nil {
		return nil, err
	}
	for arn, state := range r.Unusable() {
		return nil, &UnusableKeyError{KeyARN: arn, State: state}
	}
	return r, nil
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Resolver) ttl() time.Duration {
	if r.TTL <= 0 {
		return DefaultTTL
	}
	return r.TTL
}

// Current returns the resolved policy, resolving again when it is stale.
// It is called for every object, so a fresh resolution is read without a
// lock.
func (r *Resolver) Current(ctx context.Context) (*policy.Policy, error) {
	if last := r.last.Load(); last != nil && r.usable(last) {
		return last.policy, last.err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.last.Load()
	if last != nil && r.usable(last) {
		return last.policy, last.err // another caller resolved it meanwhile
	}
	p, unusable, err := ResolveChecked(ctx, r.API, r.Configured)
	now := r.now()
	if err == nil {
		r.last.Store(&resolution{policy: p, unusable: unusable, at: now})
		return p, nil
	}
	next := &resolution{err: err, backoff: FirstRetryDelay}
	if last != nil {
		next.policy, next.unusable, next.at = last.policy, last.unusable, last.at
		if last.err != nil {
			next.backoff = min(2*last.backoff, r.ttl())
		}
	}
	var untrusted *UntrustedKeyError
	if errors.As(err, &untrusted) {
		next.policy, next.unusable = nil, nil // never keep moving objects by an alias that left the trusted keys
	}
	next.retryAt = now.Add(next.backoff)
	r.last.Store(next)
	return next.policy, err
}

// usable reports a resolution to answer with: fresh, or a failure still in
// its back-off.
func (r *Resolver) usable(last *resolution) bool {
	now := r.now()
	if last.err != nil {
		return now.Before(last.retryAt)
	}
	return now.Sub(last.at) < r.ttl()
}

// Unusable lists the targets of the last good resolution that are not
// Enabled (key ARN → key state), for the circuit breaker.
func (r *Resolver) Unusable() map[string]string {
	if last := r.last.Load(); last != nil {
		return last.unusable
	}
	return nil
}
