package ownercheck

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/retire"
	"github.com/s3rekey/s3rekey/internal/verify"
)

// TestOwnBucketRequestsNameTheOwner runs the requests to s3rekey's own
// buckets (inventory reads, report and evidence writes and reads, retire
// records) against the emulator, which answers as S3 does: 403 Access
// Denied when the expected owner is not the bucket's
// (docs/AmazonS3/latest/userguide/bucket-owner-condition.md). Each
// succeeds with the bucket's account and is refused with another: the
// owner reaches the request, whatever the caller wraps.
func TestOwnBucketRequestsNameTheOwner(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "own", false)
	key := e.Key(t)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("own"), Key: aws.String("inv/manifest.json")}, "{}")
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("own"), Key: aws.String("reports/manifest.json")}, `{"results":[]}`)

	requests := map[string]func(owner string) error{
		"inventory manifest read": func(owner string) error {
			_, err := inventory.ReadSmall(ctx, bucketowner.Client{Client: e.S3, Owner: owner}, "own", "inv/manifest.json", 1024)
			return err
		},
		"inventory data file read": func(owner string) error {
			f, err := inventory.Fetch(ctx, bucketowner.Client{Client: e.S3, Owner: owner}, "own", "inv/manifest.json", "99914b932bd37a50b983c5e7c90ae93b", t.TempDir())
			if f != nil {
				f.Close()
			}
			return err
		},
		"report read": func(owner string) error {
			_, err := jobs.ReadReport(ctx, bucketowner.Client{Client: e.S3, Owner: owner}, "s3://own/reports/manifest.json")
			return err
		},
		"evidence write": func(owner string) error {
			_, err := verify.Store(ctx, bucketowner.Client{Client: e.S3, Owner: owner}, "own", "reports", key, time.Now(), []byte("evidence"))
			return err
		},
		"retire record read": func(owner string) error {
			_, err := retire.ReadStatus(ctx, e.KMS, e.S3, retire.Location{Bucket: "own", Prefix: "reports", KMSKey: key, Owner: owner}, key, time.Now())
			return err
		},
	}
	for name, request := range requests {
		t.Run(name, func(t *testing.T) {
			if err := request(emulator.DefaultAccount); err != nil {
				t.Fatalf("with the bucket's account: %v", err)
			}
			err := request("999999999999")
			var re interface{ HTTPStatusCode() int }
			var ae smithy.APIError
			if err == nil || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden || !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
				t.Errorf("with another account: %v, want 403 AccessDenied", err)
			}
		})
	}
}
