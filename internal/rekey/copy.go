package rekey

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// The S3 calls a copy in place makes, each a one-method interface.
type (
	CopyObjectAPI interface {
		CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	}
	CreateMultipartUploadAPI interface {
		CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	}
	UploadPartCopyAPI interface {
		UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, optFns ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error)
	}
	CompleteMultipartUploadAPI interface {
		CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	}
	AbortMultipartUploadAPI interface {
		AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	}
	GetObjectTaggingAPI interface {
		GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
	}
	GetBucketOwnershipControlsAPI interface {
		GetBucketOwnershipControls(ctx context.Context, in *s3.GetBucketOwnershipControlsInput, optFns ...func(*s3.Options)) (*s3.GetBucketOwnershipControlsOutput, error)
	}
)

// CopyAPI is what copying in place needs of S3 (*s3.Client has it all).
type CopyAPI interface {
	HeadObjectAPI
	CopyObjectAPI
	CreateMultipartUploadAPI
	UploadPartCopyAPI
	CompleteMultipartUploadAPI
	AbortMultipartUploadAPI
	GetObjectTaggingAPI
	GetBucketOwnershipControlsAPI
}

var _ CopyAPI = (*s3.Client)(nil)

// CopyObject copies up to 5 GB in one request; larger objects go through
// UploadPartCopy (API reference, CopyObject).
const (
	DefaultMultipartCopyThreshold = 5 << 30
	DefaultCopyPartSize           = 512 << 20
)

// Copier copies objects in place onto the target key, for the sources
// UpdateObjectEncryption refuses (opt-in per bucket).
type Copier struct {
	API CopyAPI
	// MultipartThreshold is the size above which a copy goes in parts
	// (default 5 GB); PartSize the size of each part (default 512 MiB).
	MultipartThreshold, PartSize int64

	mu      sync.Mutex
	aclsOff map[string]bool // bucket → ACLs disabled, read once per bucket
}

// copyInPlace copies the current version of an object onto itself under
// the target key and bucket-key setting, keeping its metadata, tags,
// storage class and checksum algorithm, and only if it is still the object
// the HEAD read (x-amz-copy-source-if-match): a concurrent overwrite is
// never clobbered, it is read again on the next attempt.
func (r *Rekeyer) copyInPlace(ctx context.Context, obj messages.Object, target policy.Bucket, st State, res *Result) Outcome {
	c := r.Copier
	if c == nil || st.head == nil {
		return Outcome{Status: Failed, Reason: ReasonInvalidRequest, Detail: "copy in place is not configured"}
	}
	h := st.head
	if obj.VersionID != "" {
		// A copy becomes the current version: copying an older version
		// would bring back old content. Copy only what is current now.
		res.Heads++
		cur, err := c.API.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key),
			ExpectedBucketOwner: aws.String(target.ExpectedOwner)})
		if err != nil {
			return classify(err)
		}
		if aws.ToString(cur.VersionId) != obj.VersionID {
			return Outcome{Status: Skipped, Reason: ReasonNoncurrent, Detail: "version " + obj.VersionID + " is not current: only the current version is copied"}
		}
		h = cur
	}
	off, err := c.aclsDisabled(ctx, obj.Bucket, target.ExpectedOwner)
	if err != nil {
		return classify(err)
	}
	if !off {
		return Outcome{Status: Failed, Reason: ReasonACLsEnabled,
			Detail: "s3://" + obj.Bucket + " has ACLs enabled (Object Ownership is not BucketOwnerEnforced): a copy would drop the objects' ACL grants"}
	}
	if out := r.pace(ctx, obj.Bucket, res, KMSRequests(st, target)); out != nil {
		return *out
	}
	var version string
	if aws.ToInt64(h.ContentLength) > c.threshold() {
		version, err = c.multipartCopy(ctx, obj, target, h, res)
	} else {
		res.Updates++
		var out *s3.CopyObjectOutput
		out, err = c.API.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key), CopySource: aws.String(copySource(obj.Bucket, obj.Key)),
			CopySourceIfMatch: h.ETag, ExpectedBucketOwner: aws.String(target.ExpectedOwner), ExpectedSourceBucketOwner: aws.String(target.ExpectedOwner),
			MetadataDirective: types.MetadataDirectiveCopy, TaggingDirective: types.TaggingDirectiveCopy,
			// The checksum algorithm is the source's by default (CopyObject:
			// x-amz-checksum-algorithm); the storage class is not.
			StorageClass:         storageClass(h),
			ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(target.KMSKeyARN), BucketKeyEnabled: aws.Bool(target.BucketKeyEnabled),
		})
		if out != nil {
			version = aws.ToString(out.VersionId)
		}
	}
	if err != nil {
		var ae smithy.APIError
		if (errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed") || httpStatus(err) == 412 {
			return Outcome{Status: Retry, Reason: "concurrent-overwrite", Detail: "the object changed since it was read; it is read again"}
		}
		return classify(err)
	}
	if version != "" && h.VersionId != nil {
		return Outcome{Status: Copied, Detail: "copy is version " + version + "; the previous version " + aws.ToString(h.VersionId) +
			" stays as it was (s3rekey never deletes)"}
	}
	return Outcome{Status: Copied}
}

func (c *Copier) threshold() int64 {
	if c.MultipartThreshold > 0 {
		return c.MultipartThreshold
	}
	return DefaultMultipartCopyThreshold
}

func (c *Copier) partSize() int64 {
	if c.PartSize > 0 {
		return c.PartSize
	}
	return DefaultCopyPartSize
}

// aclsDisabled reports Object Ownership BucketOwnerEnforced, once per bucket.
func (c *Copier) aclsDisabled(ctx context.Context, bucket, owner string) (bool, error) {
	// Held across the read, so that a batch's concurrent copies of one
	// bucket ask S3 once.
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.aclsOff[bucket]; ok {
		return v, nil
	}
	out, err := c.API.GetBucketOwnershipControls(ctx, &s3.GetBucketOwnershipControlsInput{Bucket: aws.String(bucket), ExpectedBucketOwner: aws.String(owner)})
	off := false
	switch {
	case err == nil:
		off = out.OwnershipControls != nil && len(out.OwnershipControls.Rules) > 0 &&
			out.OwnershipControls.Rules[0].ObjectOwnership == types.ObjectOwnershipBucketOwnerEnforced
	default:
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "OwnershipControlsNotFoundError" {
			return false, err
		}
		// No ownership controls: a bucket from before they existed, ACLs on.
	}
	if c.aclsOff == nil {
		c.aclsOff = map[string]bool{}
	}
	c.aclsOff[bucket] = off
	return off, nil
}

// multipartCopy copies an object larger than one CopyObject allows with
// UploadPartCopy, each part conditional on the ETag read, and aborts the
// upload on any failure. It returns the copy's version id.
func (c *Copier) multipartCopy(ctx context.Context, obj messages.Object, target policy.Bucket, h *s3.HeadObjectOutput, res *Result) (string, error) {
	// A multipart upload takes no checksum algorithm from the source: read
	// it (HeadObject reports checksums only in checksum mode, which for a
	// KMS-encrypted object needs kms:Decrypt, so it is asked only here).
	res.Heads++
	sums, err := c.API.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key), IfMatch: h.ETag,
		ExpectedBucketOwner: aws.String(target.ExpectedOwner), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return "", err
	}
	in := &s3.CreateMultipartUploadInput{
		Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key), ExpectedBucketOwner: aws.String(target.ExpectedOwner),
		Metadata: h.Metadata, ContentType: h.ContentType, CacheControl: h.CacheControl, ContentDisposition: h.ContentDisposition,
		ContentEncoding: h.ContentEncoding, ContentLanguage: h.ContentLanguage, StorageClass: storageClass(h), ChecksumAlgorithm: checksumAlgorithm(sums),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(target.KMSKeyARN), BucketKeyEnabled: aws.Bool(target.BucketKeyEnabled),
	}
	if aws.ToInt32(h.TagCount) > 0 {
		tags, err := c.API.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key),
			ExpectedBucketOwner: aws.String(target.ExpectedOwner)})
		if err != nil {
			return "", err
		}
		q := url.Values{}
		for _, t := range tags.TagSet {
			q.Set(aws.ToString(t.Key), aws.ToString(t.Value))
		}
		in.Tagging = aws.String(q.Encode())
	}
	res.Updates++
	up, err := c.API.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", err
	}
	abort := func(cause error) (string, error) {
		_, _ = c.API.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key),
			UploadId: up.UploadId, ExpectedBucketOwner: aws.String(target.ExpectedOwner)})
		return "", cause
	}
	size, part := aws.ToInt64(h.ContentLength), c.partSize()
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
		p := types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.CopyPartResult.ETag}
		if cr := out.CopyPartResult; cr != nil {
			p.ChecksumCRC32, p.ChecksumCRC32C, p.ChecksumSHA1, p.ChecksumSHA256 = cr.ChecksumCRC32, cr.ChecksumCRC32C, cr.ChecksumSHA1, cr.ChecksumSHA256
		}
		parts = append(parts, p)
	}
	res.Updates++
	done, err := c.API.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, ExpectedBucketOwner: aws.String(target.ExpectedOwner)})
	if err != nil {
		return abort(err)
	}
	return aws.ToString(done.VersionId), nil
}

// copySource is x-amz-copy-source: bucket/key, URL-encoded.
func copySource(bucket, key string) string {
	return bucket + "/" + strings.ReplaceAll(url.PathEscape(key), "%2F", "/")
}

// storageClass keeps the source's: a copy without one becomes STANDARD.
func storageClass(h *s3.HeadObjectOutput) types.StorageClass {
	if h.StorageClass == "" {
		return types.StorageClassStandard
	}
	return types.StorageClass(h.StorageClass)
}

// checksumAlgorithm is the algorithm of the checksum HeadObject reported
// (with checksum mode on), to keep it on the copy.
func checksumAlgorithm(h *s3.HeadObjectOutput) types.ChecksumAlgorithm {
	switch {
	case h.ChecksumCRC32 != nil:
		return types.ChecksumAlgorithmCrc32
	case h.ChecksumCRC32C != nil:
		return types.ChecksumAlgorithmCrc32c
	case h.ChecksumSHA1 != nil:
		return types.ChecksumAlgorithmSha1
	case h.ChecksumSHA256 != nil:
		return types.ChecksumAlgorithmSha256
	case h.ChecksumCRC64NVME != nil:
		return types.ChecksumAlgorithmCrc64nvme
	}
	return ""
}
