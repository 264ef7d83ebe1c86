package rekey_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

const dirBucket = "fast--use1-az4--x-s3"

type fixture struct {
	*emutest.Env
	target, old string
	policy      *policy.Policy
	rekeyer     *rekey.Rekeyer
	versions    map[string]string // name → version id
}

// newFixture seeds every state an object can be in.
func newFixture(t *testing.T) *fixture {
	e := emutest.Start(t, emulator.Options{})
	f := &fixture{Env: e, target: e.Key(t), old: e.Key(t), versions: map[string]string{}}
	e.Versioned(t, "data")
	e.Bucket(t, "locked", true)
	e.Bucket(t, "unmanaged", false)
	if _, err := e.S3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(dirBucket)}); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{
		"data":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"excludePrefixes":["logs/"],"versions":"all"},
		"locked":{"kmsKeyArn":%q,"bucketKeyEnabled":true},
		%q:{"kmsKeyArn":%q}}}`, f.target, f.target, dirBucket, f.target)))
	if err != nil {
		t.Fatal(err)
	}
	f.policy = p
	f.rekeyer = &rekey.Rekeyer{Head: e.S3, Update: e.S3, Policy: p}

	data := func(key string, edit func(*s3.PutObjectInput), opts ...func(*s3.Options)) string {
		in := &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key)}
		if edit != nil {
			edit(in)
		}
		return aws.ToString(e.Put(t, in, "body of "+key, opts...).VersionId)
	}
	kms := func(key string, bk bool) func(*s3.PutObjectInput) {
		return func(in *s3.PutObjectInput) {
			in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, aws.String(key), aws.Bool(bk)
		}
	}
	customer := bytes.Repeat([]byte{9}, 32)
	sum := md5.Sum(customer)
	data("sse-s3.txt", nil)
	data("kms old.txt", kms(f.old, true))
	data("kms target+bk.txt", kms(f.target, true))
	data("kms target no bk.txt", kms(f.target, false))
	data("plain.txt", nil, emulator.LegacyUnencrypted)
	data("ssec.bin", func(in *s3.PutObjectInput) {
		in.SSECustomerAlgorithm, in.SSECustomerKey = aws.String("AES256"), aws.String(base64.StdEncoding.EncodeToString(customer))
		in.SSECustomerKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	})
	data("dsse.bin", func(in *s3.PutObjectInput) {
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKmsDsse, aws.String(f.old)
	})
	data("logs/app.log", nil)
	data("deleted.txt", nil)
	if _, err := e.S3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("deleted.txt")}); err != nil {
		t.Fatal(err)
	}
	f.versions["v1"] = data("two versions.txt", nil)
	f.versions["v2"] = data("two versions.txt", nil)

	until := time.Now().Add(time.Hour)
	lockedPut := func(key string, edit func(*s3.PutObjectInput)) {
		in := &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String(key)}
		edit(in)
		e.Put(t, in, "locked "+key)
	}
	lockedPut("governance", func(in *s3.PutObjectInput) {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockModeGovernance, aws.Time(until)
	})
	lockedPut("hold", func(in *s3.PutObjectInput) { in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn })
	lockedPut("compliant and held", func(in *s3.PutObjectInput) {
		kms(f.target, true)(in)
		in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn
	})
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("unmanaged"), Key: aws.String("x")}, "x")
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String(dirBucket), Key: aws.String("x")}, "x")
	return f
}

func TestRekeyEveryState(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		obj    messages.Object
		want   rekey.Outcome
		heads  int
		update int
	}{
		{"SSE-S3", messages.Object{Bucket: "data", Key: "sse-s3.txt"}, rekey.Outcome{Status: rekey.Updated}, 1, 1},
		{"SSE-KMS old key", messages.Object{Bucket: "data", Key: "kms old.txt"}, rekey.Outcome{Status: rekey.Updated}, 1, 1},
		{"target key with bucket key", messages.Object{Bucket: "data", Key: "kms target+bk.txt"}, rekey.Outcome{Status: rekey.Compliant}, 1, 0},
		{"target key without bucket key", messages.Object{Bucket: "data", Key: "kms target no bk.txt"}, rekey.Outcome{Status: rekey.Updated}, 1, 1},
		{"not encrypted", messages.Object{Bucket: "data", Key: "plain.txt"}, rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonNotEncrypted}, 1, 0},
		// A HEAD's bare 400 proves nothing; UpdateObjectEncryption's refusal
		// names SSE-C, at the price of one refused request.
		{"SSE-C", messages.Object{Bucket: "data", Key: "ssec.bin"}, rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonSSEC, Detail: "refused by S3: " + ssecRefusal}, 1, 1},
		{"DSSE-KMS", messages.Object{Bucket: "data", Key: "dsse.bin"}, rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonDSSEKMS}, 1, 0},
		{"excluded prefix", messages.Object{Bucket: "data", Key: "logs/app.log"}, rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonExcludedPrefix}, 0, 0},
		{"delete marker", messages.Object{Bucket: "data", Key: "deleted.txt"}, rekey.Outcome{Status: rekey.Gone}, 1, 0},
		{"missing", messages.Object{Bucket: "data", Key: "never.txt"}, rekey.Outcome{Status: rekey.Gone}, 1, 0},
		{"noncurrent version", messages.Object{Bucket: "data", Key: "two versions.txt", VersionID: f.versions["v1"]}, rekey.Outcome{Status: rekey.Updated}, 1, 1},
		{"legal hold", messages.Object{Bucket: "locked", Key: "hold"}, rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonObjectLock, Detail: "legal hold"}, 1, 0},
		{"compliant under legal hold", messages.Object{Bucket: "locked", Key: "compliant and held"}, rekey.Outcome{Status: rekey.Compliant}, 1, 0},
		{"unmanaged bucket", messages.Object{Bucket: "unmanaged", Key: "x"}, rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonUnmanagedBucket}, 0, 0},
		{"directory bucket", messages.Object{Bucket: dirBucket, Key: "x"}, rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonDirectoryBucket}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := f.rekeyer.Rekey(ctx, tc.obj)
			if got.Outcome != tc.want || got.Heads != tc.heads || got.Updates != tc.update {
				t.Errorf("got %+v (heads %d, updates %d), want %+v (heads %d, updates %d)", got.Outcome, got.Heads, got.Updates, tc.want, tc.heads, tc.update)
			}
		})
	}
	governance := f.rekeyer.Rekey(ctx, messages.Object{Bucket: "locked", Key: "governance"})
	if governance.Status != rekey.Skipped || governance.Reason != rekey.ReasonObjectLock || governance.Detail == "" {
		t.Errorf("governance retention: %+v, want skipped object-lock with the retain-until date", governance)
	}

	// End state, read from the store: each object as the policy demands.
	want := map[string]string{
		"sse-s3.txt": "SSE-KMS", "kms old.txt": "SSE-KMS", "kms target+bk.txt": "SSE-KMS", "kms target no bk.txt": "SSE-KMS",
		"plain.txt": "NOT-SSE", "ssec.bin": "SSE-C", "dsse.bin": "DSSE-KMS", "logs/app.log": "SSE-S3",
	}
	for key, enc := range want {
		st, _ := f.Emu.Inspect("data", key, "")
		if st.Encryption != enc || (enc == "SSE-KMS" && (st.KMSKeyARN != f.target || !st.BucketKey)) {
			t.Errorf("%s ends %s %s bucketKey=%v, want %s", key, st.Encryption, st.KMSKeyARN, st.BucketKey, enc)
		}
	}
	v1, _ := f.Emu.Inspect("data", "two versions.txt", f.versions["v1"])
	v2, _ := f.Emu.Inspect("data", "two versions.txt", f.versions["v2"])
	if v1.KMSKeyARN != f.target || v2.Encryption != "SSE-S3" {
		t.Errorf("versions: v1 %s %s, v2 %s; want only v1 updated", v1.Encryption, v1.KMSKeyARN, v2.Encryption)
	}
	if n := f.Emu.CountOf("s3", "GetObject", ""); n != 0 {
		t.Errorf("%d GetObject calls; rekeying must never read object data", n)
	}
}

func TestRekeyDuplicateTaskUpdatesOnce(t *testing.T) {
	f := newFixture(t)
	obj := messages.Object{Bucket: "data", Key: "sse-s3.txt"}
	first := f.rekeyer.Rekey(context.Background(), obj)
	second := f.rekeyer.Rekey(context.Background(), obj)
	if first.Status != rekey.Updated || second.Status != rekey.Compliant {
		t.Errorf("first %v, second %v; want updated then compliant", first.Outcome, second.Outcome)
	}
	if n := f.Emu.CountOf("s3", "UpdateObjectEncryption", "data"); n != 1 {
		t.Errorf("%d UpdateObjectEncryption calls, want 1", n)
	}
}

func TestRekeyWithInventoryFacts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	yes, no := true, false
	cases := []struct {
		name          string
		obj           messages.Object
		want          rekey.Outcome
		heads, update int
	}{
		{"SSE-S3 proved: no HEAD", messages.Object{Bucket: "data", Key: "sse-s3.txt", Facts: &messages.Facts{Encryption: "SSE-S3", Locked: &no}},
			rekey.Outcome{Status: rekey.Updated}, 0, 1},
		{"NOT-SSE proved: no request", messages.Object{Bucket: "data", Key: "plain.txt", Facts: &messages.Facts{Encryption: "NOT-SSE"}},
			rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonNotEncrypted}, 0, 0},
		{"delete marker proved", messages.Object{Bucket: "data", Key: "deleted.txt", Facts: &messages.Facts{DeleteMarker: true}},
			rekey.Outcome{Status: rekey.Gone}, 0, 0},
		{"locked proved", messages.Object{Bucket: "locked", Key: "hold", Facts: &messages.Facts{Encryption: "SSE-S3", Locked: &yes}},
			rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonObjectLock, Detail: "Object Lock in force per inventory"}, 0, 0},
		{"SSE-KMS needs a HEAD", messages.Object{Bucket: "data", Key: "kms target+bk.txt", Facts: &messages.Facts{Encryption: "SSE-KMS", BucketKey: &yes}},
			rekey.Outcome{Status: rekey.Compliant}, 1, 0},
		{"stale: now unencrypted", messages.Object{Bucket: "data", Key: "plain.txt", Facts: &messages.Facts{Encryption: "SSE-S3"}},
			rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonNotEncrypted}, 1, 1},
		{"stale: now deleted", messages.Object{Bucket: "data", Key: "deleted.txt", Facts: &messages.Facts{Encryption: "SSE-S3"}},
			rekey.Outcome{Status: rekey.Gone}, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := f.rekeyer.Rekey(ctx, tc.obj)
			if got.Outcome != tc.want || got.Heads != tc.heads || got.Updates != tc.update {
				t.Errorf("got %+v (heads %d, updates %d), want %+v (heads %d, updates %d)", got.Outcome, got.Heads, got.Updates, tc.want, tc.heads, tc.update)
			}
		})
	}
	// Facts said SSE-S3 and unlocked, but a legal hold was set since: S3
	// refuses with the Object Lock message, which is read as a skip.
	held := f.rekeyer.Rekey(ctx, messages.Object{Bucket: "locked", Key: "hold", Facts: &messages.Facts{Encryption: "SSE-S3", Locked: &no}})
	if held.Status != rekey.Skipped || held.Reason != rekey.ReasonObjectLock || held.Heads != 0 {
		t.Errorf("stale lock facts: %+v", held)
	}
}

func TestRekeyDryRun(t *testing.T) {
	f := newFixture(t)
	f.policy.DryRun = true
	for _, key := range []string{"sse-s3.txt", "kms old.txt"} {
		if got := f.rekeyer.Rekey(context.Background(), messages.Object{Bucket: "data", Key: key}); got.Status != rekey.WouldUpdate || got.Updates != 0 {
			t.Errorf("%s: %+v", key, got)
		}
	}
	if got := f.rekeyer.Rekey(context.Background(), messages.Object{Bucket: "data", Key: "kms target+bk.txt"}); got.Status != rekey.Compliant {
		t.Errorf("compliant object in dry run: %+v", got)
	}
	if n := f.Emu.CountOf("s3", "UpdateObjectEncryption", ""); n != 0 {
		t.Errorf("dry run made %d updates", n)
	}
}

func TestRekeyRetriesInjectedSlowDown(t *testing.T) {
	f := newFixture(t)
	fault := emulator.Fault{Service: "s3", Operation: "UpdateObjectEncryption", Code: "SlowDown", Rate: 1}
	if err := f.Emu.SetFault(fault); err != nil {
		t.Fatal(err)
	}
	obj := messages.Object{Bucket: "data", Key: "sse-s3.txt"}
	if got := f.rekeyer.Rekey(context.Background(), obj); got.Status != rekey.Retry || got.Reason != "SlowDown" {
		t.Fatalf("every update throttled: %+v, want retry SlowDown", got)
	}
	// With the SDK's retryer, a 50% SlowDown rate is absorbed inside one call.
	fault.Rate = 0.5
	if err := f.Emu.SetFault(fault); err != nil {
		t.Fatal(err)
	}
	cfg := f.Emu.AWSConfig()
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 10; o.MaxBackoff = 10 * time.Millisecond })
	}
	client := s3.NewFromConfig(cfg, emulator.PathStyle)
	r := &rekey.Rekeyer{Head: client, Update: client, Policy: f.policy}
	if got := r.Rekey(context.Background(), obj); got.Status != rekey.Updated {
		t.Errorf("with retries: %+v", got)
	}
}

// fakeS3 answers HEAD and UpdateObjectEncryption with canned errors.
type fakeS3 struct {
	head    func() (*s3.HeadObjectOutput, error)
	headKey func(key string) (*s3.HeadObjectOutput, error) // instead of head, where the key matters
	update  func() error
}

func (f fakeS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if f.headKey != nil {
		return f.headKey(aws.ToString(in.Key))
	}
	return f.head()
}

func (f fakeS3) UpdateObjectEncryption(context.Context, *s3.UpdateObjectEncryptionInput, ...func(*s3.Options)) (*s3.UpdateObjectEncryptionOutput, error) {
	return &s3.UpdateObjectEncryptionOutput{}, f.update()
}

// A HEAD that met expired credentials, then an update refused for the
// object's encryption: the object is read again and classified by what it
// is, never failed for the first 400.
func TestHead400ThenRefusalRereads(t *testing.T) {
	p, err := policy.Parse([]byte(`{"buckets":{"bkt":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	heads := 0
	fake := fakeS3{head: func() (*s3.HeadObjectOutput, error) {
		if heads++; heads == 1 {
			return head400()
		}
		return &s3.HeadObjectOutput{}, nil // unencrypted
	}, update: func() error {
		return responseError(400, "InvalidRequest", "The UpdateObjectEncryption operation doesn't supported unencrypted source objects.")
	}}
	got := (&rekey.Rekeyer{Head: fake, Update: fake, Policy: p}).Rekey(context.Background(), messages.Object{Bucket: "bkt", Key: "k"})
	if got.Status != rekey.Skipped || got.Reason != rekey.ReasonNotEncrypted || got.Heads != 2 {
		t.Errorf("got %+v after %d HEADs, want skipped: not-encrypted after a second HEAD", got.Outcome, got.Heads)
	}
}

// A bare 400 from HEAD in a dry run is neither skipped nor guessed.
func TestRekeyDryRunHead400IsNotSkipped(t *testing.T) {
	p, err := policy.Parse([]byte(`{"dryRun":true,"buckets":{"bkt":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	fake := fakeS3{head: head400, update: func() error { t.Error("dry run sent an update"); return nil }}
	got := (&rekey.Rekeyer{Head: fake, Update: fake, Policy: p}).Rekey(context.Background(), messages.Object{Bucket: "bkt", Key: "k"})
	if got.Status != rekey.Failed || got.Reason != rekey.ReasonUnreadable {
		t.Errorf("got %+v, want failed: %s", got.Outcome, rekey.ReasonUnreadable)
	}
}

// An EventBridge key is tried decoded, then raw: both spellings of "a+b"
// reach the object.
func TestRekeyTriesRawEventBridgeKey(t *testing.T) {
	p, err := policy.Parse([]byte(`{"buckets":{"bkt":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var heads []string
	fake := fakeS3{headKey: func(key string) (*s3.HeadObjectOutput, error) {
		heads = append(heads, key)
		if key == "a+b.txt" {
			return &s3.HeadObjectOutput{ServerSideEncryption: types.ServerSideEncryptionAes256}, nil
		}
		return nil, responseError(404, "NotFound", "")
	}, update: func() error { return nil }}
	r := &rekey.Rekeyer{Head: fake, Update: fake, Policy: p}
	for _, obj := range []messages.Object{
		{Bucket: "bkt", Key: "a+b.txt", RawKey: "a%2Bb.txt"}, // EventBridge encoded the key
		{Bucket: "bkt", Key: "a b.txt", RawKey: "a+b.txt"},   // EventBridge sent it raw
	} {
		heads = nil
		got := r.Rekey(context.Background(), obj)
		if got.Status != rekey.Updated {
			t.Errorf("%+v: got %+v after HEADs of %q, want updated", obj, got.Outcome, heads)
		}
	}
	heads = nil
	if got := r.Rekey(context.Background(), messages.Object{Bucket: "bkt", Key: "gone.txt", RawKey: "gone.txt"}); got.Status != rekey.Gone || len(heads) != 1 {
		t.Errorf("an identical raw key: %+v after %d HEADs, want gone after 1", got.Outcome, len(heads))
	}
}

func responseError(status int, code, msg string) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err: &smithy.GenericAPIError{Code: code, Message: msg}},
	}
}

const ssecRefusal = "The UpdateObjectEncryption operation doesn't support source objects with the encryption type DSSE-KMS or SSE-C. " +
	"Only source objects encrypted with SSE-S3 or SSE-KMS are supported."

func head400() (*s3.HeadObjectOutput, error) { return nil, responseError(400, "BadRequest", "") }

func TestClassifyErrors(t *testing.T) {
	p, err := policy.Parse([]byte(`{"buckets":{"bkt":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	sseS3 := func() (*s3.HeadObjectOutput, error) {
		return &s3.HeadObjectOutput{ServerSideEncryption: types.ServerSideEncryptionAes256}, nil
	}
	cases := []struct {
		name   string
		fake   fakeS3
		status rekey.Status
		reason string
	}{
		{"HEAD throttled", fakeS3{head: func() (*s3.HeadObjectOutput, error) { return nil, responseError(503, "SlowDown", "slow") }}, rekey.Retry, "SlowDown"},
		{"HEAD 500", fakeS3{head: func() (*s3.HeadObjectOutput, error) { return nil, responseError(500, "InternalError", "x") }}, rekey.Retry, "InternalError"},
		{"HEAD 502 without code", fakeS3{head: func() (*s3.HeadObjectOutput, error) { return nil, responseError(502, "BadGateway", "") }}, rekey.Retry, "BadGateway"},
		{"HEAD 403", fakeS3{head: func() (*s3.HeadObjectOutput, error) { return nil, responseError(403, "Forbidden", "") }}, rekey.Failed, rekey.ReasonAccessDenied},
		{"HEAD 404", fakeS3{head: func() (*s3.HeadObjectOutput, error) { return nil, responseError(404, "NotFound", "") }}, rekey.Gone, ""},
		{"HEAD timeout", fakeS3{head: func() (*s3.HeadObjectOutput, error) { return nil, context.DeadlineExceeded }}, rekey.Retry, "timeout"},
		{"HEAD connection reset", fakeS3{head: func() (*s3.HeadObjectOutput, error) {
			return nil, &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}
		}}, rekey.Retry, "network"},
		{"UOE access denied", fakeS3{head: sseS3, update: func() error { return responseError(403, "AccessDenied", "Access Denied") }}, rekey.Failed, rekey.ReasonAccessDenied},
		{"UOE NoSuchKey", fakeS3{head: sseS3, update: func() error { return responseError(404, "NoSuchKey", "gone") }}, rekey.Gone, ""},
		{"UOE refused although updatable", fakeS3{head: sseS3, update: func() error { return responseError(400, "InvalidRequest", "odd") }}, rekey.Failed, rekey.ReasonInvalidRequest},
		{"UOE throttled by KMS", fakeS3{head: sseS3, update: func() error { return responseError(400, "KMS.ThrottlingException", "slow") }}, rekey.Retry, "KMS.ThrottlingException"},
		// S3's 503 is its answer to a request rate over the quota (userguide
		// ErrorBestPractices.md, "Tune application for repeated SlowDown
		// errors"); a HEAD's 503 has no body to name it, and is throttling
		// all the same.
		{"HEAD 503 without a code", fakeS3{head: func() (*s3.HeadObjectOutput, error) { return nil, responseError(503, "ServiceUnavailable", "") }},
			rekey.Retry, "SlowDown"},
		{"UOE 503 ServiceUnavailable", fakeS3{head: sseS3, update: func() error { return responseError(503, "ServiceUnavailable", "Reduce your request rate.") }},
			rekey.Retry, "SlowDown"},
		// A HEAD answer has no body: its 400 is an SSE-C object, or expired
		// credentials, a wrong region, a malformed version id. Only
		// UpdateObjectEncryption's refusal (S3 API reference,
		// UpdateObjectEncryption, Errors) proves SSE-C.
		{"HEAD 400, UOE refuses SSE-C", fakeS3{head: head400, update: func() error { return responseError(400, "InvalidRequest", ssecRefusal) }},
			rekey.Skipped, rekey.ReasonSSEC},
		{"HEAD 400, UOE expired token", fakeS3{head: head400, update: func() error {
			return responseError(400, "ExpiredToken", "The provided token has expired.")
		}}, rekey.Retry, "ExpiredToken"},
		{"HEAD 400, UOE wrong region", fakeS3{head: head400, update: func() error {
			return responseError(400, "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong; expecting 'eu-west-1'")
		}}, rekey.Failed, rekey.ReasonInvalidRequest},
		{"HEAD 400, UOE other refusal, HEAD 400 again", fakeS3{head: head400, update: func() error { return responseError(400, "InvalidRequest", "odd") }},
			rekey.Failed, rekey.ReasonInvalidRequest},
		{"HEAD 400, update applies", fakeS3{head: head400, update: func() error { return nil }}, rekey.Updated, ""},
		// 409s are conflicts with a request in progress (S3 API reference,
		// Error responses): they pass.
		{"UOE OperationAborted", fakeS3{head: sseS3, update: func() error { return responseError(409, "OperationAborted", "conflict") }}, rekey.Retry, "OperationAborted"},
		{"UOE ConditionalRequestConflict", fakeS3{head: sseS3, update: func() error {
			return responseError(409, "ConditionalRequestConflict", "conflict")
		}}, rekey.Retry, "ConditionalRequestConflict"},
		{"UOE NotImplemented on a general purpose bucket", fakeS3{head: sseS3, update: func() error {
			return responseError(501, "NotImplemented", "not here")
		}}, rekey.Failed, rekey.ReasonNotImplemented},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &rekey.Rekeyer{Head: tc.fake, Update: tc.fake, Policy: p}
			got := r.Rekey(context.Background(), messages.Object{Bucket: "bkt", Key: "k"})
			if got.Status != tc.status || got.Reason != tc.reason {
				t.Errorf("got %+v, want %s %s", got.Outcome, tc.status, tc.reason)
			}
		})
	}
}
