package emutest

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/emulator"
)

// Env is a running emulator with clients that do not retry, so that every
// answer is seen as sent.
type Env struct {
	Emu *emulator.Emulator
	Cfg aws.Config
	S3  *s3.Client
	SQS *sqs.Client
	KMS *kms.Client
}

// Start runs an emulator until the test ends.
func Start(t testing.TB, opts emulator.Options) *Env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	emu, err := emulator.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = emu.Close() })
	cfg := emu.AWSConfig()
	cfg.HTTPClient = awsconf.NewHTTPClient()
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return &Env{Emu: emu, Cfg: cfg, S3: s3.NewFromConfig(cfg, emulator.PathStyle), SQS: sqs.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg)}
}

// Key creates a KMS key and returns its ARN.
func (e *Env) Key(t testing.TB) string {
	t.Helper()
	out, err := e.KMS.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("test key")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// Bucket creates a bucket, with Object Lock when lock is set.
func (e *Env) Bucket(t testing.TB, name string, lock bool) {
	t.Helper()
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := e.S3.CreateBucket(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// Versioned creates a bucket with versioning enabled.
func (e *Env) Versioned(t testing.TB, name string) {
	t.Helper()
	e.Bucket(t, name, false)
	if _, err := e.S3.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: aws.String(name),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
}

// Put uploads body with the given input and options.
func (e *Env) Put(t testing.TB, in *s3.PutObjectInput, body string, opts ...func(*s3.Options)) *s3.PutObjectOutput {
	t.Helper()
	in.Body = bytes.NewReader([]byte(body))
	out, err := e.S3.PutObject(context.Background(), in, opts...)
	if err != nil {
		t.Fatalf("PutObject %s/%s: %v", aws.ToString(in.Bucket), aws.ToString(in.Key), err)
	}
	return out
}

// Queue creates a queue and returns its URL and ARN.
func (e *Env) Queue(t testing.TB, name string, attrs map[string]string) (url, arn string) {
	t.Helper()
	ctx := context.Background()
	q, err := e.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(q.QueueUrl), a.Attributes["QueueArn"]
}
