package witness_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/witness"
)

func TestMain(m *testing.M) { witness.Main(m) }

// Every witness answers S3 on its own endpoint, and moto's shared state
// keeps names apart.
func TestEndpointsServe(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		name := witness.Name("probe")
		if _, err := w.S3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
			t.Fatalf("%s at %s: CreateBucket: %v", w.Name, w.Endpoint, err)
		}
		if _, err := w.S3.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	})
}
