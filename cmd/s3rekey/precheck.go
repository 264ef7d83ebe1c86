package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// BackfillCheckAPI is what a backfill's checks read from S3.
type BackfillCheckAPI interface {
	HeadBucket(ctx context.Context, in *s3.HeadBucketInput, optFns ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ BackfillCheckAPI = (*s3.Client)(nil)

// checkBackfill checks, before a backfill is sent, what would make its job
// fail: for a listing, that the policy (when given) manages the bucket and
// allows --versions, and that the bucket exists; for an inventory, that
// the manifest exists, parses and matches its manifest.checksum, and that
// the policy (when given) manages its bucket. The planner fails a job for the same
// reasons, should they arise after this check.
func checkBackfill(ctx context.Context, api BackfillCheckAPI, pol *policy.Policy, job planner.Job) error {
	bucket, owner := job.Bucket, ""
	if job.Type == planner.TypeInventory {
		m, _, err := planner.ReadManifest(ctx, api, job.Manifest)
		switch {
		case isNotFound(err):
			return fmt.Errorf("manifest %s does not exist (or its manifest.checksum does not): %s", job.Manifest, planner.Reason(err))
		case errors.Is(err, inventory.ErrChecksum):
			return fmt.Errorf("manifest %s does not verify: %s", job.Manifest, planner.Reason(err))
		case err != nil:
			return fmt.Errorf("manifest %s: %s", job.Manifest, planner.Reason(err))
		}
		bucket = m.SourceBucket
	}
	if pol != nil {
		target, ok := pol.Lookup(bucket)
		switch {
		case !ok:
			return fmt.Errorf("the policy does not manage bucket %s (it manages %s)", bucket, managed(pol))
		case job.Versions && target.Versions != policy.VersionsAll:
			return fmt.Errorf("--versions: the policy says versions: %s for bucket %s; set \"versions\": \"all\" there to backfill every version",
				orDefault(target.Versions, policy.VersionsCurrent), bucket)
		}
		owner = target.ExpectedOwner
	}
	if job.Type != planner.TypeListing {
		return nil // the manifest vouches for its bucket
	}
	in := &s3.HeadBucketInput{Bucket: aws.String(bucket)}
	if owner != "" {
		in.ExpectedBucketOwner = aws.String(owner)
	}
	_, err := api.HeadBucket(ctx, in)
	switch {
	case isNotFound(err):
		return fmt.Errorf("bucket %s does not exist", bucket)
	case statusOf(err) == http.StatusForbidden && owner != "":
		return fmt.Errorf("bucket %s: access denied, or it is not owned by account %s (the policy's expectedOwner)", bucket, owner)
	case err != nil:
		return fmt.Errorf("bucket %s: %s", bucket, planner.Reason(err))
	}
	return nil
}

// isNotFound reports S3's answer for a bucket or key that does not exist:
// NoSuchBucket or NoSuchKey, or a 404 without a body (HEAD).
func isNotFound(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchBucket", "NoSuchKey", "NotFound":
			return true
		}
	}
	return statusOf(err) == http.StatusNotFound
}

func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func managed(pol *policy.Policy) string {
	names := make([]string, 0, len(pol.Buckets))
	for name := range pol.Buckets {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
