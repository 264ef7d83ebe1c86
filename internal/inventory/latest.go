package inventory

import (
	"context"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ListObjectsAPI lists an inventory destination.
type ListObjectsAPI interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// reportDir is a report's folder under its configuration:
// 2026-11-01T01-00Z/.
var reportDir = regexp.MustCompile(`/(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z)/$`)

// maxReportPages bounds the listing of a configuration's report folders
// (1,000 folders a page: years of daily reports).
const maxReportPages = 100

// LatestManifest finds the newest complete report that the inventory
// configuration configID of sourceBucket delivered to destBucket under
// prefix, and returns its manifest.json as an s3:// URL ("" when there is
// none). S3 writes a report under
// prefix/source-bucket/config-ID/YYYY-MM-DDTHH-MMZ/ and its
// manifest.checksum last (storage-inventory-location), so a folder without
// one is a report still being written. owner, when set, is the
// destination's expected owner.
func LatestManifest(ctx context.Context, list ListObjectsAPI, get GetObjectAPI, destBucket, prefix, sourceBucket, configID, owner string) (string, error) {
	base := sourceBucket + "/" + configID + "/"
	if p := strings.TrimSuffix(prefix, "/"); p != "" {
		base = p + "/" + base
	}
	var expected *string
	if owner != "" {
		expected = aws.String(owner)
	}
	var dirs []string
	in := &s3.ListObjectsV2Input{Bucket: aws.String(destBucket), Prefix: aws.String(base), Delimiter: aws.String("/"), ExpectedBucketOwner: expected}
	for range maxReportPages {
		out, err := list.ListObjectsV2(ctx, in)
		if err != nil {
			return "", err
		}
		for _, cp := range out.CommonPrefixes {
			if reportDir.MatchString(aws.ToString(cp.Prefix)) {
				dirs = append(dirs, aws.ToString(cp.Prefix))
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	// The folder names are UTC times of one width: newest sorts last.
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, dir := range dirs {
		done, err := get.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(destBucket), Key: aws.String(dir + "manifest.checksum"), ExpectedBucketOwner: expected})
		if err != nil {
			continue // not complete yet
		}
		done.Body.Close()
		return "s3://" + destBucket + "/" + dir + "manifest.json", nil
	}
	return "", nil
}
