package emulator_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/metatable"
)

func metadataConfig(inventory s3types.InventoryConfigurationState) *s3types.MetadataConfiguration {
	return &s3types.MetadataConfiguration{
		JournalTableConfiguration:   &s3types.JournalTableConfiguration{RecordExpiration: &s3types.RecordExpiration{Expiration: s3types.ExpirationStateEnabled, Days: aws.Int32(7)}},
		InventoryTableConfiguration: &s3types.InventoryTableConfiguration{ConfigurationState: inventory},
	}
}

// CreateBucketMetadataConfiguration and GetBucketMetadataConfiguration as
// the S3 API reference gives them (docs/AmazonS3/latest/API/API_CreateBucketMetadataConfiguration.md,
// docs/AmazonS3/latest/API/API_GetBucketMetadataConfiguration.md): the destination is the AWS managed
// table bucket aws-s3 (TableBucketType aws), namespace b_<bucket>
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-system-tables-schema.html), table "inventory"; one
// configuration a bucket.
func TestBucketMetadataConfiguration(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "data", false)
	if _, err := e.s3.GetBucketMetadataConfiguration(ctx, &s3.GetBucketMetadataConfigurationInput{Bucket: aws.String("data")}); httpStatus(err) != http.StatusNotFound {
		t.Fatalf("before any configuration: %v, want 404", err)
	}
	if _, err := e.s3.CreateBucketMetadataConfiguration(ctx, &s3.CreateBucketMetadataConfigurationInput{Bucket: aws.String("missing"),
		MetadataConfiguration: metadataConfig(s3types.InventoryConfigurationStateEnabled)}); apiCode(err) != "NoSuchBucket" {
		t.Fatalf("on a missing bucket: %v", err)
	}
	if _, err := e.s3.CreateBucketMetadataConfiguration(ctx, &s3.CreateBucketMetadataConfigurationInput{Bucket: aws.String("data"),
		MetadataConfiguration: metadataConfig(s3types.InventoryConfigurationStateEnabled)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.CreateBucketMetadataConfiguration(ctx, &s3.CreateBucketMetadataConfigurationInput{Bucket: aws.String("data"),
		MetadataConfiguration: metadataConfig(s3types.InventoryConfigurationStateEnabled)}); httpStatus(err) != http.StatusConflict {
		t.Fatalf("a second configuration: %v, want 409", err)
	}
	out, err := e.s3.GetBucketMetadataConfiguration(ctx, &s3.GetBucketMetadataConfigurationInput{Bucket: aws.String("data")})
	if err != nil {
		t.Fatal(err)
	}
	mc := out.GetBucketMetadataConfigurationResult.MetadataConfigurationResult
	d, inv := mc.DestinationResult, mc.InventoryTableConfigurationResult
	if aws.ToString(d.TableBucketArn) != "arn:aws:s3tables:us-east-1:111122223333:bucket/aws-s3" || d.TableBucketType != s3types.S3TablesBucketTypeAws || aws.ToString(d.TableNamespace) != "b_data" {
		t.Errorf("destination %+v", d)
	}
	if inv.ConfigurationState != s3types.InventoryConfigurationStateEnabled || aws.ToString(inv.TableName) != "inventory" || aws.ToString(inv.TableStatus) != "ACTIVE" {
		t.Errorf("inventory table %+v", inv)
	}
	if mc.JournalTableConfigurationResult == nil || mc.JournalTableConfigurationResult.RecordExpiration.Expiration != s3types.ExpirationStateEnabled {
		t.Errorf("journal table %+v", mc.JournalTableConfigurationResult)
	}
	if _, err := e.s3.DeleteBucketMetadataConfiguration(ctx, &s3.DeleteBucketMetadataConfigurationInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.GetBucketMetadataConfiguration(ctx, &s3.GetBucketMetadataConfigurationInput{Bucket: aws.String("data")}); httpStatus(err) != http.StatusNotFound {
		t.Fatalf("after delete: %v, want 404", err)
	}
}

// The Iceberg REST endpoint takes SigV4 requests signed for s3tables only
// (docs/AmazonS3/latest/userguide/s3-tables-integrating-open-source.md,
// "Authenticating and authorizing access to the endpoint").
func TestIcebergEndpointWantsS3TablesSigning(t *testing.T) {
	e := start(t, emulator.Options{})
	req, _ := http.NewRequest(http.MethodGet, e.emu.URL()+"/iceberg/v1/config", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+emulator.AccessKeyID+"/20261201/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a request signed for s3: %d, want 403", resp.StatusCode)
	}
}

// UpdateObjectEncryption is a change the table shows: kms_key_arn moves to
// the new key (docs/AmazonS3/latest/userguide/metadata-tables-inventory-schema.md), after the lag.
func TestTableShowsReencryption(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	oldKey, newKey := e.Key(t), e.Key(t)
	e.Versioned(t, "data")
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("k"), ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(oldKey)}, "x")
	if _, err := e.s3.CreateBucketMetadataConfiguration(ctx, &s3.CreateBucketMetadataConfigurationInput{Bucket: aws.String("data"),
		MetadataConfiguration: metadataConfig(s3types.InventoryConfigurationStateEnabled)}); err != nil {
		t.Fatal(err)
	}
	keyOf := func() string {
		loc, err := metatable.Find(ctx, e.s3, "data", "")
		if err != nil {
			t.Fatal(err)
		}
		md, _, err := metatable.NewCatalog(e.cfg).LoadTable(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		snap, _ := md.Current()
		var arn string
		if err := (&metatable.Reader{Files: e.s3}).Scan(ctx, snap, func(r metatable.Row) error { arn = aws.ToString(r.KMSKeyARN); return nil }); err != nil {
			t.Fatal(err)
		}
		return arn
	}
	e.emu.SetMetadataLag(time.Hour)
	if _, err := e.s3.UpdateObjectEncryption(ctx, uoeInput("data", "k", newKey)); err != nil {
		t.Fatal(err)
	}
	if got := keyOf(); got != oldKey {
		t.Fatalf("inside the lag the table shows %s, want the old key", got)
	}
	e.emu.SetMetadataLag(0)
	if got := keyOf(); got != newKey {
		t.Fatalf("after the lag the table shows %s, want the new key", got)
	}
}

// HMAC keys: CreateKey with KeySpec HMAC_256 and KeyUsage
// GENERATE_VERIFY_MAC; GenerateMac and VerifyMac (docs/kms/latest/APIReference/API_GenerateMac.md,
// API_VerifyMac.md: KMSInvalidMacException, InvalidKeyUsageException);
// GetKeyLastUsage records the last successful cryptographic use, S3's on
// the caller's behalf included (docs/kms/latest/APIReference/API_GetKeyLastUsage.md).
func TestMacKeysAndLastUsage(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	out, err := e.kms.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	mac := out.KeyMetadata.Arn
	if _, err := e.kms.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256}); err == nil {
		t.Fatal("an HMAC key without KeyUsage GENERATE_VERIFY_MAC was made")
	}
	lu, err := e.kms.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: mac})
	if err != nil || lu.KeyLastUsage == nil || lu.KeyLastUsage.Timestamp != nil || lu.TrackingStartDate == nil {
		t.Fatalf("a new key's last usage %+v %v: want an empty KeyLastUsage and a tracking start", lu, err)
	}
	g, err := e.kms.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: mac, MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256, Message: []byte("m")})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.kms.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: mac, MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256, Message: []byte("m"), Mac: g.Mac})
	if err != nil || !v.MacValid {
		t.Fatalf("VerifyMac of its own MAC: %v %v", v, err)
	}
	if _, err := e.kms.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: mac, MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256, Message: []byte("n"), Mac: g.Mac}); apiCode(err) != "KMSInvalidMacException" {
		t.Fatalf("VerifyMac of another message: %v, want KMSInvalidMacException", err)
	}
	if _, err := e.kms.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: mac, MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha512, Message: []byte("m")}); apiCode(err) != "InvalidKeyUsageException" {
		t.Fatalf("an algorithm the key spec does not have: %v", err)
	}
	sym := e.Key(t)
	e.Bucket(t, "uploads", false)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String("k"), ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(sym)}, "x")
	lu, err = e.kms.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String(sym)})
	if err != nil || lu.KeyLastUsage == nil || lu.KeyLastUsage.Timestamp == nil || lu.KeyLastUsage.Operation != "GenerateDataKey" {
		t.Fatalf("after S3 used the key for an upload: %+v %v", lu.KeyLastUsage, err)
	}
}
