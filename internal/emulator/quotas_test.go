package emulator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
)

// S3's request rates apply per partitioned prefix and answer 503 SlowDown
// above them (userguide optimizing-performance); PUT-class and GET/HEAD
// have their own rates.
func TestS3QuotasPerPartition(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "quota", false)
	frozen := time.Now()
	e.Emu.SetQuotas(emulator.Quotas{S3PutPerSecond: 20, S3GetPerSecond: 40, Clock: func() time.Time { return frozen }})
	put := func(key string) error {
		_, err := e.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("quota"), Key: aws.String(key), Body: strings.NewReader("x")})
		return err
	}
	slow := 0
	for i := range 60 {
		if err := put("a/k" + string(rune('0'+i%10))); err != nil {
			if code(err) != "SlowDown" || status(err) != 503 {
				t.Fatalf("over the rate: %v, want 503 SlowDown", err)
			}
			slow++
		}
	}
	if slow != 40 {
		t.Errorf("%d of 60 PUTs within one second slowed down at 20/s, want 40", slow)
	}
	frozen = frozen.Add(time.Second) // a second later the partition has its 20 again
	if err := put("a/later"); err != nil {
		t.Errorf("a second later: %v", err)
	}
	if err := put("b/other-partition"); err != nil {
		t.Errorf("another partition is throttled too: %v", err)
	}
	if _, err := e.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("quota"), Key: aws.String("a/k1")}); err != nil {
		t.Errorf("GET-class requests have their own rate: %v", err)
	}
}

// The account's KMS rate is shared by direct calls and the ones S3 makes
// for UpdateObjectEncryption without a bucket key: direct callers get
// ThrottlingException, S3 answers 503 SlowDown naming KMS.
func TestKMSQuotaSharedWithS3(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	key := e.Key(t)
	e.Bucket(t, "quota", false)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("quota"), Key: aws.String("k")}, "x")
	frozen := time.Now()
	e.Emu.SetQuotas(emulator.Quotas{KMSPerSecond: 5, Clock: func() time.Time { return frozen }})
	enc, err := e.KMS.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("secret")})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := e.KMS.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "secret" || aws.ToString(dec.KeyId) != key {
		t.Fatalf("Decrypt: %+v %v", dec, err)
	}
	for range 3 { // the rest of the second's five
		if _, err := e.KMS.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(key), KeySpec: "AES_256"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.KMS.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); code(err) != "ThrottlingException" {
		t.Errorf("direct call over the rate: %v, want ThrottlingException", err)
	}
	_, err = e.S3.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{Bucket: aws.String("quota"), Key: aws.String("k"),
		ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(key)}}})
	if code(err) != "SlowDown" || status(err) != 503 || !strings.Contains(err.Error(), "AWS KMS") {
		t.Errorf("UpdateObjectEncryption without a bucket key over the KMS rate: %v, want 503 SlowDown naming KMS", err)
	}
	if st, _ := e.Emu.Inspect("quota", "k", ""); st.Encryption != "SSE-S3" {
		t.Errorf("a throttled update changed the object: %s", st.Encryption)
	}
	// With a bucket key S3 makes no KMS call per object: not throttled.
	if _, err := e.S3.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{Bucket: aws.String("quota"), Key: aws.String("k"),
		ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(key), BucketKeyEnabled: aws.Bool(true)}}}); err != nil {
		t.Errorf("with a bucket key: %v", err)
	}
}
