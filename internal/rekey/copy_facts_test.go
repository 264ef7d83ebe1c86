package rekey_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
	"github.com/s3rekey/s3rekey/internal/witness"
)

// tweaked is the emulator's S3 client with hooks: a HEAD answer edited
// (facts the emulator cannot produce, such as an archive tier), requests
// recorded, an action before a call.
type tweaked struct {
	*s3.Client
	mu         sync.Mutex
	head       func(*s3.HeadObjectOutput)
	partCopy   func(*s3.UploadPartCopyOutput)
	beforeDone func()
	copies     []*s3.CopyObjectInput
	completes  []*s3.CompleteMultipartUploadInput
	creates    []*s3.CreateMultipartUploadInput
	aborted    int
}

func (w *tweaked) HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	out, err := w.Client.HeadObject(ctx, in, opts...)
	if err == nil && w.head != nil {
		w.head(out)
	}
	return out, err
}

func (w *tweaked) CopyObject(ctx context.Context, in *s3.CopyObjectInput, opts ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	w.mu.Lock()
	w.copies = append(w.copies, in)
	w.mu.Unlock()
	return w.Client.CopyObject(ctx, in, opts...)
}

func (w *tweaked) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	w.creates = append(w.creates, in)
	return w.Client.CreateMultipartUpload(ctx, in, opts...)
}

func (w *tweaked) UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, opts ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error) {
	out, err := w.Client.UploadPartCopy(ctx, in, opts...)
	if err == nil && w.partCopy != nil {
		w.partCopy(out)
	}
	return out, err
}

func (w *tweaked) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	w.completes = append(w.completes, in)
	if w.beforeDone != nil {
		w.beforeDone()
	}
	return w.Client.CompleteMultipartUpload(ctx, in, opts...)
}

func (w *tweaked) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, opts ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	w.aborted++
	return w.Client.AbortMultipartUpload(ctx, in, opts...)
}

func emulatorBed(t *testing.T, c *rekey.Copier) (*copyBed, *tweaked) {
	var tw *tweaked
	b := newCopyBed(t, witness.EmulatorWitness(t), c, func(_ *rekey.Copier, cl *s3.Client) rekey.CopyAPI {
		tw = &tweaked{Client: cl}
		return tw
	})
	return b, tw
}

// An UploadPartCopy answer without its CopyPartResult has no ETag to
// complete with (API_UploadPartCopy, Response Elements: CopyPartResult):
// the upload is aborted and the object tried again, never a crash.
func TestMultipartCopyWithoutCopyPartResult(t *testing.T) {
	b, tw := emulatorBed(t, &rekey.Copier{MultipartThreshold: 8, PartSize: 5 << 20})
	tw.partCopy = func(out *s3.UploadPartCopyOutput) { out.CopyPartResult = nil }
	b.put(t, "k", "data over the threshold", nil)
	got := b.rekeyer.Rekey(context.Background(), messages.Object{Bucket: b.bucket, Key: "k"})
	if got.Status != rekey.Retry || got.Reason != rekey.ReasonIncompleteAnswer || tw.aborted != 1 {
		t.Errorf("got %+v with %d aborts, want a retry (%s) and the upload aborted", got.Outcome, tw.aborted, rekey.ReasonIncompleteAnswer)
	}
}

// Intelligent-Tiering objects in the Archive Access and Deep Archive
// Access tiers must be restored before they can be read (API_HeadObject,
// x-amz-archive-status; API_CopyObject: an archived source must be
// restored first): they are skipped as archived, nothing sent.
func TestCopySkipsArchiveTiers(t *testing.T) {
	for _, tier := range []types.ArchiveStatus{types.ArchiveStatusArchiveAccess, types.ArchiveStatusDeepArchiveAccess} {
		t.Run(string(tier), func(t *testing.T) {
			b, tw := emulatorBed(t, &rekey.Copier{})
			tw.head = func(h *s3.HeadObjectOutput) {
				h.StorageClass, h.ArchiveStatus = types.StorageClassIntelligentTiering, tier
			}
			b.put(t, "cold", "x", func(in *s3.PutObjectInput) { in.StorageClass = types.StorageClassIntelligentTiering })
			got := b.rekeyer.Rekey(context.Background(), messages.Object{Bucket: b.bucket, Key: "cold"})
			if got.Status != rekey.Skipped || got.Reason != rekey.ReasonArchived || len(tw.copies) != 0 {
				t.Errorf("got %+v after %d copies, want skipped: archived and no copy", got.Outcome, len(tw.copies))
			}
		})
	}
}

// The website redirect is never copied by CopyObject unless given again
// (API_CopyObject, x-amz-website-redirect-location), and a multipart
// upload takes neither it nor Expires from the source
// (API_CreateMultipartUpload): both are given, on both paths.
func TestCopyKeepsWebsiteRedirectAndExpires(t *testing.T) {
	expires := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, multipart := range []bool{false, true} {
		c := &rekey.Copier{}
		if multipart {
			c.MultipartThreshold, c.PartSize = 8, 5<<20
		}
		b, _ := emulatorBed(t, c)
		b.put(t, "page.html", "<html>over the threshold</html>", func(in *s3.PutObjectInput) {
			in.WebsiteRedirectLocation, in.Expires = aws.String("/new/page.html"), aws.Time(expires)
		})
		if got := b.rekeyer.Rekey(context.Background(), messages.Object{Bucket: b.bucket, Key: "page.html"}); got.Status != rekey.Copied {
			t.Fatalf("multipart %v: %+v", multipart, got.Outcome)
		}
		_, h := b.read(t, "page.html")
		if !b.onTarget(h) || aws.ToString(h.WebsiteRedirectLocation) != "/new/page.html" || aws.ToString(h.ExpiresString) != expires.Format(http.TimeFormat) {
			t.Errorf("multipart %v: redirect %q expires %q", multipart, aws.ToString(h.WebsiteRedirectLocation), aws.ToString(h.ExpiresString))
		}
	}
}

// Annotations: CopyObject copies them under its default directive COPY
// (API_CopyObject, x-amz-object-annotation-directive); a multipart copy
// does not, so an annotated object over the threshold is skipped with
// its reason rather than copied without them.
func TestCopyAnnotations(t *testing.T) {
	for _, multipart := range []bool{false, true} {
		c := &rekey.Copier{}
		if multipart {
			c.MultipartThreshold, c.PartSize = 8, 5<<20
		}
		b, tw := emulatorBed(t, c)
		b.put(t, "doc", "annotated", nil)
		if _, err := b.w.S3.PutObjectAnnotation(context.Background(), &s3.PutObjectAnnotationInput{Bucket: aws.String(b.bucket), Key: aws.String("doc"),
			AnnotationName: aws.String("review"), AnnotationPayload: strings.NewReader("approved")}); err != nil {
			t.Fatal(err)
		}
		got := b.rekeyer.Rekey(context.Background(), messages.Object{Bucket: b.bucket, Key: "doc"})
		ann, err := b.w.S3.ListObjectAnnotations(context.Background(), &s3.ListObjectAnnotationsInput{Bucket: aws.String(b.bucket), Key: aws.String("doc")})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case !multipart && (got.Status != rekey.Copied || aws.ToInt32(ann.AnnotationCount) != 1):
			t.Errorf("CopyObject: %+v, %d annotations after, want copied with its annotation", got.Outcome, aws.ToInt32(ann.AnnotationCount))
		case multipart && (got.Status != rekey.Skipped || got.Reason != rekey.ReasonAnnotations || len(tw.creates) != 0):
			t.Errorf("multipart: %+v after %d uploads, want skipped: %s before any upload", got.Outcome, len(tw.creates), rekey.ReasonAnnotations)
		}
	}
}

// Destination writes are conditional (API_CopyObject and
// API_CompleteMultipartUpload, If-Match; userguide conditional-writes):
// an overwrite after the last part was copied, before the completion, is
// never clobbered; the object is read again.
func TestMultipartCopyCompletionIsConditional(t *testing.T) {
	b, tw := emulatorBed(t, &rekey.Copier{MultipartThreshold: 8, PartSize: 5 << 20})
	b.put(t, "k", "old content, over the threshold", nil)
	tw.beforeDone = func() { b.put(t, "k", "the writer's new content", nil) }
	got := b.rekeyer.Rekey(context.Background(), messages.Object{Bucket: b.bucket, Key: "k"})
	if body, _ := b.read(t, "k"); got.Status != rekey.Retry || got.Reason != "concurrent-overwrite" || body != "the writer's new content" {
		t.Errorf("got %+v, object %q: want a retry and the writer's content kept", got.Outcome, body)
	}
	tw.beforeDone = nil
	b.put(t, "small", "x", nil)
	c2, tw2 := emulatorBed(t, &rekey.Copier{})
	c2.put(t, "small", "x", nil)
	if got := c2.rekeyer.Rekey(context.Background(), messages.Object{Bucket: c2.bucket, Key: "small"}); got.Status != rekey.Copied ||
		len(tw2.copies) != 1 || aws.ToString(tw2.copies[0].IfMatch) == "" {
		t.Errorf("CopyObject: %+v, If-Match %v: want a copy conditional on the ETag read", got.Outcome, tw2.copies)
	}
}

// sizedAPI answers for an object of any size without holding it: HEADs
// report size bytes, parts are recorded.
type sizedAPI struct {
	rekey.CopyAPI
	size  int64
	parts []string
}

func (s *sizedAPI) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(s.size), ETag: aws.String(`"e"`)}, nil
}
func (s *sizedAPI) ListObjectAnnotations(context.Context, *s3.ListObjectAnnotationsInput, ...func(*s3.Options)) (*s3.ListObjectAnnotationsOutput, error) {
	return &s3.ListObjectAnnotationsOutput{}, nil
}
func (s *sizedAPI) CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return &s3.CreateMultipartUploadOutput{UploadId: aws.String("u")}, nil
}
func (s *sizedAPI) UploadPartCopy(_ context.Context, in *s3.UploadPartCopyInput, _ ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error) {
	s.parts = append(s.parts, aws.ToString(in.CopySourceRange))
	return &s3.UploadPartCopyOutput{CopyPartResult: &types.CopyPartResult{ETag: aws.String(`"p"`)}}, nil
}
func (s *sizedAPI) CompleteMultipartUpload(_ context.Context, in *s3.CompleteMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	if n := len(in.MultipartUpload.Parts); n > 10000 {
		return nil, errors.New("more than 10,000 parts")
	}
	return &s3.CompleteMultipartUploadOutput{}, nil
}
func (s *sizedAPI) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return &s3.AbortMultipartUploadOutput{}, nil
}
func (s *sizedAPI) GetBucketOwnershipControls(context.Context, *s3.GetBucketOwnershipControlsInput, ...func(*s3.Options)) (*s3.GetBucketOwnershipControlsOutput, error) {
	return &s3.GetBucketOwnershipControlsOutput{OwnershipControls: &types.OwnershipControls{Rules: []types.OwnershipControlsRule{
		{ObjectOwnership: types.ObjectOwnershipBucketOwnerEnforced}}}}, nil
}

// The largest object S3 allows (about 48.8 TiB: 10,000 parts of 5 GiB;
// userguide qfacts, multipart upload limits) is copied in at most 10,000
// parts, none over 5 GiB; the default 512 MiB parts would need 97,657.
func TestMultipartCopyOfTheLargestObject(t *testing.T) {
	const largest = 10000 * (5 << 30)
	for _, size := range []int64{6 << 40, largest} {
		api := &sizedAPI{size: size}
		pol, err := policy.Parse([]byte(`{"buckets":{"big":{"kmsKeyArn":"arn:aws:kms:us-east-1:123456789012:key/k","unsupportedSources":{"notEncrypted":"copy"}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		r := &rekey.Rekeyer{Head: api, Policy: pol, Copier: &rekey.Copier{API: api}}
		got := r.Rekey(context.Background(), messages.Object{Bucket: "big", Key: "k"})
		if got.Status != rekey.Copied || len(api.parts) > 10000 {
			t.Errorf("%d bytes: %+v in %d parts, want copied in at most 10,000", size, got.Outcome, len(api.parts))
		}
	}
	for _, tc := range []struct{ size, preferred, want int64 }{
		{6 << 30, 512 << 20, 512 << 20}, {largest, 512 << 20, 5 << 30}, {6 << 40, 512 << 20, 630 << 20}, {1 << 30, 1, 5 << 20},
	} {
		if got, err := rekey.CopyPartSize(tc.size, tc.preferred); err != nil || got != tc.want {
			t.Errorf("CopyPartSize(%d, %d) = %d %v, want %d", tc.size, tc.preferred, got, err, tc.want)
		}
	}
	if _, err := rekey.CopyPartSize(largest+1, 512<<20); err == nil {
		t.Error("an object over 10,000 parts of 5 GiB got a part size")
	}
}

// Object Lock event holds (API_EventHoldDuration; HeadObject,
// x-amz-object-lock-event-hold): an object under an event hold is
// protected while it is on, as under a legal hold, so neither an update
// nor a copy is sent; a released hold whose retention end S3 did not
// report is held as locked too.
func TestEventHoldsAreLocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*s3.HeadObjectOutput)
	}{
		{"on", func(h *s3.HeadObjectOutput) { h.ObjectLockEventHold = types.ObjectLockEventHoldOn }},
		{"released, retention end unreported", func(h *s3.HeadObjectOutput) {
			h.ObjectLockEventHold, h.ObjectLockEventHoldDurationDays = types.ObjectLockEventHoldOff, aws.Int32(30)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, tw := emulatorBed(t, &rekey.Copier{})
			tw.head = tc.edit
			b.put(t, "held", "x", nil)
			got := b.rekeyer.Rekey(context.Background(), messages.Object{Bucket: b.bucket, Key: "held"})
			if got.Status != rekey.Skipped || got.Reason != rekey.ReasonObjectLock || len(tw.copies) != 0 {
				t.Errorf("copy path: %+v after %d copies, want skipped: object-lock", got.Outcome, len(tw.copies))
			}
			// The UpdateObjectEncryption path: an SSE-S3 object under the hold.
			h := &s3.HeadObjectOutput{ServerSideEncryption: types.ServerSideEncryptionAes256}
			tc.edit(h)
			d := rekey.Decide(rekey.StateFromHead(h), policy.Bucket{KMSKeyARN: b.target}, false, time.Now())
			if d.Update || d.Copy || d.Outcome.Reason != rekey.ReasonObjectLock {
				t.Errorf("update path: %+v, want skipped: object-lock", d)
			}
		})
	}
}

// The same against the emulator's own event holds, no HEAD edited: an
// SSE-S3 object (the UpdateObjectEncryption path) and an unencrypted one
// of a bucket opted in to copies, both under an event hold, are skipped
// with nothing sent.
func TestEventHeldObjectsAreSkipped(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	e.Bucket(t, "held", true)
	target := e.Key(t)
	held := func(key string, opts ...func(*s3.Options)) {
		e.Put(t, &s3.PutObjectInput{Bucket: aws.String("held"), Key: aws.String(key), ObjectLockEventHold: types.ObjectLockEventHoldOn}, "x", opts...)
	}
	held("sse-s3")
	held("plain", emulator.LegacyUnencrypted)
	pol, err := policy.Parse([]byte(`{"buckets":{"held":{"kmsKeyArn":"` + target + `","unsupportedSources":{"notEncrypted":"copy"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	r := &rekey.Rekeyer{Head: e.S3, Update: e.S3, Policy: pol, Copier: &rekey.Copier{API: e.S3}}
	for _, key := range []string{"sse-s3", "plain"} {
		got := r.Rekey(context.Background(), messages.Object{Bucket: "held", Key: key})
		if got.Status != rekey.Skipped || got.Reason != rekey.ReasonObjectLock || got.Detail != "event hold" || got.Updates != 0 {
			t.Errorf("%s: %+v after %d updates, want skipped: object-lock (event hold) with nothing sent", key, got.Outcome, got.Updates)
		}
	}
}
