package rekey_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// overwritingS3 overwrites the object just before the first copy of it,
// as a concurrent writer would between the HEAD and the copy.
type overwritingS3 struct {
	*s3.Client
	e    *emutest.Env
	t    *testing.T
	done bool
}

func (o *overwritingS3) CopyObject(ctx context.Context, in *s3.CopyObjectInput, opts ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	if !o.done && aws.ToString(in.Key) == "raced.txt" {
		o.done = true
		o.e.Put(o.t, &s3.PutObjectInput{Bucket: in.Bucket, Key: in.Key}, "the writer's new content")
	}
	return o.Client.CopyObject(ctx, in, opts...)
}

// Copy in place, opted in per bucket, for the sources UpdateObjectEncryption
// refuses: the copy keeps metadata, tags, storage class and checksum
// algorithm (CopyObject: a copy without a storage class becomes STANDARD);
// it is conditional on the ETag read; large objects go in parts; archived,
// locked and ACL-enabled cases are refused with their reasons; an
// opted-out bucket is untouched; the copy's own event finds it compliant.
func TestCopyInPlace(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	target := e.Key(t)
	e.Versioned(t, "legacy")
	e.Bucket(t, "legacy-locked", true)
	e.Bucket(t, "optout", false)
	if _, err := e.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("acl-on"), ObjectOwnership: types.ObjectOwnershipObjectWriter}); err != nil {
		t.Fatal(err)
	}
	copyIn := `"unsupportedSources":{"notEncrypted":"copy"}`
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{
		"legacy":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"unsupportedSources":{"notEncrypted":"copy","dsseKms":"copy-downgrade"}},
		"legacy-locked":{"kmsKeyArn":%q,%s},
		"acl-on":{"kmsKeyArn":%q,%s},
		"optout":{"kmsKeyArn":%q}}}`, target, target, copyIn, target, copyIn, target)))
	if err != nil {
		t.Fatal(err)
	}
	put := func(bucket, key, body string, edit func(*s3.PutObjectInput)) {
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
		if edit != nil {
			edit(in)
		}
		e.Put(t, in, body, emulator.LegacyUnencrypted)
	}
	big := strings.Repeat("0123456789abcdef", 12<<20/16)
	put("legacy", "meta.txt", "keep me", func(in *s3.PutObjectInput) {
		in.Metadata, in.ContentType, in.CacheControl = map[string]string{"owner": "team-a"}, aws.String("text/x-kept"), aws.String("max-age=60")
		in.StorageClass, in.Tagging, in.ChecksumAlgorithm = types.StorageClassStandardIa, aws.String("project=x&tier=1"), types.ChecksumAlgorithmSha256
	})
	put("legacy", "big.bin", big, func(in *s3.PutObjectInput) { in.Tagging = aws.String("size=big") })
	put("legacy", "frozen.bin", "cold", func(in *s3.PutObjectInput) { in.StorageClass = types.StorageClassGlacier })
	put("legacy", "raced.txt", "old content", nil)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("legacy"), Key: aws.String("dsse.bin"), ServerSideEncryption: types.ServerSideEncryptionAwsKmsDsse,
		SSEKMSKeyId: aws.String(e.Key(t))}, "dual-layer")
	put("legacy-locked", "held.txt", "x", func(in *s3.PutObjectInput) { in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn })
	put("optout", "plain.txt", "x", nil)
	put("acl-on", "x.txt", "x", nil)
	before, _ := e.Emu.Inspect("legacy", "meta.txt", "")

	api := &overwritingS3{Client: e.S3, e: e, t: t}
	r := &rekey.Rekeyer{Head: api, Update: api, Policy: pol, Copier: &rekey.Copier{API: api, MultipartThreshold: 6 << 20, PartSize: 5 << 20}}
	cases := []struct {
		bucket, key string
		want        rekey.Status
		reason      string
	}{
		{"legacy", "meta.txt", rekey.Copied, ""},
		{"legacy", "big.bin", rekey.Copied, ""},
		{"legacy", "frozen.bin", rekey.Skipped, rekey.ReasonArchived},
		{"legacy", "raced.txt", rekey.Retry, "concurrent-overwrite"},
		{"legacy", "dsse.bin", rekey.Copied, ""},
		{"legacy-locked", "held.txt", rekey.Skipped, rekey.ReasonObjectLock},
		{"optout", "plain.txt", rekey.Skipped, rekey.ReasonNotEncrypted},
		{"acl-on", "x.txt", rekey.Failed, rekey.ReasonACLsEnabled},
	}
	for _, tc := range cases {
		got := r.Rekey(ctx, messages.Object{Bucket: tc.bucket, Key: tc.key})
		if got.Status != tc.want || got.Reason != tc.reason {
			t.Errorf("%s/%s: %+v, want %s %s", tc.bucket, tc.key, got.Outcome, tc.want, tc.reason)
		}
	}

	onTarget := func(st emulator.ObjectState) bool {
		return st.Encryption == "SSE-KMS" && st.KMSKeyARN == target && st.BucketKey
	}
	meta, _ := e.Emu.Inspect("legacy", "meta.txt", "")
	if !onTarget(meta) || meta.StorageClass != "STANDARD_IA" || meta.Metadata["owner"] != "team-a" || meta.Tags["project"] != "x" ||
		meta.Tags["tier"] != "1" || !strings.HasPrefix(meta.Checksum, "") || meta.ETag != before.ETag {
		t.Errorf("copied meta.txt: %+v", meta)
	}
	head, err := e.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("legacy"), Key: aws.String("meta.txt"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil || aws.ToString(head.ContentType) != "text/x-kept" || aws.ToString(head.CacheControl) != "max-age=60" || head.ChecksumSHA256 == nil {
		t.Errorf("copied meta.txt's headers: %+v %v", head, err)
	}
	if old, _ := e.Emu.Inspect("legacy", "meta.txt", before.VersionID); old.Encryption != "NOT-SSE" {
		t.Errorf("the old version is %s; s3rekey never deletes it", old.Encryption)
	}
	bigSt, _ := e.Emu.Inspect("legacy", "big.bin", "")
	out, err := e.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("legacy"), Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(out.Body)
	out.Body.Close()
	if !onTarget(bigSt) || body.String() != big || !strings.HasSuffix(bigSt.ETag, `-3"`) || bigSt.Tags["size"] != "big" {
		t.Errorf("big.bin copied in parts: %s %s ETag %s tags %v, bytes equal %v", bigSt.Encryption, bigSt.KMSKeyARN, bigSt.ETag, bigSt.Tags, body.String() == big)
	}
	if dsse, _ := e.Emu.Inspect("legacy", "dsse.bin", ""); !onTarget(dsse) {
		t.Errorf("a DSSE-KMS object of a bucket opted in to copy it ends %s %s", dsse.Encryption, dsse.KMSKeyARN)
	}
	raced, _ := e.Emu.Inspect("legacy", "raced.txt", "")
	if out, _ := e.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("legacy"), Key: aws.String("raced.txt")}); out != nil {
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(out.Body)
		out.Body.Close()
		if b.String() != "the writer's new content" {
			t.Errorf("the concurrent write was clobbered: %q", b.String())
		}
	}
	// Read again, the overwritten object is SSE-S3 and simply updated.
	if got := r.Rekey(ctx, messages.Object{Bucket: "legacy", Key: "raced.txt"}); got.Status != rekey.Updated || raced.Encryption != "SSE-S3" {
		t.Errorf("raced.txt on its retry: %+v (was %s)", got.Outcome, raced.Encryption)
	}
	for _, x := range []struct{ bucket, key string }{{"legacy", "frozen.bin"}, {"legacy-locked", "held.txt"}, {"optout", "plain.txt"}, {"acl-on", "x.txt"}} {
		if st, _ := e.Emu.Inspect(x.bucket, x.key, ""); st.Encryption != "NOT-SSE" {
			t.Errorf("%s/%s ends %s, want untouched", x.bucket, x.key, st.Encryption)
		}
	}
	// The copy's own Object Created event: compliant, no second copy.
	copies := e.Emu.CountOf("s3", "CopyObject", "")
	if got := r.Rekey(ctx, messages.Object{Bucket: "legacy", Key: "meta.txt"}); got.Status != rekey.Compliant || e.Emu.CountOf("s3", "CopyObject", "") != copies {
		t.Errorf("the copy's event: %+v, want compliant with no copy", got.Outcome)
	}
}

// racingPartCopy overwrites the object before the first part is copied.
type racingPartCopy struct {
	*s3.Client
	overwrite func()
	done      bool
}

func (o *racingPartCopy) UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, opts ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error) {
	if !o.done {
		o.done = true
		o.overwrite()
	}
	return o.Client.UploadPartCopy(ctx, in, opts...)
}

// A multipart copy that fails (here: the object was overwritten between
// the HEAD and a part) aborts its upload, which needs
// s3:AbortMultipartUpload: without it the upload is left behind.
func TestMultipartCopyAbortsOnFailure(t *testing.T) {
	for _, granted := range []bool{true, false} {
		t.Run(fmt.Sprintf("abort granted %v", granted), func(t *testing.T) {
			e := emutest.Start(t, emulator.Options{})
			ctx := context.Background()
			target := e.Key(t)
			e.Bucket(t, "legacy", false)
			e.Put(t, &s3.PutObjectInput{Bucket: aws.String("legacy"), Key: aws.String("big.bin")}, strings.Repeat("x", 7<<20), emulator.LegacyUnencrypted)
			actions := `"s3:GetObject","s3:PutObject","s3:GetBucketOwnershipControls","s3:GetObjectTagging","s3:PutObjectTagging","s3:ListObjectAnnotations"`
			if granted {
				actions += `,"s3:AbortMultipartUpload"`
			}
			if err := e.Emu.BindPolicy("COPIER", []byte(`{"Statement":[{"Effect":"Allow","Action":[`+actions+`],"Resource":"*"}]}`)); err != nil {
				t.Fatal(err)
			}
			cfg := e.Emu.AWSConfigAs("COPIER")
			cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
			api := &racingPartCopy{Client: s3.NewFromConfig(cfg, emulator.PathStyle), overwrite: func() {
				e.Put(t, &s3.PutObjectInput{Bucket: aws.String("legacy"), Key: aws.String("big.bin")}, "new", emulator.LegacyUnencrypted)
			}}
			pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{"legacy":{"kmsKeyArn":%q,"unsupportedSources":{"notEncrypted":"copy"}}}}`, target)))
			if err != nil {
				t.Fatal(err)
			}
			r := &rekey.Rekeyer{Head: api, Update: api, Policy: pol, Copier: &rekey.Copier{API: api, MultipartThreshold: 6 << 20, PartSize: 5 << 20}}
			if got := r.Rekey(ctx, messages.Object{Bucket: "legacy", Key: "big.bin"}); got.Status != rekey.Retry || got.Reason != "concurrent-overwrite" {
				t.Errorf("got %+v, want a retry for the concurrent overwrite", got.Outcome)
			}
			uploads, err := e.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("legacy")})
			if err != nil {
				t.Fatal(err)
			}
			if left := len(uploads.Uploads); (left == 0) != granted {
				t.Errorf("%d multipart uploads left behind with abort granted=%v", left, granted)
			}
		})
	}
}
