package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
)

// GetBucketTagging answers NoSuchTagSet for a bucket without tags
// (API_GetBucketTagging.md); PutBucketTagging replaces the set; at most 50
// tags (userguide tagging-managing).
func TestBucketTagging(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "tagged", false)
	if _, err := e.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String("tagged")}); apiCode(err) != "NoSuchTagSet" {
		t.Errorf("untagged bucket: %v, want NoSuchTagSet", err)
	}
	if _, err := e.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("tagged"), Tagging: &types.Tagging{TagSet: []types.Tag{
		{Key: aws.String("data-classification"), Value: aws.String("confidential")}, {Key: aws.String("team"), Value: aws.String("")}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String("tagged")})
	if err != nil || len(got.TagSet) != 2 || aws.ToString(got.TagSet[0].Key) != "data-classification" || aws.ToString(got.TagSet[1].Value) != "" {
		t.Fatalf("GetBucketTagging %+v %v", got, err)
	}
	var many []types.Tag
	for i := range 51 {
		many = append(many, types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")})
	}
	if _, err := e.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("tagged"), Tagging: &types.Tagging{TagSet: many}}); err == nil {
		t.Error("51 bucket tags accepted")
	}
	if _, err := e.s3.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: aws.String("tagged")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String("tagged")}); apiCode(err) != "NoSuchTagSet" {
		t.Errorf("after DeleteBucketTagging: %v", err)
	}
}

// ListBuckets pages with MaxBuckets and ContinuationToken, and filters by
// Prefix and BucketRegion (API_ListBuckets.md).
func TestListBucketsPages(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	for i := range 7 {
		mustBucket(t, e, fmt.Sprintf("page-%02d", i), false)
	}
	mustBucket(t, e, "other", false)
	var names []string
	in := &s3.ListBucketsInput{MaxBuckets: aws.Int32(3), Prefix: aws.String("page-")}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("the token never ends")
		}
		out, err := e.s3.ListBuckets(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Buckets) > 3 {
			t.Fatalf("%d buckets in a page of 3", len(out.Buckets))
		}
		for _, b := range out.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
		if out.ContinuationToken == nil {
			break
		}
		in.ContinuationToken = out.ContinuationToken
	}
	if fmt.Sprint(names) != "[page-00 page-01 page-02 page-03 page-04 page-05 page-06]" {
		t.Errorf("paged %v", names)
	}
	if out, err := e.s3.ListBuckets(ctx, &s3.ListBucketsInput{BucketRegion: aws.String("eu-west-1")}); err != nil || len(out.Buckets) != 0 {
		t.Errorf("another region: %v %v", out, err)
	}
	if _, err := e.s3.ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(10001)}); err == nil {
		t.Error("MaxBuckets over 10,000 accepted")
	}
}

// Bucket API calls reach EventBridge as CloudTrail management events
// ("AWS API Call via CloudTrail", detail.eventName, requestParameters
// .bucketName: eb-service-event-cloudtrail.md), and a rule for every
// bucket sees every enrolled bucket's uploads.
func TestManagementEventsAndAccountWideRule(t *testing.T) {
	e := start(t, emulator.Options{EventBridgeRules: []emulator.EventBridgeRule{{Management: true, Queue: "trail"}, {Bucket: "*", Queue: "uploads"}}})
	ctx := context.Background()
	trail := mustQueue(t, e, "trail", nil)
	uploads := mustQueue(t, e, "uploads", nil)
	mustBucket(t, e, "fresh", false)
	if _, err := e.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("fresh"), Tagging: &types.Tagging{TagSet: []types.Tag{
		{Key: aws.String("k"), Value: aws.String("v")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: aws.String("fresh")}); err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, body := range receiveAll(t, e, trail.url, 3) {
		var ev struct {
			DetailType string `json:"detail-type"`
			Source     string `json:"source"`
			Detail     struct {
				EventSource, EventName string
				RequestParameters      struct{ BucketName string }
			} `json:"detail"`
		}
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.DetailType != "AWS API Call via CloudTrail" || ev.Source != "aws.s3" || ev.Detail.EventSource != "s3.amazonaws.com" ||
			ev.Detail.RequestParameters.BucketName != "fresh" {
			t.Errorf("event %s", body)
		}
		events = append(events, ev.Detail.EventName)
	}
	if fmt.Sprint(events) != "[CreateBucket PutBucketTagging DeleteBucketTagging]" {
		t.Errorf("events %v", events)
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("fresh"), Key: aws.String("before")}, "x")
	if got := receiveAll(t, e, uploads.url, 0); len(got) != 0 {
		t.Errorf("a bucket without EventBridge notifications sent %d events", len(got))
	}
	if _, err := e.s3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("fresh"),
		NotificationConfiguration: &types.NotificationConfiguration{EventBridgeConfiguration: &types.EventBridgeConfiguration{}}}); err != nil {
		t.Fatal(err)
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("fresh"), Key: aws.String("after")}, "x")
	if got := receiveAll(t, e, uploads.url, 1); len(got) != 1 {
		t.Errorf("%d upload events from the rule for every bucket, want 1", len(got))
	}
}

// Inventory configurations round-trip by id (PutBucketInventoryConfiguration,
// GetBucketInventoryConfiguration: NoSuchConfiguration when missing), and
// default encryption keeps what is put, blocked encryption types included.
func TestInventoryConfigurationAndBlockedTypes(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "inv-src", false)
	if _, err := e.s3.GetBucketInventoryConfiguration(ctx, &s3.GetBucketInventoryConfigurationInput{Bucket: aws.String("inv-src"), Id: aws.String("x")}); apiCode(err) != "NoSuchConfiguration" {
		t.Errorf("missing configuration: %v", err)
	}
	cfg := &types.InventoryConfiguration{Id: aws.String("x"), IsEnabled: aws.Bool(true), IncludedObjectVersions: types.InventoryIncludedObjectVersionsAll,
		Schedule:       &types.InventorySchedule{Frequency: types.InventoryFrequencyDaily},
		Destination:    &types.InventoryDestination{S3BucketDestination: &types.InventoryS3BucketDestination{Bucket: aws.String("arn:aws:s3:::dest"), Format: types.InventoryFormatCsv}},
		OptionalFields: []types.InventoryOptionalField{"EncryptionStatus", "BucketKeyStatus"}}
	if _, err := e.s3.PutBucketInventoryConfiguration(ctx, &s3.PutBucketInventoryConfigurationInput{Bucket: aws.String("inv-src"), Id: aws.String("x"), InventoryConfiguration: cfg}); err != nil {
		t.Fatal(err)
	}
	got, err := e.s3.GetBucketInventoryConfiguration(ctx, &s3.GetBucketInventoryConfigurationInput{Bucket: aws.String("inv-src"), Id: aws.String("x")})
	if err != nil || got.InventoryConfiguration.IncludedObjectVersions != types.InventoryIncludedObjectVersionsAll || len(got.InventoryConfiguration.OptionalFields) != 2 ||
		aws.ToString(got.InventoryConfiguration.Destination.S3BucketDestination.Bucket) != "arn:aws:s3:::dest" {
		t.Fatalf("GetBucketInventoryConfiguration %+v %v", got, err)
	}
	if _, err := e.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("inv-src"), ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
		Rules: []types.ServerSideEncryptionRule{{BlockedEncryptionTypes: &types.BlockedEncryptionTypes{EncryptionType: []types.EncryptionType{"SSE-C"}}}}}}); err != nil {
		t.Fatal(err)
	}
	enc, err := e.s3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("inv-src")})
	if err != nil {
		t.Fatal(err)
	}
	r := enc.ServerSideEncryptionConfiguration.Rules[0]
	if r.BlockedEncryptionTypes == nil || fmt.Sprint(r.BlockedEncryptionTypes.EncryptionType) != "[SSE-C]" || r.ApplyServerSideEncryptionByDefault.SSEAlgorithm != "AES256" {
		t.Errorf("blocked types %+v, default %+v", r.BlockedEncryptionTypes, r.ApplyServerSideEncryptionByDefault)
	}
}

// aws:ResourceAccount is the account that owns the bucket (IAM's global
// condition keys, reference_policies_condition-keys.md): a grant on every
// bucket, conditioned on the account, allows the account's buckets only.
func TestResourceAccountCondition(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "ours", false)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("ours"), Key: aws.String("k")}, "x")
	for account, want := range map[string]bool{e.Emu.Account(): true, "999999999999": false} {
		bind(t, e, "AKIARESOURCEACCOUNT1", fmt.Sprintf(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::*/*",
			"Condition":{"StringEquals":{"aws:ResourceAccount":%q}}}`, account))
		_, err := clientsAs(e, "AKIARESOURCEACCOUNT1").s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ours"), Key: aws.String("k")})
		if (err == nil) != want {
			t.Errorf("condition on account %s: %v, want allowed %v", account, err, want)
		}
	}
}
