package emulator_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

func readAll(t *testing.T, e *env, bucket, key string) string {
	t.Helper()
	out, err := e.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b)
}

// x-amz-copy-source is URL-encoded (API_CopyObject, x-amz-copy-source:
// "The value must be URL-encoded"): S3 URL-decodes it, so a raw "+" names
// a space and %2B names "+", as the AWS CLI and SDK issues about keys with
// "+" found.
func TestCopySourceIsURLDecoded(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "src", false)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("a b")}, "space")
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("a+b")}, "plus")
	for _, tc := range []struct{ source, want string }{{"src/a+b", "space"}, {"src/a%2Bb", "plus"}, {"src/a%20b", "space"}} {
		dst := "copy of " + tc.source
		if _, err := e.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String(dst), CopySource: aws.String(tc.source)}); err != nil {
			t.Fatalf("copy %s: %v", tc.source, err)
		}
		if got := readAll(t, e, "src", dst); got != tc.want {
			t.Errorf("x-amz-copy-source %q copied %q, want %q", tc.source, got, tc.want)
		}
	}
}

// A multipart upload created with a checksum algorithm needs each part's
// checksum back at CompleteMultipartUpload (API_CompletedPart: the
// checksum "is present if the multipart upload request was created with"
// that algorithm), and UploadPartCopy gives it in its CopyPartResult
// (API_CopyPartResult). Without it S3 answers 400 InvalidRequest.
func TestCompleteNeedsPartChecksums(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "mpu", false)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("mpu"), Key: aws.String("src")}, strings.Repeat("x", 1000))
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmCrc32} {
		up, err := e.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dst"), ChecksumAlgorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		part, err := e.s3.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("mpu"), Key: aws.String("dst"), UploadId: up.UploadId,
			PartNumber: aws.Int32(1), CopySource: aws.String("mpu/src")})
		if err != nil {
			t.Fatal(err)
		}
		r := part.CopyPartResult
		sum := r.ChecksumCRC64NVME
		if alg == types.ChecksumAlgorithmCrc32 {
			sum = r.ChecksumCRC32
		}
		if sum == nil {
			t.Fatalf("%s: CopyPartResult without the part's checksum: %+v", alg, r)
		}
		_, err = e.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dst"), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: r.ETag}}}})
		if apiCode(err) != "InvalidRequest" || httpStatus(err) != 400 {
			t.Errorf("%s: completed without the part's checksum: %v, want 400 InvalidRequest", alg, err)
		}
		p := types.CompletedPart{PartNumber: aws.Int32(1), ETag: r.ETag, ChecksumCRC64NVME: r.ChecksumCRC64NVME, ChecksumCRC32: r.ChecksumCRC32}
		if _, err := e.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dst"), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{p}}}); err != nil {
			t.Errorf("%s: complete with the part's checksum: %v", alg, err)
		}
	}
}

// CopyObject and CompleteMultipartUpload are conditional writes with
// If-Match and If-None-Match on the destination (API_CopyObject and
// API_CompleteMultipartUpload, If-Match / If-None-Match; userguide
// conditional-writes): a mismatch answers 412 PreconditionFailed.
func TestConditionalCopyAndComplete(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "bkt", false)
	put := e.Put(t, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")}, "v1")
	copyIn := func(ifMatch, ifNone *string) error {
		_, err := e.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), CopySource: aws.String("bkt/k"),
			StorageClass: types.StorageClassStandardIa, IfMatch: ifMatch, IfNoneMatch: ifNone})
		return err
	}
	if err := copyIn(aws.String(`"0123"`), nil); httpStatus(err) != 412 || apiCode(err) != "PreconditionFailed" {
		t.Errorf("CopyObject If-Match another ETag: %v, want 412", err)
	}
	if err := copyIn(nil, aws.String("*")); httpStatus(err) != 412 {
		t.Errorf("CopyObject If-None-Match * on an existing key: %v, want 412", err)
	}
	if err := copyIn(put.ETag, nil); err != nil {
		t.Errorf("CopyObject If-Match its ETag: %v", err)
	}
	up, err := e.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := e.s3.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("bkt"), Key: aws.String("k"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), CopySource: aws.String("bkt/k")})
	if err != nil {
		t.Fatal(err)
	}
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")}, "v2, written while the parts were copied")
	_, err = e.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("k"), UploadId: up.UploadId,
		IfMatch: put.ETag, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.CopyPartResult.ETag}}}})
	if httpStatus(err) != 412 {
		t.Errorf("CompleteMultipartUpload If-Match an overwritten object's ETag: %v, want 412", err)
	}
}

// x-amz-website-redirect-location is not copied by CopyObject unless the
// request gives it (API_CopyObject, x-amz-website-redirect-location), while
// other stored headers such as Expires are copied with the metadata.
// Annotations are copied under the default directive COPY, not under
// EXCLUDE (API_CopyObject, x-amz-object-annotation-directive).
func TestCopyWebsiteRedirectAndAnnotations(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "bkt", false)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("page"), WebsiteRedirectLocation: aws.String("/elsewhere"),
		CacheControl: aws.String("max-age=9")}, "x")
	if _, err := e.s3.PutObjectAnnotation(ctx, &s3.PutObjectAnnotationInput{Bucket: aws.String("bkt"), Key: aws.String("page"),
		AnnotationName: aws.String("note"), AnnotationPayload: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dst         string
		redirect    *string
		directive   types.AnnotationDirective
		annotations int32
	}{{"plain copy", nil, "", 1}, {"given again", aws.String("/elsewhere"), "", 1}, {"excluded", nil, types.AnnotationDirectiveExclude, 0}} {
		if _, err := e.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String(tc.dst), CopySource: aws.String("bkt/page"),
			WebsiteRedirectLocation: tc.redirect, AnnotationDirective: tc.directive}); err != nil {
			t.Fatal(err)
		}
		h, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String(tc.dst)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(h.WebsiteRedirectLocation) != aws.ToString(tc.redirect) || aws.ToString(h.CacheControl) != "max-age=9" {
			t.Errorf("%s: redirect %q cache-control %q", tc.dst, aws.ToString(h.WebsiteRedirectLocation), aws.ToString(h.CacheControl))
		}
		ann, err := e.s3.ListObjectAnnotations(ctx, &s3.ListObjectAnnotationsInput{Bucket: aws.String("bkt"), Key: aws.String(tc.dst)})
		if err != nil || aws.ToInt32(ann.AnnotationCount) != tc.annotations || len(ann.Annotations) != int(tc.annotations) {
			t.Errorf("%s: annotations %+v %v, want %d", tc.dst, ann, err, tc.annotations)
		}
	}
}

// An Object Lock event hold protects its version while it is on
// (API_EventHoldDuration; HeadObject, x-amz-object-lock-event-hold): it
// shows on HEAD, the version cannot be deleted, and UpdateObjectEncryption
// refuses it as it refuses any object "protected by S3 Object Lock".
func TestEventHold(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "held", true)
	target := e.Key(t)
	put := e.Put(t, &s3.PutObjectInput{Bucket: aws.String("held"), Key: aws.String("k"), ObjectLockEventHold: types.ObjectLockEventHoldOn}, "x")
	h, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("held"), Key: aws.String("k")})
	if err != nil || h.ObjectLockEventHold != types.ObjectLockEventHoldOn {
		t.Fatalf("HEAD: event hold %q, %v", h.ObjectLockEventHold, err)
	}
	if _, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("held"), Key: aws.String("k"), VersionId: put.VersionId}); apiCode(err) != "AccessDenied" {
		t.Errorf("delete of a held version: %v, want AccessDenied", err)
	}
	_, err = e.s3.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{Bucket: aws.String("held"), Key: aws.String("k"),
		ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(target)}}})
	if apiCode(err) != "AccessDenied" || !strings.Contains(apiMessage(err), "Object Lock") {
		t.Errorf("UpdateObjectEncryption under an event hold: %v, want AccessDenied (Object Lock)", err)
	}
	e.Bucket(t, "unlocked", false)
	if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("unlocked"), Key: aws.String("k"), Body: strings.NewReader("x"),
		ObjectLockEventHold: types.ObjectLockEventHoldOn}); apiCode(err) != "InvalidRequest" {
		t.Errorf("an event hold in a bucket without Object Lock: %v, want InvalidRequest", err)
	}
}
