package emulator_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

func TestBucketDefaultEncryption(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "bkt", false)
	keyARN := mustKey(t, e)

	got, err := e.s3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("bkt")})
	if err != nil {
		t.Fatal(err)
	}
	if alg := got.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm; alg != types.ServerSideEncryptionAes256 {
		t.Errorf("new bucket default %s, want AES256", alg)
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("before")}, "x")

	if _, err := e.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("bkt"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(keyARN)},
			BucketKeyEnabled:                   aws.Bool(true),
		}}}}); err != nil {
		t.Fatal(err)
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("after")}, "x")
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("explicit"), ServerSideEncryption: types.ServerSideEncryptionAes256}, "x")

	cases := []struct {
		key, sse, keyARN string
		bucketKey        bool
	}{
		{"before", "AES256", "", false},
		{"after", "aws:kms", keyARN, true},
		{"explicit", "AES256", "", false},
	}
	for _, c := range cases {
		h, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String(c.key)})
		if err != nil {
			t.Fatal(err)
		}
		if string(h.ServerSideEncryption) != c.sse || aws.ToString(h.SSEKMSKeyId) != c.keyARN || aws.ToBool(h.BucketKeyEnabled) != c.bucketKey {
			t.Errorf("%s: %s %s %v, want %s %s %v", c.key, h.ServerSideEncryption, aws.ToString(h.SSEKMSKeyId), aws.ToBool(h.BucketKeyEnabled), c.sse, c.keyARN, c.bucketKey)
		}
	}
	// General purpose buckets do not validate the default key (seed 002):
	// the error comes at upload time.
	if _, err := e.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("bkt"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String("alias/does-not-exist")},
		}}}}); err != nil {
		t.Fatalf("PutBucketEncryption with an unknown key: %v (S3 does not validate it)", err)
	}
	_, err = e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("bad"), Body: strings.NewReader("x")})
	if apiCode(err) != "KMS.NotFoundException" {
		t.Errorf("upload under an unknown default key: %v, want KMS.NotFoundException", err)
	}
	if _, err := e.s3.DeleteBucketEncryption(ctx, &s3.DeleteBucketEncryptionInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("reset")}, "x")
	if st, _ := e.emu.Inspect("bkt", "reset", ""); st.Encryption != "SSE-S3" {
		t.Errorf("after DeleteBucketEncryption uploads are %s, want SSE-S3", st.Encryption)
	}
	// SSE-KMS without a key id uses the AWS managed aws/s3 key.
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("managed"), ServerSideEncryption: types.ServerSideEncryptionAwsKms}, "x")
	st, _ := e.emu.Inspect("bkt", "managed", "")
	if st.Encryption != "SSE-KMS" || !strings.Contains(st.KMSKeyARN, ":key/") {
		t.Errorf("aws:kms without key id: %s %s", st.Encryption, st.KMSKeyARN)
	}
}

func TestDirectoryBucketEncryptionRules(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	const dir = "fast--use1-az4--x-s3"
	if _, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(dir)}); err != nil {
		t.Fatal(err)
	}
	first, second := mustKey(t, e), mustKey(t, e)
	setKey := func(key string) error {
		_, err := e.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(dir),
			ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(key)},
			}}}})
		return err
	}
	if err := setKey("arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"); err == nil {
		t.Error("directory bucket accepted an unknown key; seed 002 says it validates")
	}
	if err := setKey(first); err != nil {
		t.Fatal(err)
	}
	if err := setKey(second); err == nil {
		t.Error("directory bucket changed its KMS key; seed 004 allows one per lifetime")
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String(dir), Key: aws.String("k")}, "x")
	if st, _ := e.emu.Inspect(dir, "k", ""); st.Encryption != "SSE-KMS" || st.KMSKeyARN != first || !st.BucketKey {
		t.Errorf("directory bucket upload: %s %s bucketKey=%v, want SSE-KMS under the first key with a bucket key", st.Encryption, st.KMSKeyARN, st.BucketKey)
	}
}

func TestSSECustomerKeys(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "bkt", false)
	key, wrong := bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{4}, 32)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("c"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(b64(key)), SSECustomerKeyMD5: aws.String(md5b64(key))}, "secret")

	_, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("c")})
	if httpStatus(err) != 400 {
		t.Errorf("HEAD of an SSE-C object without the key: %v, want 400", err)
	}
	_, err = e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("c"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(b64(wrong)), SSECustomerKeyMD5: aws.String(md5b64(wrong))})
	if httpStatus(err) != 403 {
		t.Errorf("GET with the wrong key: %v, want 403", err)
	}
	got, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("c"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(b64(key)), SSECustomerKeyMD5: aws.String(md5b64(key))})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(got.Body); string(b) != "secret" || aws.ToString(got.SSECustomerAlgorithm) != "AES256" {
		t.Errorf("GET with the key: %q %s", b, aws.ToString(got.SSECustomerAlgorithm))
	}
	st, _ := e.emu.Inspect("bkt", "c", "")
	if bytes.Contains(st.Ciphertext, []byte("secret")) {
		t.Error("SSE-C object stored in clear")
	}
}

func TestVersioningAndDeleteMarkers(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	e.Versioned(t, "ver")
	v1 := put(t, e, &s3.PutObjectInput{Bucket: aws.String("ver"), Key: aws.String("k")}, "one")
	del, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("ver"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) == "" {
		t.Fatalf("delete in a versioned bucket: marker=%v version=%q", aws.ToBool(del.DeleteMarker), aws.ToString(del.VersionId))
	}
	_, err = e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ver"), Key: aws.String("k")})
	if httpStatus(err) != 404 {
		t.Errorf("HEAD of a deleted key: %v, want 404", err)
	}
	_, err = e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ver"), Key: aws.String("k"), VersionId: del.VersionId})
	if httpStatus(err) != 405 {
		t.Errorf("HEAD of a delete marker by version: %v, want 405", err)
	}
	if _, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ver"), Key: aws.String("k"), VersionId: v1.VersionId}); err != nil {
		t.Errorf("old version after delete: %v", err)
	}
	out, err := e.s3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("ver")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Versions) != 1 || len(out.DeleteMarkers) != 1 || !aws.ToBool(out.DeleteMarkers[0].IsLatest) || aws.ToBool(out.Versions[0].IsLatest) {
		t.Errorf("versions %+v markers %+v", out.Versions, out.DeleteMarkers)
	}
	list, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("ver")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 0 {
		t.Errorf("ListObjectsV2 shows %d objects behind a delete marker", len(list.Contents))
	}
	// Deleting the marker by version restores the object.
	if _, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("ver"), Key: aws.String("k"), VersionId: del.VersionId}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ver"), Key: aws.String("k")}); err != nil {
		t.Errorf("after removing the delete marker: %v", err)
	}
}

func TestObjectLock(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "plain", false)
	mustBucket(t, e, "locked", true)
	_, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("plain"), Key: aws.String("k"), Body: strings.NewReader("x"),
		ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn})
	if apiCode(err) != "InvalidRequest" {
		t.Errorf("lock headers on a bucket without Object Lock: %v", err)
	}
	v, err := e.s3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("locked")})
	if err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Errorf("Object Lock bucket versioning %s, %v; want Enabled", v.Status, err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	obj := put(t, e, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("g")}, "x")
	if _, err := e.s3.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String("locked"), Key: aws.String("g"),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(until)}}); err != nil {
		t.Fatal(err)
	}
	r, err := e.s3.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String("locked"), Key: aws.String("g")})
	if err != nil || r.Retention.Mode != types.ObjectLockRetentionModeGovernance || !aws.ToTime(r.Retention.RetainUntilDate).Equal(until) {
		t.Errorf("retention %+v, %v", r, err)
	}
	h, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("locked"), Key: aws.String("g")})
	if err != nil || h.ObjectLockMode != types.ObjectLockModeGovernance || h.ObjectLockLegalHoldStatus != types.ObjectLockLegalHoldStatusOff {
		t.Errorf("HEAD lock headers: %s %s %v", h.ObjectLockMode, h.ObjectLockLegalHoldStatus, err)
	}
	_, err = e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: aws.String("g"), VersionId: obj.VersionId})
	if httpStatus(err) != 403 {
		t.Errorf("deleting a governance-locked version: %v, want 403", err)
	}
	// Shortening governance retention needs the bypass header.
	shorter := &s3.PutObjectRetentionInput{Bucket: aws.String("locked"), Key: aws.String("g"),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(until.Add(-time.Minute))}}
	if _, err := e.s3.PutObjectRetention(ctx, shorter); httpStatus(err) != 403 {
		t.Errorf("shortening governance retention without bypass: %v, want 403", err)
	}
	shorter.BypassGovernanceRetention = aws.Bool(true)
	if _, err := e.s3.PutObjectRetention(ctx, shorter); err != nil {
		t.Errorf("shortening governance retention with bypass: %v", err)
	}
	if _, err := e.s3.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: aws.String("locked"), Key: aws.String("g"),
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn}}); err != nil {
		t.Fatal(err)
	}
	lh, err := e.s3.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{Bucket: aws.String("locked"), Key: aws.String("g")})
	if err != nil || lh.LegalHold.Status != types.ObjectLockLegalHoldStatusOn {
		t.Errorf("legal hold %+v %v", lh, err)
	}
	// A compliance retention cannot be shortened, even with bypass.
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("c"),
		ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: aws.Time(until)}, "x")
	_, err = e.s3.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String("locked"), Key: aws.String("c"), BypassGovernanceRetention: aws.Bool(true),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(until.Add(-time.Minute))}})
	if httpStatus(err) != 403 {
		t.Errorf("shortening compliance retention: %v, want 403", err)
	}
	// Default retention applies to uploads without lock headers.
	if _, err := e.s3.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: aws.String("locked"),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("d")}, "x")
	if st, _ := e.emu.Inspect("locked", "d", ""); st.LockMode != "GOVERNANCE" || st.RetainUntil.Before(time.Now().Add(23*time.Hour)) {
		t.Errorf("default retention: %s until %v", st.LockMode, st.RetainUntil)
	}
}

func TestListObjectsV2(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "lst", false)
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("dir%d/file %02d+ü.txt", i%3, i)
		want = append(want, k)
		put(t, e, &s3.PutObjectInput{Bucket: aws.String("lst"), Key: aws.String(k)}, "x")
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("lst"), Key: aws.String("top.txt")}, "x")
	sort.Strings(want)

	var got []string
	p := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Prefix: aws.String("dir"), MaxKeys: aws.Int32(4)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range page.Contents {
			got = append(got, aws.ToString(o.Key))
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") || pages != 7 {
		t.Errorf("paged listing: %d pages, keys\n%v\nwant\n%v", pages, got, want)
	}
	var prefixes []string
	dp := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)})
	var top []string
	for dp.HasMorePages() {
		page, err := dp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range page.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(cp.Prefix))
		}
		for _, o := range page.Contents {
			top = append(top, aws.ToString(o.Key))
		}
	}
	if strings.Join(prefixes, ",") != "dir0/,dir1/,dir2/" || strings.Join(top, ",") != "top.txt" {
		t.Errorf("delimiter listing: prefixes %v, keys %v", prefixes, top)
	}
	enc, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Prefix: aws.String("dir0/"), MaxKeys: aws.Int32(1), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := url.QueryUnescape(aws.ToString(enc.Contents[0].Key)); k != want[0] {
		t.Errorf("url-encoded key %q decodes to %q, want %q", aws.ToString(enc.Contents[0].Key), k, want[0])
	}
}

func TestListObjectVersionsPaging(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	e.Versioned(t, "ver")
	total := 0
	for i := range 5 {
		for range i + 1 {
			put(t, e, &s3.PutObjectInput{Bucket: aws.String("ver"), Key: aws.String(fmt.Sprintf("k%d", i))}, "x")
			total++
		}
	}
	if _, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("ver"), Key: aws.String("k2")}); err != nil {
		t.Fatal(err)
	}
	total++
	seen := map[string]bool{}
	in := &s3.ListObjectVersionsInput{Bucket: aws.String("ver"), MaxKeys: aws.Int32(4)}
	latest := 0
	for {
		page, err := e.s3.ListObjectVersions(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			seen[aws.ToString(v.Key)+"@"+aws.ToString(v.VersionId)] = true
			if aws.ToBool(v.IsLatest) {
				latest++
			}
		}
		for _, m := range page.DeleteMarkers {
			seen[aws.ToString(m.Key)+"@"+aws.ToString(m.VersionId)] = true
			if aws.ToBool(m.IsLatest) {
				latest++
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
	if len(seen) != total || latest != 5 {
		t.Errorf("saw %d distinct versions (%d latest), want %d (5 latest)", len(seen), latest, total)
	}
}

func TestCopyObject(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "src", false)
	mustBucket(t, e, "dst", false)
	keyARN := mustKey(t, e)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("a b.txt"), Metadata: map[string]string{"m": "1"}}, "copy me")
	_, err := e.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("a b.txt"), CopySource: aws.String("src/a%20b.txt")})
	if apiCode(err) != "InvalidRequest" {
		t.Errorf("copy onto itself without changes: %v, want InvalidRequest", err)
	}
	out, err := e.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("c"), CopySource: aws.String("src/a%20b.txt"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(keyARN)})
	if err != nil {
		t.Fatal(err)
	}
	if out.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Errorf("copy encryption %s", out.ServerSideEncryption)
	}
	got, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(got.Body); string(b) != "copy me" || got.Metadata["m"] != "1" {
		t.Errorf("copied object %q metadata %v", b, got.Metadata)
	}
	rng, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String("c"), Range: aws.String("bytes=2-5")})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rng.Body); string(b) != "py m" {
		t.Errorf("range read %q", b)
	}
}

func TestBucketOperations(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	for _, name := range []string{"b-two", "b-one"} {
		mustBucket(t, e, name, false)
	}
	_, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("Bad_Name")})
	if apiCode(err) != "InvalidBucketName" {
		t.Errorf("invalid name: %v", err)
	}
	list, err := e.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Buckets) != 2 || aws.ToString(list.Buckets[0].Name) != "b-one" {
		t.Errorf("ListBuckets %+v", list.Buckets)
	}
	if _, err := e.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("b-one")}); err != nil {
		t.Error(err)
	}
	if _, err := e.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("nope")}); httpStatus(err) != 404 {
		t.Errorf("HeadBucket of a missing bucket: %v", err)
	}
	_, err = e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b-one"), Key: aws.String("k"), ExpectedBucketOwner: aws.String("999999999999")})
	if httpStatus(err) != 403 {
		t.Errorf("expected owner mismatch on HEAD: %v, want 403", err)
	}
}

func TestNotificationDelivery(t *testing.T) {
	e := start(t, emulator.Options{EventBridgeRules: []emulator.EventBridgeRule{{Bucket: "ebb", Queue: "eb-queue"}}})
	ctx := context.Background()
	mustBucket(t, e, "classic", false)
	e.Versioned(t, "ebb")
	classicQ := mustQueue(t, e, "classic-queue", nil)
	ebQ := mustQueue(t, e, "eb-queue", nil)

	_, err := e.s3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("classic"),
		NotificationConfiguration: &types.NotificationConfiguration{QueueConfigurations: []types.QueueConfiguration{{
			QueueArn: aws.String("arn:aws:sqs:us-east-1:111122223333:missing"), Events: []types.Event{"s3:ObjectCreated:*"}}}}})
	if apiCode(err) != "InvalidArgument" {
		t.Errorf("notification to a missing queue: %v, want InvalidArgument", err)
	}
	if _, err := e.s3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("classic"),
		NotificationConfiguration: &types.NotificationConfiguration{QueueConfigurations: []types.QueueConfiguration{{
			Id: aws.String("uploads"), QueueArn: aws.String(classicQ.arn), Events: []types.Event{"s3:ObjectCreated:*"},
			Filter: &types.NotificationConfigurationFilter{Key: &types.S3KeyFilter{FilterRules: []types.FilterRule{
				{Name: types.FilterRuleNamePrefix, Value: aws.String("in/")}}}},
		}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("ebb"),
		NotificationConfiguration: &types.NotificationConfiguration{EventBridgeConfiguration: &types.EventBridgeConfiguration{}}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.s3.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String("classic")})
	if err != nil || len(got.QueueConfigurations) != 1 || aws.ToString(got.QueueConfigurations[0].Id) != "uploads" {
		t.Errorf("GetBucketNotificationConfiguration %+v %v", got, err)
	}

	const key = "in/a b+c=ü.txt"
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("classic"), Key: aws.String(key)}, "x")
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("classic"), Key: aws.String("out/ignored")}, "x")
	ebPut := put(t, e, &s3.PutObjectInput{Bucket: aws.String("ebb"), Key: aws.String(key)}, "hello")

	bodies := receiveAll(t, e, classicQ.url, 2)
	if !strings.Contains(bodies[0], `"Event":"s3:TestEvent"`) {
		t.Errorf("first classic message is not the test event: %s", bodies[0])
	}
	var rec events.S3Event
	if err := jsonUnmarshal(bodies[1], &rec); err != nil || len(rec.Records) != 1 {
		t.Fatalf("classic record %s: %v", bodies[1], err)
	}
	r := rec.Records[0]
	if r.EventName != "ObjectCreated:Put" || r.S3.Bucket.Name != "classic" || r.S3.Object.Key != "in/a+b%2Bc%3D%C3%BC.txt" ||
		r.S3.Object.URLDecodedKey != key || r.S3.ConfigurationID != "uploads" || r.S3.Object.Size != 1 {
		t.Errorf("classic record %+v", r)
	}
	if k, _ := url.QueryUnescape(r.S3.Object.Key); k != key {
		t.Errorf("form-decoded key %q, want %q", k, key)
	}

	ebBodies := receiveAll(t, e, ebQ.url, 1)
	var env events.CloudWatchEvent
	if err := jsonUnmarshal(ebBodies[0], &env); err != nil {
		t.Fatal(err)
	}
	var detail struct {
		Bucket struct{ Name string } `json:"bucket"`
		Object struct {
			Key       string `json:"key"`
			Size      int64  `json:"size"`
			VersionID string `json:"version-id"`
		} `json:"object"`
		Reason string `json:"reason"`
	}
	if err := jsonUnmarshal(string(env.Detail), &detail); err != nil {
		t.Fatal(err)
	}
	if env.DetailType != "Object Created" || env.Source != "aws.s3" || detail.Bucket.Name != "ebb" || detail.Reason != "PutObject" ||
		detail.Object.VersionID != aws.ToString(ebPut.VersionId) || detail.Object.Size != 5 {
		t.Errorf("EventBridge envelope %+v detail %+v", env, detail)
	}
	if k, _ := url.QueryUnescape(detail.Object.Key); k != key {
		t.Errorf("EventBridge key %q decodes to %q", detail.Object.Key, k)
	}
	// Nothing more: the filtered-out upload and the classic bucket's events
	// did not reach the EventBridge queue.
	if extra := receiveAll(t, e, classicQ.url, 0); len(extra) != 0 {
		t.Errorf("unexpected extra classic messages: %v", extra)
	}
}

type queueRef struct{ url, arn string }

func mustQueue(t *testing.T, e *env, name string, attrs map[string]string) queueRef {
	t.Helper()
	url, arn := e.Queue(t, name, attrs)
	return queueRef{url, arn}
}

// receiveAll reads until want messages arrived (deleting them), or for a
// short while when want is 0, and returns their bodies in arrival order.
func receiveAll(t *testing.T, e *env, queueURL string, want int) []string {
	t.Helper()
	var bodies []string
	deadline := time.Now().Add(3 * time.Second)
	if want == 0 {
		deadline = time.Now().Add(200 * time.Millisecond)
	}
	for time.Now().Before(deadline) && (want == 0 || len(bodies) < want) {
		out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			if _, err := e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
		if len(out.Messages) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(bodies) < want {
		t.Fatalf("received %d messages, want %d", len(bodies), want)
	}
	return bodies
}
