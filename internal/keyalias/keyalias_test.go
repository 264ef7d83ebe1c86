package keyalias

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// fakeKMS answers DescribeKey as KMS does (API_DescribeKey.md): the alias
// resolves to target, whose metadata is a customer managed, enabled,
// symmetric encryption key unless meta changes it; tags are its tags.
type fakeKMS struct {
	target string
	meta   func(*types.KeyMetadata)
	tags   map[string]string
	err    error
	calls  int
}

func (f *fakeKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	arn := f.target
	if strings.Contains(aws.ToString(in.KeyId), ":key/") {
		arn = aws.ToString(in.KeyId)
	}
	md := &types.KeyMetadata{Arn: aws.String(arn), KeyManager: types.KeyManagerTypeCustomer, KeySpec: types.KeySpecSymmetricDefault,
		KeyUsage: types.KeyUsageTypeEncryptDecrypt, KeyState: types.KeyStateEnabled, Enabled: true}
	if f.meta != nil {
		f.meta(md)
	}
	return &kms.DescribeKeyOutput{KeyMetadata: md}, nil
}

func (f *fakeKMS) ListResourceTags(_ context.Context, in *kms.ListResourceTagsInput, _ ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error) {
	out := &kms.ListResourceTagsOutput{}
	for k, v := range f.tags {
		out.Tags = append(out.Tags, types.Tag{TagKey: aws.String(k), TagValue: aws.String(v)})
	}
	return out, nil
}

const keyA, keyB = "arn:aws:kms:us-east-1:111122223333:key/a", "arn:aws:kms:us-east-1:111122223333:key/b"

func mustParse(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	pol, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func TestResolverFollowsARepointedAlias(t *testing.T) {
	pol := mustParse(t, `{"buckets":{"bkt":{"kmsKeyArn":"alias/app-data"}}}`)
	const a, b = keyA, keyB
	api := &fakeKMS{target: a}
	now := time.Unix(0, 0)
	r := &Resolver{API: api, Configured: pol, Now: func() time.Time { return now }}
	current := func() string {
		p, _ := r.Current(context.Background())
		bkt, _ := p.Lookup("bkt")
		return bkt.KMSKeyARN
	}
	if current() != a {
		t.Fatalf("resolved to %s", current())
	}
	api.target = b
	now = now.Add(time.Minute)
	if got := current(); got != a || api.calls != 1 {
		t.Errorf("within the TTL: %s after %d calls, want the cached %s", got, api.calls, a)
	}
	now = now.Add(DefaultTTL)
	if got := current(); got != b {
		t.Errorf("after the TTL: %s, want %s", got, b)
	}
	// A failed re-resolution keeps the last good policy and says so.
	api.err = errors.New("throttled")
	now = now.Add(DefaultTTL)
	p, err := r.Current(context.Background())
	if bkt, _ := p.Lookup("bkt"); err == nil || bkt.KMSKeyARN != b {
		t.Errorf("on a failed refresh: %s, %v; want the last good key and the error", bkt.KMSKeyARN, err)
	}
}

func TestUnresolvableAliasNamesIt(t *testing.T) {
	pol, _ := policy.Parse([]byte(`{"buckets":{"bkt":{"kmsKeyArn":"alias/missing"}}}`))
	_, err := NewResolver(context.Background(), &fakeKMS{err: errors.New("NotFoundException")}, pol)
	if err == nil || !strings.Contains(err.Error(), "alias/missing") {
		t.Errorf("error %v does not name the alias", err)
	}
}

// TestOnlyTrustedTargets: a key an alias resolves to must be customer
// managed (KeyManager CUSTOMER), a symmetric encryption key (KeySpec
// SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT: API_KeyMetadata.md), and,
// when the policy pins its keys, in trustedKeys.keyArns or tagged with
// trustedKeys.tag. Otherwise the cold start stops naming the alias and the
// key, and a refresh withdraws the policy.
func TestOnlyTrustedTargets(t *testing.T) {
	const alias = `"kmsKeyArn":"alias/app-data"`
	for _, tc := range []struct {
		name, policy string
		meta         func(*types.KeyMetadata)
		tags         map[string]string
		wantWhy      string // empty: trusted
	}{
		{name: "any customer key without pinning", policy: `{"buckets":{"bkt":{` + alias + `}}}`},
		{name: "AWS managed key", policy: `{"buckets":{"bkt":{` + alias + `}}}`,
			meta: func(m *types.KeyMetadata) { m.KeyManager = types.KeyManagerTypeAws }, wantWhy: "not a customer managed key"},
		{name: "asymmetric key", policy: `{"buckets":{"bkt":{` + alias + `}}}`,
			meta: func(m *types.KeyMetadata) { m.KeySpec, m.KeyUsage = types.KeySpecRsa2048, types.KeyUsageTypeSignVerify }, wantWhy: "not a symmetric encryption key"},
		{name: "HMAC key", policy: `{"buckets":{"bkt":{` + alias + `}}}`,
			meta: func(m *types.KeyMetadata) {
				m.KeySpec, m.KeyUsage = types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac
			}, wantWhy: "not a symmetric encryption key"},
		{name: "symmetric key whose answer leaves KeyUsage out", policy: `{"buckets":{"bkt":{` + alias + `}}}`,
			meta: func(m *types.KeyMetadata) { m.KeyUsage = "" }},
		{name: "symmetric spec with another usage", policy: `{"buckets":{"bkt":{` + alias + `}}}`,
			meta: func(m *types.KeyMetadata) { m.KeyUsage = types.KeyUsageTypeGenerateVerifyMac }, wantWhy: "not an encryption key"},
		{name: "in the allowlist", policy: `{"trustedKeys":{"keyArns":["` + keyA + `"]},"buckets":{"bkt":{` + alias + `}}}`},
		{name: "outside the allowlist", policy: `{"trustedKeys":{"keyArns":["` + keyB + `"]},"buckets":{"bkt":{` + alias + `}}}`,
			wantWhy: "not in trustedKeys.keyArns"},
		{name: "carrying the tag", policy: `{"trustedKeys":{"tag":{"key":"s3rekey-target","value":"yes"}},"buckets":{"bkt":{` + alias + `}}}`,
			tags: map[string]string{"s3rekey-target": "yes"}},
		{name: "tag with another value", policy: `{"trustedKeys":{"tag":{"key":"s3rekey-target","value":"yes"}},"buckets":{"bkt":{` + alias + `}}}`,
			tags: map[string]string{"s3rekey-target": "no"}, wantWhy: "not tagged s3rekey-target=yes"},
		{name: "neither listed nor tagged", policy: `{"trustedKeys":{"keyArns":["` + keyB + `"],"tag":{"key":"t","value":"v"}},"buckets":{"bkt":{` + alias + `}}}`,
			wantWhy: "neither in trustedKeys.keyArns nor tagged t=v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := mustParse(t, tc.policy)
			api := &fakeKMS{target: keyA, meta: tc.meta, tags: tc.tags}
			_, err := NewResolver(context.Background(), api, pol)
			if tc.wantWhy == "" {
				if err != nil {
					t.Fatalf("trusted key refused: %v", err)
				}
				return
			}
			var untrusted *UntrustedKeyError
			if !errors.As(err, &untrusted) || !strings.Contains(err.Error(), tc.wantWhy) ||
				!strings.Contains(err.Error(), "alias/app-data") || !strings.Contains(err.Error(), keyA) {
				t.Fatalf("cold start: %v, want an UntrustedKeyError naming the alias, %s and %q", err, keyA, tc.wantWhy)
			}
			// The same key reached by repointing the alias after a good
			// cold start: the policy is withdrawn, not kept.
			api.target, api.meta, api.tags = keyB, nil, nil
			if tag := pol.TrustTag(); tag != nil {
				api.tags = map[string]string{tag.Key: tag.Value}
			}
			now := time.Unix(0, 0)
			r, err := NewResolver(context.Background(), api, pol)
			if err != nil {
				t.Fatalf("cold start on a trusted key: %v", err)
			}
			r.Now = func() time.Time { return now }
			r.last.Load().at = now
			api.target, api.meta, api.tags = keyA, tc.meta, tc.tags
			now = now.Add(DefaultTTL)
			p, err := r.Current(context.Background())
			if !errors.As(err, &untrusted) || p != nil {
				t.Errorf("alias repointed to it: policy %v, error %v; want no policy and an UntrustedKeyError", p, err)
			}
		})
	}
}

// TestColdStartStopsOnAnUnusableTarget: a target key that is disabled or
// pending deletion (API_KeyMetadata.md, KeyState) stops the cold start
// naming the key, whether the policy names it by alias or by ARN.
func TestColdStartStopsOnAnUnusableTarget(t *testing.T) {
	for _, state := range []types.KeyState{types.KeyStateDisabled, types.KeyStatePendingDeletion} {
		for _, ref := range []string{`alias/app-data`, keyA} {
			t.Run(string(state)+" "+ref, func(t *testing.T) {
				pol := mustParse(t, `{"buckets":{"bkt":{"kmsKeyArn":"`+ref+`"}}}`)
				api := &fakeKMS{target: keyA, meta: func(m *types.KeyMetadata) { m.KeyState, m.Enabled = state, false }}
				_, err := NewResolver(context.Background(), api, pol)
				var unusable *UnusableKeyError
				if !errors.As(err, &unusable) || unusable.KeyARN != keyA || unusable.State != string(state) || !strings.Contains(err.Error(), keyA) {
					t.Errorf("cold start: %v, want an UnusableKeyError naming %s as %s", err, keyA, state)
				}
			})
		}
	}
}

// TestFailedRefreshBacksOff: while KMS fails, a thousand objects make one
// DescribeKey per back-off period (10 s, doubling up to the TTL), not one
// each, and keep the last good policy meanwhile.
func TestFailedRefreshBacksOff(t *testing.T) {
	pol := mustParse(t, `{"buckets":{"bkt":{"kmsKeyArn":"alias/app-data"}}}`)
	api := &fakeKMS{target: keyA}
	now := time.Unix(0, 0)
	r := &Resolver{API: api, Configured: pol, Now: func() time.Time { return now }}
	if _, err := r.Current(context.Background()); err != nil {
		t.Fatal(err)
	}
	api.err, api.calls = errors.New("KMSInternalException"), 0
	now = now.Add(DefaultTTL)
	objects := func() {
		t.Helper()
		for range 1000 {
			p, err := r.Current(context.Background())
			if bkt, _ := p.Lookup("bkt"); err == nil || bkt.KMSKeyARN != keyA {
				t.Fatalf("during the outage: %v %v, want the last good key and the error", p, err)
			}
		}
	}
	objects()
	if api.calls != 1 {
		t.Fatalf("1000 objects after a failed refresh made %d DescribeKey calls, want 1", api.calls)
	}
	for _, period := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, DefaultTTL, DefaultTTL} {
		now = now.Add(period - time.Millisecond)
		before := api.calls
		objects()
		if api.calls != before {
			t.Fatalf("within a back-off of %v: %d more calls, want none", period, api.calls-before)
		}
		now = now.Add(time.Millisecond)
		objects()
		if api.calls != before+1 {
			t.Fatalf("after a back-off of %v: %d more calls, want 1", period, api.calls-before)
		}
	}
	api.err = nil
	now = now.Add(DefaultTTL)
	if _, err := r.Current(context.Background()); err != nil {
		t.Errorf("after KMS recovered: %v", err)
	}
}
