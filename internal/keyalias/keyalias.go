// Package keyalias resolves the KMS aliases a policy names its target keys
// by, and re-resolves them every few minutes, so that repointing an alias
// (key rotation by alias) re-targets new work without a redeploy.
// UpdateObjectEncryption takes key ARNs only, and the compliance check
// compares key ARNs, so the functions only ever see resolved policies.
package keyalias

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// DescribeKeyAPI resolves an alias (or key id) to its key.
type DescribeKeyAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

var _ DescribeKeyAPI = (*kms.Client)(nil)

// DefaultTTL is how long a resolution is used before it is made again.
const DefaultTTL = 5 * time.Minute

// Resolve returns the policy with every alias replaced by its key ARN,
// one DescribeKey per alias. A policy without aliases comes back as is.
func Resolve(ctx context.Context, api DescribeKeyAPI, p *policy.Policy) (*policy.Policy, error) {
	if len(p.Aliases()) == 0 {
		return p, nil
	}
	return p.WithKeys(func(alias string) (string, error) {
		out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
		if err != nil {
			return "", fmt.Errorf("does not resolve: %w", err)
		}
		if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.Arn) == "" {
			return "", fmt.Errorf("DescribeKey returned no key")
		}
		return aws.ToString(out.KeyMetadata.Arn), nil
	})
}

// Resolver keeps a policy resolved: Current resolves again once the last
// resolution is older than TTL. A failed re-resolution keeps the last good
// policy (an alias briefly unreadable must not stop enforcement) and
// reports the error.
type Resolver struct {
	API        DescribeKeyAPI
	Configured *policy.Policy
	TTL        time.Duration // 0: DefaultTTL
	Now        func() time.Time

	mu   sync.Mutex // held while resolving
	last atomic.Pointer[resolution]
}

// resolution is a resolved policy and when it was resolved.
type resolution struct {
	policy *policy.Policy
	at     time.Time
}

// NewResolver resolves p once, as a cold start does: an alias that does
// not resolve is an error naming it.
func NewResolver(ctx context.Context, api DescribeKeyAPI, p *policy.Policy) (*Resolver, error) {
	r := &Resolver{API: api, Configured: p}
	if _, err := r.Current(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Current returns the resolved policy, resolving again when it is stale.
// It is called for every object, so a fresh resolution is read without a
// lock.
func (r *Resolver) Current(ctx context.Context) (*policy.Policy, error) {
	if last := r.last.Load(); last != nil && r.fresh(last) {
		return last.policy, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.last.Load()
	if last != nil && r.fresh(last) {
		return last.policy, nil // another caller resolved it meanwhile
	}
	p, err := Resolve(ctx, r.API, r.Configured)
	if err != nil {
		if last != nil {
			return last.policy, err
		}
		return nil, err
	}
	r.last.Store(&resolution{policy: p, at: r.now()})
	return p, nil
}

func (r *Resolver) fresh(last *resolution) bool {
	ttl := r.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return r.now().Sub(last.at) < ttl
}
