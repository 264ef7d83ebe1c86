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

type fakeKMS struct {
	target string
	err    error
	calls  int
}

func (f *fakeKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &kms.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{Arn: aws.String(f.target)}}, nil
}

func TestResolverFollowsARepointedAlias(t *testing.T) {
	pol, err := policy.Parse([]byte(`{"buckets":{"bkt":{"kmsKeyArn":"alias/app-data"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "arn:aws:kms:us-east-1:111122223333:key/a", "arn:aws:kms:us-east-1:111122223333:key/b"
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
