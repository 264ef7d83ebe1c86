package emulator_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// The messages below are copied from the S3 API reference (seeds 000 and
// 001), not from the emulator, so that the test proves them verbatim.
const (
	seedUnencryptedSource = "The UpdateObjectEncryption operation doesn't supported unencrypted source objects. Only source objects encrypted with SSE-S3 or SSE-KMS are supported."
	seedUnsupportedSource = "The UpdateObjectEncryption operation doesn't support source objects with the encryption type DSSE-KMS or SSE-C. Only source objects encrypted with SSE-S3 or SSE-KMS are supported."
	seedUnsupportedTarget = "The UpdateObjectEncryption operation doesn't support updating the encryption type to DSSE-KMS or SSE-C. Modify the request to specify SSE-KMS for the updated encryption type, and then try again."
	seedSigV4             = "Requests that modify an object encryption configuration require Amazon Web Services Signature Version 4. Modify the request to use Amazon Web Services Signature Version 4, and then try again."
	seedInvalidType       = "Requests that modify an object encryption configuration require a valid new encryption type. Valid values are SSEKMS. Modify the request to specify SSE-KMS for the updated encryption type, and then try again."
	seedMissingARN        = "Requests that modify an object's encryption type to SSE-KMS require an Amazon Web Services KMS key Amazon Resource Name (ARN). Modify the request to specify a KMS key ARN, and then try again."
	seedInvalidARN        = "Requests that modify an object's encryption type to SSE-KMS require a valid Amazon Web Services KMS key Amazon Resource Name (ARN). Confirm that you have a correctly formatted KMS key ARN in your request, and then try again."
	seedBucketKey         = "The BucketKeyEnabled value isn't valid. Valid values are true or false. Modify the request to specify a valid value, and then try again."
	seedOtherAccount      = "The Amazon Web Services KMS key in the request must be owned by the same account as the bucket. Modify the request to specify a KMS key from the same account, and then try again."
	seedObjectLock        = "The encryption type for the specified object can’t be updated because that object is protected by S3 Object Lock. If the object has a governance-mode retention period or a legal hold, you must first remove the Object Lock status on the object before you issue your UpdateObjectEncryption request. You can't use the UpdateObjectEncryption operation with objects that have an Object Lock compliance mode retention period applied to them."
)

func uoeInput(bucket, key, keyARN string) *s3.UpdateObjectEncryptionInput {
	return &s3.UpdateObjectEncryptionInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
		ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(keyARN)}},
	}
}

func uoeBody(inner string) string {
	return `<ObjectEncryption xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + inner + `</ObjectEncryption>`
}

// TestUpdateObjectEncryptionErrors has one case per error of the reference.
func TestUpdateObjectEncryptionErrors(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "data", false)
	mustBucket(t, e, "locked", true)
	keyARN := mustKey(t, e)
	aliasName := "alias/target"
	if _, err := e.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(aliasName), TargetKeyId: aws.String(keyARN)}); err != nil {
		t.Fatal(err)
	}
	keyID := keyARN[strings.LastIndex(keyARN, "/")+1:]
	customerKey := bytes.Repeat([]byte{1}, 32)

	put(t, e, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("sse-s3")}, "x")
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("plain")}, "x", emulator.LegacyUnencrypted)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("sse-c"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(b64(customerKey)), SSECustomerKeyMD5: aws.String(md5b64(customerKey))}, "x")
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("dsse"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKmsDsse, SSEKMSKeyId: aws.String(keyARN)}, "x")
	future := time.Now().Add(24 * time.Hour)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("governance"),
		ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(future)}, "x")
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("compliance"),
		ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: aws.Time(future)}, "x")
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("hold"),
		ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn}, "x")
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("deleted")}, "x")
	if _, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: aws.String("deleted")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("fast--use1-az4--x-s3")}); err != nil {
		t.Fatal(err)
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("fast--use1-az4--x-s3"), Key: aws.String("k")}, "x")

	withOwner := func(owner string) *s3.UpdateObjectEncryptionInput {
		in := uoeInput("data", "sse-s3", keyARN)
		in.ExpectedBucketOwner = aws.String(owner)
		return in
	}
	withVersion := func(v string) *s3.UpdateObjectEncryptionInput {
		in := uoeInput("locked", "deleted", keyARN)
		in.VersionId = aws.String(v)
		return in
	}
	sdkCases := []struct {
		name       string
		in         *s3.UpdateObjectEncryptionInput
		status     int
		code, msg  string
		noMsgCheck bool
	}{
		{name: "unencrypted source", in: uoeInput("data", "plain", keyARN), status: 400, code: "InvalidRequest", msg: seedUnencryptedSource},
		{name: "SSE-C source", in: uoeInput("data", "sse-c", keyARN), status: 400, code: "InvalidRequest", msg: seedUnsupportedSource},
		{name: "DSSE-KMS source", in: uoeInput("data", "dsse", keyARN), status: 400, code: "InvalidRequest", msg: seedUnsupportedSource},
		{name: "alias name instead of key ARN", in: uoeInput("data", "sse-s3", aliasName), status: 400, code: "InvalidRequest", msg: seedInvalidARN},
		{name: "alias ARN instead of key ARN", in: uoeInput("data", "sse-s3", "arn:aws:kms:us-east-1:111122223333:"+aliasName), status: 400, code: "InvalidRequest", msg: seedInvalidARN},
		{name: "bare key id", in: uoeInput("data", "sse-s3", keyID), status: 400, code: "InvalidRequest", msg: seedInvalidARN},
		{name: "ARN with short account", in: uoeInput("data", "sse-s3", "arn:aws:kms:us-east-1:1111:key/"+keyID), status: 400, code: "InvalidRequest", msg: seedInvalidARN},
		{name: "key of another account", in: uoeInput("data", "sse-s3", "arn:aws:kms:us-east-1:999999999999:key/"+keyID), status: 403, code: "AccessDenied", msg: seedOtherAccount},
		{name: "unknown key of the bucket owner", in: uoeInput("data", "sse-s3", "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"), status: 403, code: "AccessDenied", noMsgCheck: true},
		{name: "governance retention", in: uoeInput("locked", "governance", keyARN), status: 403, code: "AccessDenied", msg: seedObjectLock},
		{name: "compliance retention", in: uoeInput("locked", "compliance", keyARN), status: 403, code: "AccessDenied", msg: seedObjectLock},
		{name: "legal hold", in: uoeInput("locked", "hold", keyARN), status: 403, code: "AccessDenied", msg: seedObjectLock},
		{name: "missing key", in: uoeInput("data", "nope", keyARN), status: 404, code: "NoSuchKey", noMsgCheck: true},
		{name: "current version is a delete marker", in: uoeInput("locked", "deleted", keyARN), status: 404, code: "NoSuchKey", noMsgCheck: true},
		{name: "unknown version id", in: withVersion("3sL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"), status: 404, code: "NoSuchKey", noMsgCheck: true},
		{name: "missing bucket", in: uoeInput("no-such-bucket", "k", keyARN), status: 404, code: "NoSuchBucket", noMsgCheck: true},
		{name: "expected owner mismatch", in: withOwner("999999999999"), status: 403, code: "AccessDenied", noMsgCheck: true},
		{name: "directory bucket", in: uoeInput("fast--use1-az4--x-s3", "k", keyARN), status: 501, code: "NotImplemented", noMsgCheck: true},
	}
	for _, tc := range sdkCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s3.UpdateObjectEncryption(ctx, tc.in)
			if err == nil {
				t.Fatal("want an error, got success")
			}
			if got := httpStatus(err); got != tc.status {
				t.Errorf("status %d, want %d (%v)", got, tc.status, err)
			}
			if got := apiCode(err); got != tc.code {
				t.Errorf("code %q, want %q", got, tc.code)
			}
			if !tc.noMsgCheck && apiMessage(err) != tc.msg {
				t.Errorf("message\n got %q\nwant %q", apiMessage(err), tc.msg)
			}
		})
	}

	// Requests the SDK cannot express, signed with the SDK's signer.
	kmsTarget := func(inner string) string { return uoeBody("<SSE-KMS>" + inner + "</SSE-KMS>") }
	rawCases := []struct {
		name, body string
		header     map[string]string
		sign       bool
		status     int
		msg        string
	}{
		{"DSSE-KMS target", uoeBody("<DSSE-KMS><KMSKeyArn>" + keyARN + "</KMSKeyArn></DSSE-KMS>"), nil, true, 400, seedUnsupportedTarget},
		{"SSE-C target", uoeBody("<SSE-C></SSE-C>"), nil, true, 400, seedUnsupportedTarget},
		{"SSE-S3 target", uoeBody("<SSE-S3></SSE-S3>"), nil, true, 400, seedInvalidType},
		{"empty encryption", uoeBody(""), nil, true, 400, seedInvalidType},
		{"no body", "", nil, true, 400, seedInvalidType},
		{"missing key ARN", kmsTarget("<BucketKeyEnabled>true</BucketKeyEnabled>"), nil, true, 400, seedMissingARN},
		{"empty key ARN", kmsTarget("<KMSKeyArn></KMSKeyArn>"), nil, true, 400, seedMissingARN},
		{"BucketKeyEnabled not a boolean", kmsTarget("<KMSKeyArn>" + keyARN + "</KMSKeyArn><BucketKeyEnabled>yes</BucketKeyEnabled>"), nil, true, 400, seedBucketKey},
		{"unsigned", kmsTarget("<KMSKeyArn>" + keyARN + "</KMSKeyArn>"), nil, false, 400, seedSigV4},
		{"signature version 2", kmsTarget("<KMSKeyArn>" + keyARN + "</KMSKeyArn>"), map[string]string{"Authorization": "AWS AKIAEXAMPLE:c2lnbmF0dXJl"}, false, 400, seedSigV4},
	}
	for _, tc := range rawCases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.rawRequest(t, http.MethodPut, "/data/sse-s3?encryption", tc.body, tc.header, tc.sign)
			if status != tc.status {
				t.Errorf("status %d, want %d: %s", status, tc.status, body)
			}
			if !strings.Contains(body, "<Code>InvalidRequest</Code>") || !strings.Contains(body, "<Message>"+xmlEscape(tc.msg)+"</Message>") {
				t.Errorf("body %s\nwant InvalidRequest with %q", body, tc.msg)
			}
		})
	}
	st, _ := e.emu.Inspect("data", "sse-s3", "")
	if st.Encryption != "SSE-S3" {
		t.Errorf("after refused updates the object is %s, want SSE-S3 unchanged", st.Encryption)
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\'':
			b.WriteString("&#39;")
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&#34;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestUpdateObjectEncryptionPreservesObject proves that only the data key's
// protection changes: bytes, ETag, Last-Modified, storage class, checksum,
// metadata and version stay, and no event fires.
func TestUpdateObjectEncryptionPreservesObject(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "data", false)
	oldKey, newKey := mustKey(t, e), mustKey(t, e)
	q, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, _ := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if _, err := e.s3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String("data"),
		NotificationConfiguration: &types.NotificationConfiguration{QueueConfigurations: []types.QueueConfiguration{{
			QueueArn: aws.String(attrs.Attributes["QueueArn"]), Events: []types.Event{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"},
		}}},
	}); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("payload ", 1000)
	put(t, e, &s3.PutObjectInput{
		Bucket: aws.String("data"), Key: aws.String("report 2024+final.csv"), ServerSideEncryption: types.ServerSideEncryptionAwsKms,
		SSEKMSKeyId: aws.String(oldKey), StorageClass: types.StorageClassStandardIa, ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ContentType: aws.String("text/csv"), Metadata: map[string]string{"owner": "finance"},
	}, body)
	before, _ := e.emu.Inspect("data", "report 2024+final.csv", "")
	headBefore, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("report 2024+final.csv"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a rewrite would show a later Last-Modified

	in := uoeInput("data", "report 2024+final.csv", newKey)
	in.ObjectEncryption = &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(newKey), BucketKeyEnabled: aws.Bool(true)}}
	in.ExpectedBucketOwner = aws.String(e.emu.Account())
	if _, err := e.s3.UpdateObjectEncryption(ctx, in); err != nil {
		t.Fatal(err)
	}
	after, _ := e.emu.Inspect("data", "report 2024+final.csv", "")
	if !bytes.Equal(before.Ciphertext, after.Ciphertext) {
		t.Error("stored ciphertext changed")
	}
	if bytes.Equal(before.WrappedKey, after.WrappedKey) {
		t.Error("wrapped data key did not change")
	}
	if after.Encryption != "SSE-KMS" || after.KMSKeyARN != newKey || !after.BucketKey {
		t.Errorf("after: %s %s bucketKey=%v, want SSE-KMS %s bucketKey=true", after.Encryption, after.KMSKeyARN, after.BucketKey, newKey)
	}
	if before.ETag != after.ETag || !before.LastModified.Equal(after.LastModified) || before.StorageClass != after.StorageClass ||
		before.Checksum != after.Checksum || before.VersionID != after.VersionID || after.Metadata["owner"] != "finance" {
		t.Errorf("object properties changed:\nbefore %+v\nafter  %+v", before, after)
	}
	head, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("report 2024+final.csv"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if head.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(head.SSEKMSKeyId) != newKey || !aws.ToBool(head.BucketKeyEnabled) {
		t.Errorf("HEAD says %s %s %v", head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId), aws.ToBool(head.BucketKeyEnabled))
	}
	if aws.ToString(head.ETag) != aws.ToString(headBefore.ETag) || !aws.ToTime(head.LastModified).Equal(aws.ToTime(headBefore.LastModified)) ||
		head.StorageClass != types.StorageClassStandardIa || aws.ToString(head.ChecksumSHA256) != aws.ToString(headBefore.ChecksumSHA256) ||
		aws.ToString(head.ChecksumSHA256) == "" || aws.ToString(head.ContentType) != "text/csv" {
		t.Errorf("HEAD properties changed: before %+v after %+v", headBefore, head)
	}
	got, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("report 2024+final.csv")})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(got.Body)
	if string(data) != body {
		t.Error("GetObject after the update returned other bytes")
	}
	versions, err := e.s3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("data")})
	if err != nil {
		t.Fatal(err)
	}
	if len(versions.Versions) != 1 {
		t.Errorf("%d versions, want 1", len(versions.Versions))
	}
	// Exactly the test event and the one upload: the update fired nothing.
	msgs, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	var created int
	for _, m := range msgs.Messages {
		if strings.Contains(aws.ToString(m.Body), "s3:TestEvent") {
			continue
		}
		var ev events.S3Event
		if err := jsonUnmarshal(aws.ToString(m.Body), &ev); err != nil {
			t.Fatal(err)
		}
		for _, r := range ev.Records {
			if r.EventName != "ObjectCreated:Put" {
				t.Errorf("unexpected event %s", r.EventName)
			}
			created++
		}
	}
	if created != 1 || len(msgs.Messages) != 2 {
		t.Errorf("%d messages with %d created events, want the test event and 1 upload event", len(msgs.Messages), created)
	}
}

// TestUpdateObjectEncryptionByVersion shows the current version is the
// default target and a versionId selects any other.
func TestUpdateObjectEncryptionByVersion(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "versioned", false)
	if _, err := e.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("versioned"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	keyARN := mustKey(t, e)
	v1 := put(t, e, &s3.PutObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k")}, "one")
	v2 := put(t, e, &s3.PutObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k")}, "two")
	in := uoeInput("versioned", "k", keyARN)
	in.VersionId = v1.VersionId
	out, err := e.s3.UpdateObjectEncryption(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	_ = out
	s1, _ := e.emu.Inspect("versioned", "k", aws.ToString(v1.VersionId))
	s2, _ := e.emu.Inspect("versioned", "k", aws.ToString(v2.VersionId))
	if s1.Encryption != "SSE-KMS" || s2.Encryption != "SSE-S3" {
		t.Fatalf("after updating v1: v1 %s, v2 %s; want SSE-KMS, SSE-S3", s1.Encryption, s2.Encryption)
	}
	if _, err := e.s3.UpdateObjectEncryption(ctx, uoeInput("versioned", "k", keyARN)); err != nil {
		t.Fatal(err)
	}
	s2, _ = e.emu.Inspect("versioned", "k", aws.ToString(v2.VersionId))
	if s2.Encryption != "SSE-KMS" || s2.KMSKeyARN != keyARN || s2.BucketKey {
		t.Errorf("current version: %s %s bucketKey=%v", s2.Encryption, s2.KMSKeyARN, s2.BucketKey)
	}
	old, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k"), VersionId: v1.VersionId})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(old.Body); string(b) != "one" {
		t.Errorf("v1 reads %q", b)
	}
	if e.emu.CountOf("kms", "Encrypt", "versioned") != 2 {
		t.Errorf("S3's KMS Encrypt calls: %d, want 2 (no bucket key)", e.emu.CountOf("kms", "Encrypt", "versioned"))
	}
}
