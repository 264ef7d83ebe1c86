package rekey

import (
	"context"
	"errors"
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
	ListObjectAnnotationsAPI interface {
		ListObjectAnnotations(ctx context.Context, in *s3.ListObjectAnnotationsInput, optFns ...func(*s3.Options)) (*s3.ListObjectAnnotationsOutput, error)
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
	ListObjectAnnotationsAPI
	GetBucketOwnershipControlsAPI
}

var _ CopyAPI = (*s3.Client)(nil)

// CopyObject copies up to 5 GB in one request; larger objects go through
// UploadPartCopy (API reference, CopyObject).
const (
	DefaultMultipartCopyThreshold = 5 << 30
	DefaultCopyPartSize           = 512 << 20
)

// Multipart upload limits (userguide qfacts, "Amazon S3 multipart upload
// limits"): at most 10,000 parts of 5 MiB to 5 GiB each, the last one
// smaller. 10,000 parts of 5 GiB hold the largest object S3 allows
// (about 48.8 TiB).
const (
	maxCopyParts    = 10000
	minCopyPartSize = 5 << 20
	maxCopyPartSize = 5 << 30
)

// Copier copies objects in place onto the target key, for the sources
// UpdateObjectEncryption refuses (opt-in per bucket).
type Copier struct {
	API CopyAPI
	// MultipartThreshold is the size above which a copy goes in parts
	// (default 5 GB); PartSize the preferred size of each part (default
	// 512 MiB), raised for an object that would otherwise need more than
	// 10,000 parts.
	MultipartThreshold, PartSize int64

	mu      sync.Mutex
	aclsOff map[string]bool // bucket → ACLs disabled, read once per bucket
}

// copyInPlace copies the current version of an object onto itself under
// the target key and bucket-key setting, keeping its metadata, tags,
// annotations, storage class, website redirect and checksum algorithm,
// and only if it is still the object the HEAD read (x-amz-copy-source-if-match
// on the source, If-Match on the destination): a concurrent overwrite is
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
		var stop *Outcome
		version, stop, err = c.multipartCopy(ctx, obj, target, h, res)
		if stop != nil {
			return *stop
		}
	} else {
		res.Updates++
		var out *s3.CopyObjectOutput
		out, err = c.API.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key), CopySource: aws.String(copySource(obj.Bucket, obj.Key)),
			// The source and the destination are the object read: both
			// conditions hold it (CopyObject: x-amz-copy-source-if-match for
			// the source, If-Match for the destination's conditional write).
			CopySourceIfMatch: h.ETag, IfMatch: h.ETag,
			ExpectedBucketOwner: aws.String(target.ExpectedOwner), ExpectedSourceBucketOwner: aws.String(target.ExpectedOwner),
			MetadataDirective: types.MetadataDirectiveCopy, TaggingDirective: types.TaggingDirectiveCopy,
			AnnotationDirective: types.AnnotationDirectiveCopy,
			// The checksum algorithm is the source's by default (CopyObject:
			// x-amz-checksum-algorithm); the storage class is not, and the
			// website redirect is never copied unless given again.
			StorageClass: storageClass(h), WebsiteRedirectLocation: h.WebsiteRedirectLocation,
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
		if errors.Is(err, errNoCopyPartResult) {
			return Outcome{Status: Retry, Reason: ReasonIncompleteAnswer, Detail: err.Error()}
		}
		return classify(err)
	}
	var detail []string
	if st.Encryption == EncDSSE {
		detail = append(detail, "downgraded from DSSE-KMS (two layers of encryption) to SSE-KMS (one), as the bucket's dsseKms: copy-downgrade asks")
	}
	if version != "" && h.VersionId != nil {
		detail = append(detail, "copy is version "+version+"; the previous version "+aws.ToString(h.VersionId)+
			" stays as it was (s3rekey never deletes)")
	}
	return Outcome{Status: Copied, Detail: strings.Join(detail, "; ")}
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

// storageClass keeps the source's: a copy without one becomes STANDARD.
func storageClass(h *s3.HeadObjectOutput) types.StorageClass {
	if h.StorageClass == "" {
		return types.StorageClassStandard
	}
	return types.StorageClass(h.StorageClass)
}

// copySource is x-amz-copy-source: bucket/key, URL-encoded (CopyObject,
// x-amz-copy-source: "The value must be URL-encoded"). S3 URL-decodes it,
// reading a raw "+" as a space, so every byte but the unreserved ones
// (RFC 3986) and "/" is percent-encoded, as botocore does: "a+b" must not
// name "a b".
func copySource(bucket, key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(bucket) + 1 + 3*len(key))
	b.WriteString(bucket)
	b.WriteByte('/')
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
