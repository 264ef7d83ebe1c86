package keyalias

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
)

// TestAgainstTheEmulator runs the resolver on the emulator's KMS: a key
// trusted by tag resolves; the alias repointed (UpdateAlias) to an untagged
// key withdraws the policy; a trusted target disabled after cold start is
// reported unusable at the next refresh, and usable again once enabled.
func TestAgainstTheEmulator(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	trusted, other := e.Key(t), e.Key(t)
	if _, err := e.KMS.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(trusted), Tags: []types.Tag{{TagKey: aws.String("s3rekey-target"), TagValue: aws.String("true")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.KMS.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app-data"), TargetKeyId: aws.String(trusted)}); err != nil {
		t.Fatal(err)
	}
	pol := mustParse(t, `{"trustedKeys":{"tag":{"key":"s3rekey-target","value":"true"}},"buckets":{"bkt":{"kmsKeyArn":"alias/app-data"}}}`)
	r, err := NewResolver(ctx, e.KMS, pol)
	if err != nil {
		t.Fatalf("cold start on a tagged key: %v", err)
	}
	now := time.Now()
	r.Now = func() time.Time { return now }
	refresh := func() error {
		now = now.Add(DefaultTTL + FirstRetryDelay*64)
		_, err := r.Current(ctx)
		return err
	}

	if _, err := e.KMS.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(trusted)}); err != nil {
		t.Fatal(err)
	}
	if err := refresh(); err != nil || r.Unusable()[trusted] != "Disabled" {
		t.Errorf("disabled target: %v, unusable %v", err, r.Unusable())
	}
	if _, err := e.KMS.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(trusted)}); err != nil {
		t.Fatal(err)
	}
	if err := refresh(); err != nil || len(r.Unusable()) != 0 {
		t.Errorf("enabled again: %v, unusable %v", err, r.Unusable())
	}

	if _, err := e.KMS.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/app-data"), TargetKeyId: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	err = refresh()
	var untrusted *UntrustedKeyError
	if p, _ := r.Current(ctx); !errors.As(err, &untrusted) || untrusted.KeyARN != other || p != nil {
		t.Errorf("alias repointed to an untagged key: %v, policy %v", err, p)
	}
	if _, err := NewResolver(ctx, e.KMS, pol); !errors.As(err, &untrusted) {
		t.Errorf("cold start on the untagged key: %v", err)
	}
}
