// Package estate describes every bucket of an account and region as s3rekey
// sees it: the rule that governs it, its default encryption, whether its
// EventBridge notifications and inventory are on, its size from S3's daily
// storage metrics, the cost and time of bringing it onto its key, and its
// replication destinations. It changes nothing.
package estate

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ListBucketsAPI is ListBuckets.
type ListBucketsAPI interface {
	ListBuckets(ctx context.Context, in *s3.ListBucketsInput, optFns ...func(*s3.Options)) (*s3.ListBucketsOutput, error)
}

var _ ListBucketsAPI = (*s3.Client)(nil)

// pageSize is MaxBuckets per ListBuckets page (the API reference allows 1
// to 10,000; a page of 1,000 keeps each response small).
const pageSize = 1000

// maxPages bounds a listing: 10,000 buckets per account is S3's largest
// bucket quota, so more than this many pages means a token that never ends.
const maxPages = 10_000_000/pageSize + 1

// Buckets lists every general purpose bucket of the account in region,
// page by page (ContinuationToken, MaxBuckets, BucketRegion), sorted by
// name as S3 returns them.
func Buckets(ctx context.Context, api ListBucketsAPI, region string) ([]string, error) {
	var out []string
	in := &s3.ListBucketsInput{MaxBuckets: aws.Int32(pageSize)}
	if region != "" {
		in.BucketRegion = aws.String(region)
	}
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("ListBuckets: more than %d pages", maxPages)
		}
		res, err := api.ListBuckets(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ListBuckets: %w", err)
		}
		for _, b := range res.Buckets {
			out = append(out, aws.ToString(b.Name))
		}
		if aws.ToString(res.ContinuationToken) == "" {
			return out, nil
		}
		in.ContinuationToken = res.ContinuationToken
	}
}
