package rekey

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// errNoCopyPartResult: an UploadPartCopy answer without its CopyPartResult
// gives no ETag to complete the upload with; the copy is aborted and tried
// again.
var errNoCopyPartResult = errors.New("UploadPartCopy answered without a CopyPartResult (no part ETag)")

// CopyPartSize is the part size of a multipart copy of an object of size
// bytes: the preferred size, raised (to a whole MiB) where the object
// would otherwise need more than 10,000 parts, and kept within S3's 5 MiB
// to 5 GiB. An object larger than 10,000 parts of 5 GiB cannot be copied.
func CopyPartSize(size, preferred int64) (int64, error) {
	part := min(max(preferred, minCopyPartSize), maxCopyPartSize)
	if need := (size + maxCopyParts - 1) / maxCopyParts; need > part {
		const mib = 1 << 20
		part = min((need+mib-1)/mib*mib, maxCopyPartSize)
	}
	if (size+part-1)/part > maxCopyParts {
		return 0, fmt.Errorf("%d bytes need more than %d parts of %d bytes, the most a multipart copy has", size, maxCopyParts, part)
	}
	return part, nil
}

// multipartCopy copies an object larger than one CopyObject allows with
// UploadPartCopy, each part conditional on the ETag read and the
// completion a conditional write on it too, and aborts the upload on any
// failure. It returns the copy's version id, or an outcome that ends the
// task before anything is written.
func (c *Copier) multipartCopy(ctx context.Context, obj messages.Object, target policy.Bucket, h *s3.HeadObjectOutput, res *Result) (string, *Outcome, error) {
	size := aws.ToInt64(h.ContentLength)
	part, err := CopyPartSize(size, c.partSize())
	if err != nil {
		return "", &Outcome{Status: Failed, Reason: ReasonTooLarge, Detail: err.Error()}, nil
	}
	// A multipart copy carries no annotations (CopyObject,
	// x-amz-object-annotation-directive: "annotations are not copied" by
	// multipart uploads); writing them after the completion would leave
	// the object without them meanwhile. Such an object is skipped.
	res.Heads++
	ann, err := c.API.ListObjectAnnotations(ctx, &s3.ListObjectAnnotationsInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key),
		MaxAnnotationResults: aws.Int32(1), ExpectedBucketOwner: aws.String(target.ExpectedOwner)})
	if err != nil {
		return "", nil, err
	}
	if aws.ToInt32(ann.AnnotationCount) > 0 || len(ann.Annotations) > 0 {
		return "", &Outcome{Status: Skipped, Reason: ReasonAnnotations,
			Detail: "a multipart copy (objects over 5 GB) does not carry annotations, and writing them afterwards would leave the object without them meanwhile"}, nil
	}
	// A multipart upload takes no checksum algorithm from the source: read
	// it (HeadObject reports checksums only in checksum mode, which for a
	// KMS-encrypted object needs kms:Decrypt, so it is asked only here).
	res.Heads++
	sums, err := c.API.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key), IfMatch: h.ETag,
		ExpectedBucketOwner: aws.String(target.ExpectedOwner), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return "", nil, err
	}
	in := &s3.CreateMultipartUploadInput{
		Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key), ExpectedBucketOwner: aws.String(target.ExpectedOwner),
		Metadata: h.Metadata, ContentType: h.ContentType, CacheControl: h.CacheControl, ContentDisposition: h.ContentDisposition,
		ContentEncoding: h.ContentEncoding, ContentLanguage: h.ContentLanguage, WebsiteRedirectLocation: h.WebsiteRedirectLocation,
		StorageClass: storageClass(h), ChecksumAlgorithm: checksumAlgorithm(sums),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(target.KMSKeyARN), BucketKeyEnabled: aws.Bool(target.BucketKeyEnabled),
	}
	if aws.ToInt32(h.TagCount) > 0 {
		tags, err := c.API.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key),
			ExpectedBucketOwner: aws.String(target.ExpectedOwner)})
		if err != nil {
			return "", nil, err
		}
		q := url.Values{}
		for _, t := range tags.TagSet {
			q.Set(aws.ToString(t.Key), aws.ToString(t.Value))
		}
		in.Tagging = aws.String(q.Encode())
	}
	res.Updates++
	up, err := c.API.CreateMultipartUpload(ctx, in, keepExpires(h))
	if err != nil {
		return "", nil, err
	}
	abort := func(cause error) (string, *Outcome, error) {
		_, _ = c.API.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key),
			UploadId: up.UploadId, ExpectedBucketOwner: aws.String(target.ExpectedOwner)})
		return "", nil, cause
	}
	var parts []types.CompletedPart
	for n, start := int32(1), int64(0); start < size; n, start = n+1, start+part {
		end := min(start+part, size) - 1
		res.Updates++
		out, err := c.API.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key), UploadId: up.UploadId, PartNumber: aws.Int32(n),
			CopySource: aws.String(copySource(obj.Bucket, obj.Key)), CopySourceIfMatch: h.ETag, CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", start, end)),
			ExpectedBucketOwner: aws.String(target.ExpectedOwner), ExpectedSourceBucketOwner: aws.String(target.ExpectedOwner),
		})
		if err != nil {
			return abort(err)
		}
		if out.CopyPartResult == nil || out.CopyPartResult.ETag == nil {
			return abort(errNoCopyPartResult)
		}
		parts = append(parts, completedPart(n, out.CopyPartResult))
	}
	res.Updates++
	done, err := c.API.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, ExpectedBucketOwner: aws.String(target.ExpectedOwner),
		// The parts were copied over minutes, perhaps: the completion is a
		// conditional write, so that an overwrite meanwhile is never
		// clobbered (CompleteMultipartUpload, If-Match).
		IfMatch: h.ETag})
	if err != nil {
		return abort(err)
	}
	return aws.ToString(done.VersionId), nil, nil
}

// keepExpires gives the upload the source's Expires header exactly as S3
// returned it: the header is free text to S3, which a parsed date would
// not carry whole (the SDK deprecates the parsed field for that reason).
func keepExpires(h *s3.HeadObjectOutput) func(*s3.Options) {
	return func(o *s3.Options) {
		if raw := aws.ToString(h.ExpiresString); raw != "" {
			o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue("Expires", raw))
		}
	}
}

// completedPart is a copied part as CompleteMultipartUpload takes it: its
// ETag and every checksum its CopyPartResult gave, which S3 requires back
// for an upload created with a checksum algorithm (CompletedPart: each
// checksum "is present if the multipart upload request was created with"
// its algorithm), CRC64NVME included.
func completedPart(n int32, r *types.CopyPartResult) types.CompletedPart {
	return types.CompletedPart{PartNumber: aws.Int32(n), ETag: r.ETag,
		ChecksumCRC32: r.ChecksumCRC32, ChecksumCRC32C: r.ChecksumCRC32C, ChecksumCRC64NVME: r.ChecksumCRC64NVME,
		ChecksumMD5: r.ChecksumMD5, ChecksumSHA1: r.ChecksumSHA1, ChecksumSHA256: r.ChecksumSHA256, ChecksumSHA512: r.ChecksumSHA512,
		ChecksumXXHASH128: r.ChecksumXXHASH128, ChecksumXXHASH3: r.ChecksumXXHASH3, ChecksumXXHASH64: r.ChecksumXXHASH64}
}

// checksumAlgorithm is the algorithm of the checksum HeadObject reported
// (with checksum mode on), to keep it on the copy.
func checksumAlgorithm(h *s3.HeadObjectOutput) types.ChecksumAlgorithm {
	for _, c := range []struct {
		sum *string
		alg types.ChecksumAlgorithm
	}{
		{h.ChecksumCRC32, types.ChecksumAlgorithmCrc32}, {h.ChecksumCRC32C, types.ChecksumAlgorithmCrc32c},
		{h.ChecksumSHA1, types.ChecksumAlgorithmSha1}, {h.ChecksumSHA256, types.ChecksumAlgorithmSha256},
		{h.ChecksumCRC64NVME, types.ChecksumAlgorithmCrc64nvme}, {h.ChecksumMD5, types.ChecksumAlgorithmMd5},
		{h.ChecksumSHA512, types.ChecksumAlgorithmSha512}, {h.ChecksumXXHASH64, types.ChecksumAlgorithmXxhash64},
		{h.ChecksumXXHASH3, types.ChecksumAlgorithmXxhash3}, {h.ChecksumXXHASH128, types.ChecksumAlgorithmXxhash128},
	} {
		if c.sum != nil {
			return c.alg
		}
	}
	return ""
}
