package emulator_test

import (
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

func TestSmoke(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "smoke", false)
	key := mustKey(t, e)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("smoke"), Key: aws.String("a b/c+d.txt")}, "hello")
	h, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("smoke"), Key: aws.String("a b/c+d.txt")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("head: %v %v", h.ServerSideEncryption, aws.ToString(h.ETag))
	_, err = e.s3.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{Bucket: aws.String("smoke"), Key: aws.String("a b/c+d.txt"),
		ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(key), BucketKeyEnabled: aws.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("smoke"), Key: aws.String("a b/c+d.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(g.Body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("get: %q %v %v %v", b, g.ServerSideEncryption, aws.ToString(g.SSEKMSKeyId), aws.ToBool(g.BucketKeyEnabled))
}
