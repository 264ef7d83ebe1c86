package emulator_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// TestKMSKeyLifecycle follows a key through its states as the KMS API
// reference describes them: API_DisableKey.md, API_EnableKey.md,
// API_ScheduleKeyDeletion.md (PendingWindowInDays 7 to 30, default 30, state
// PendingDeletion with a DeletionDate), API_CancelKeyDeletion.md (the key is
// Disabled afterwards), and the key-state table of key-state.md with its
// footnotes [1] (DisabledException: <key ARN> is disabled), [3]
// (KMSInvalidStateException: <key ARN> is pending deletion) and [4] (… is
// not pending deletion).
func TestKMSKeyLifecycle(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	keyARN := mustKey(t, e)
	state := func() kmstypes.KeyMetadata {
		t.Helper()
		out, err := e.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
		if err != nil {
			t.Fatal(err)
		}
		return *out.KeyMetadata
	}
	encrypt := func() error {
		_, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("x")})
		return err
	}
	sealed, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyARN), Plaintext: []byte("secret")})
	if err != nil {
		t.Fatal(err)
	}
	cryptoCalls := map[string]func() error{
		"Encrypt": encrypt,
		"Decrypt": func() error {
			_, err := e.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: sealed.CiphertextBlob})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := e.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyARN), KeySpec: kmstypes.DataKeySpecAes256})
			return err
		},
		"ReEncrypt to it": func() error {
			other, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(mustKey(t, e)), Plaintext: []byte("y")})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.kms.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: other.CiphertextBlob, DestinationKeyId: aws.String(keyARN)})
			return err
		},
	}
	for name, call := range cryptoCalls {
		if err := call(); err != nil {
			t.Fatalf("%s on an enabled key: %v", name, err)
		}
	}

	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyARN)}); err != nil {
		t.Fatal(err)
	}
	if md := state(); md.KeyState != kmstypes.KeyStateDisabled || md.Enabled {
		t.Errorf("after DisableKey: %s enabled=%v", md.KeyState, md.Enabled)
	}
	for name, call := range cryptoCalls {
		err := call()
		var disabled *kmstypes.DisabledException
		if !errors.As(err, &disabled) || !strings.Contains(apiMessage(err), "is disabled") {
			t.Errorf("%s on a disabled key: %v, want DisabledException", name, err)
		}
	}
	if _, err := e.kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyARN)}); err != nil {
		t.Fatal(err)
	}
	if md := state(); md.KeyState != kmstypes.KeyStateEnabled || !md.Enabled || encrypt() != nil {
		t.Errorf("after EnableKey: %s enabled=%v", md.KeyState, md.Enabled)
	}

	for _, days := range []int32{6, 31} {
		_, err := e.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyARN), PendingWindowInDays: aws.Int32(days)})
		if apiCode(err) != "ValidationException" {
			t.Errorf("PendingWindowInDays %d: %v, want ValidationException", days, err)
		}
	}
	before := time.Now()
	scheduled, err := e.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyARN), PendingWindowInDays: aws.Int32(7)})
	if err != nil {
		t.Fatal(err)
	}
	if scheduled.KeyState != kmstypes.KeyStatePendingDeletion || aws.ToString(scheduled.KeyId) != keyARN || aws.ToInt32(scheduled.PendingWindowInDays) != 7 {
		t.Errorf("ScheduleKeyDeletion answer %+v", scheduled)
	}
	if d := scheduled.DeletionDate; d == nil || d.Before(before.Add(7*24*time.Hour-time.Minute)) || d.After(before.Add(7*24*time.Hour+time.Minute)) {
		t.Errorf("DeletionDate %v, want 7 days from now", scheduled.DeletionDate)
	}
	if md := state(); md.KeyState != kmstypes.KeyStatePendingDeletion || md.Enabled || md.DeletionDate == nil || aws.ToInt32(md.PendingDeletionWindowInDays) != 7 {
		t.Errorf("DescribeKey pending deletion: %+v", md)
	}
	for name, call := range cryptoCalls {
		err := call()
		var invalid *kmstypes.KMSInvalidStateException
		if !errors.As(err, &invalid) || !strings.Contains(apiMessage(err), "is pending deletion") {
			t.Errorf("%s on a key pending deletion: %v, want KMSInvalidStateException", name, err)
		}
	}
	for name, call := range map[string]func() error{
		"EnableKey": func() error {
			_, err := e.kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(keyARN)})
			return err
		},
		"DisableKey": func() error {
			_, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyARN)})
			return err
		},
		"ScheduleKeyDeletion": func() error {
			_, err := e.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyARN)})
			return err
		},
	} {
		var invalid *kmstypes.KMSInvalidStateException
		if err := call(); !errors.As(err, &invalid) {
			t.Errorf("%s on a key pending deletion: %v, want KMSInvalidStateException", name, err)
		}
	}
	if _, err := e.kms.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(keyARN)}); err != nil {
		t.Fatal(err)
	}
	if md := state(); md.KeyState != kmstypes.KeyStateDisabled || md.DeletionDate != nil {
		t.Errorf("after CancelKeyDeletion: %s %v, want Disabled", md.KeyState, md.DeletionDate)
	}
	_, err = e.kms.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(keyARN)})
	var invalid *kmstypes.KMSInvalidStateException
	if !errors.As(err, &invalid) || !strings.Contains(apiMessage(err), "is not pending deletion") {
		t.Errorf("CancelKeyDeletion of a key not pending deletion: %v", err)
	}
	// Default 30 days.
	out, err := e.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyARN)})
	if err != nil || aws.ToInt32(out.PendingWindowInDays) != 30 {
		t.Errorf("default window: %+v %v", out, err)
	}
	// A source key pending deletion still decrypts in ReEncrypt
	// (key-state.md, footnote [10]).
	if _, err := e.kms.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: sealed.CiphertextBlob, DestinationKeyId: aws.String(mustKey(t, e))}); err != nil {
		t.Errorf("ReEncrypt from a key pending deletion: %v", err)
	}
}

// TestS3UsesOfAnUnusableKey: S3 answers the KMS error of a key it must use,
// prefixed "KMS." (KMS.DisabledException, KMS.KMSInvalidStateException:
// the AmazonS3Exception codes the RDS user guide lists for a misconfigured
// key, "Failure messages for Amazon S3 export tasks"), for
// UpdateObjectEncryption to such a key, an upload or copy under it, and a
// read of an object under it.
func TestS3UsesOfAnUnusableKey(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "bkt", false)
	source := mustKey(t, e)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("under-source"),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(source)}, "data")
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("sse-s3")}, "data")

	for _, tc := range []struct {
		name, code string
		unusable   func(keyARN string) error
	}{
		{"disabled", "KMS.DisabledException", func(keyARN string) error {
			_, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyARN)})
			return err
		}},
		{"pending deletion", "KMS.KMSInvalidStateException", func(keyARN string) error {
			_, err := e.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyARN), PendingWindowInDays: aws.Int32(7)})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := mustKey(t, e)
			if err := tc.unusable(target); err != nil {
				t.Fatal(err)
			}
			_, err := e.s3.UpdateObjectEncryption(ctx, uoeInput("bkt", "sse-s3", target))
			if apiCode(err) != tc.code || httpStatus(err) != 400 || !strings.Contains(apiMessage(err), target) {
				t.Errorf("UpdateObjectEncryption to it: %v, want %s naming the key", err, tc.code)
			}
			_, err = e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("new"), Body: strings.NewReader("x"),
				ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(target)})
			if apiCode(err) != tc.code {
				t.Errorf("PutObject under it: %v, want %s", err, tc.code)
			}
			_, err = e.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy"), CopySource: aws.String("bkt/sse-s3"),
				ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(target)})
			if apiCode(err) != tc.code {
				t.Errorf("CopyObject under it: %v, want %s", err, tc.code)
			}
			if _, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("new")}); err == nil {
				t.Error("a refused upload left an object")
			}
		})
	}
	// The source key of an SSE-KMS object, disabled: the object cannot be
	// read nor moved to another key (S3 must decrypt its data key).
	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(source)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("under-source")})
	if apiCode(err) != "KMS.DisabledException" {
		t.Errorf("GetObject under a disabled key: %v", err)
	}
	_, err = e.s3.UpdateObjectEncryption(ctx, uoeInput("bkt", "under-source", mustKey(t, e)))
	if apiCode(err) != "KMS.DisabledException" {
		t.Errorf("UpdateObjectEncryption from a disabled key: %v", err)
	}
	if _, err := e.kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(source)}); err != nil {
		t.Fatal(err)
	}
	got, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("under-source")})
	if err != nil {
		t.Fatalf("GetObject after EnableKey: %v", err)
	}
	body, _ := io.ReadAll(got.Body)
	if string(body) != "data" {
		t.Errorf("body %q", body)
	}
}

// TestKeyPolicyDenyingS3: a key policy is the primary access control of a
// KMS key; no principal may use the key unless the key policy allows it
// (key-policies.md). A policy that denies uses through S3 (kms:ViaService,
// conditions-kms.md) makes UpdateObjectEncryption to the key 403
// AccessDenied, while direct use is still allowed.
func TestKeyPolicyDenyingS3(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "bkt", false)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("o")}, "data")
	target := mustKey(t, e)
	policy := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}]}`
	if _, err := e.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(target), Policy: aws.String(policy), PolicyName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	got, err := e.kms.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(target), PolicyName: aws.String("default")})
	if err != nil || aws.ToString(got.Policy) != policy {
		t.Errorf("GetKeyPolicy: %v %v", got, err)
	}
	_, err = e.s3.UpdateObjectEncryption(ctx, uoeInput("bkt", "o", target))
	if apiCode(err) != "AccessDenied" || httpStatus(err) != 403 || !strings.Contains(apiMessage(err), "resource-based policy") {
		t.Errorf("UpdateObjectEncryption to a key whose policy denies S3: %v", err)
	}
	if _, err := e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(target), Plaintext: []byte("x")}); err != nil {
		t.Errorf("direct Encrypt, which the policy allows: %v", err)
	}
	// A key policy that allows nothing refuses direct use too.
	if _, err := e.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(target), PolicyName: aws.String("default"),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:DescribeKey","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(target), Plaintext: []byte("x")})
	if apiCode(err) != "AccessDeniedException" {
		t.Errorf("Encrypt not allowed by the key policy: %v", err)
	}
}

// TestNotS3UpdateEncryption: with the option, PUT /key?encryption is served
// as a server that is not S3 serves it: a PutObject of the XML body,
// answered with an ETag, the object overwritten.
func TestNotS3UpdateEncryption(t *testing.T) {
	e := start(t, emulator.Options{NotS3UpdateEncryption: true})
	ctx := context.Background()
	mustBucket(t, e, "bkt", false)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("o")}, "precious")
	target := mustKey(t, e)
	var etag string
	captureETag := func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("etag", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				if resp, ok := out.RawResponse.(*smithyhttp.Response); ok {
					etag = resp.Header.Get("ETag")
				}
				return out, md, err
			}), middleware.After)
		})
	}
	if _, err := e.s3.UpdateObjectEncryption(ctx, uoeInput("bkt", "o", target), captureETag); err != nil {
		t.Fatal(err)
	}
	if etag == "" {
		t.Error("the answer carries no ETag")
	}
	got, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("o")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	if !strings.Contains(string(body), "ObjectEncryption") {
		t.Errorf("object after the answer: %q, want the request body (overwritten)", body)
	}
}

// TestKMSTags: TagResource, ListResourceTags and UntagResource
// (API_TagResource.md, API_ListResourceTags.md, API_UntagResource.md).
func TestKMSTags(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	keyARN := mustKey(t, e)
	list := func() map[string]string {
		t.Helper()
		out, err := e.kms.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(keyARN)})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, tag := range out.Tags {
			m[aws.ToString(tag.TagKey)] = aws.ToString(tag.TagValue)
		}
		return m
	}
	if len(list()) != 0 {
		t.Error("a new key has tags")
	}
	if _, err := e.kms.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(keyARN), Tags: []kmstypes.Tag{
		{TagKey: aws.String("s3rekey-target"), TagValue: aws.String("true")}, {TagKey: aws.String("team"), TagValue: aws.String("data")}}}); err != nil {
		t.Fatal(err)
	}
	if got := list(); got["s3rekey-target"] != "true" || got["team"] != "data" || len(got) != 2 {
		t.Errorf("tags %v", got)
	}
	if _, err := e.kms.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(keyARN), TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 1 || got["s3rekey-target"] != "true" {
		t.Errorf("after untag: %v", got)
	}
	_, err := e.kms.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(keyARN), Tags: []kmstypes.Tag{{TagKey: aws.String(""), TagValue: aws.String("x")}}})
	if err == nil {
		t.Error("an empty tag key was accepted")
	}
}
