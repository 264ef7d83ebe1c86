package metatable_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/metatable"
)

// enableTable makes a bucket's S3 Metadata configuration with a live
// inventory table (docs/AmazonS3/latest/API/API_CreateBucketMetadataConfiguration.md:
// the journal table configuration is required).
func enableTable(t *testing.T, env *emutest.Env, bucket string) {
	t.Helper()
	_, err := env.S3.CreateBucketMetadataConfiguration(context.Background(), &s3.CreateBucketMetadataConfigurationInput{
		Bucket: aws.String(bucket),
		MetadataConfiguration: &types.MetadataConfiguration{
			JournalTableConfiguration:   &types.JournalTableConfiguration{RecordExpiration: &types.RecordExpiration{Expiration: types.ExpirationStateEnabled, Days: aws.Int32(7)}},
			InventoryTableConfiguration: &types.InventoryTableConfiguration{ConfigurationState: types.InventoryConfigurationStateEnabled},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, env *emutest.Env, bucket string) ([]metatable.Row, metatable.Snapshot) {
	t.Helper()
	ctx := context.Background()
	loc, err := metatable.Find(ctx, env.S3, bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	md, _, err := metatable.NewCatalog(env.Cfg).LoadTable(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	snap, ok := md.Current()
	if !ok {
		t.Fatal("no current snapshot")
	}
	r := &metatable.Reader{Files: env.S3}
	var rows []metatable.Row
	if err := r.Scan(ctx, snap, func(row metatable.Row) error { rows = append(rows, row); return nil }); err != nil {
		t.Fatal(err)
	}
	return rows, snap
}

// The live inventory table has a row per version, delete markers
// included, with encryption_status, is_bucket_key_enabled and kms_key_arn
// (docs/AmazonS3/latest/userguide/metadata-tables-inventory-schema.md); it lives in the AWS
// managed table bucket aws-s3, namespace b_<bucket>, table inventory
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-system-tables-schema.html); and is read through the Iceberg
// REST endpoint signed for s3tables (docs/AmazonS3/latest/userguide/s3-tables-integrating-open-source.md).
func TestLiveInventoryTableThroughIcebergREST(t *testing.T) {
	env := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	key := env.Key(t)
	env.Versioned(t, "data")
	env.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("a")}, "one")
	env.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("a"), ServerSideEncryption: types.ServerSideEncryptionAwsKms,
		SSEKMSKeyId: aws.String(key), BucketKeyEnabled: aws.Bool(true)}, "two")
	if _, err := env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("b")}); err != nil {
		t.Fatal(err)
	}

	if _, err := metatable.Find(ctx, env.S3, "data", ""); !errors.Is(err, metatable.ErrNoTable) {
		t.Fatalf("before configuration: %v, want ErrNoTable", err)
	}
	enableTable(t, env, "data")
	loc, err := metatable.Find(ctx, env.S3, "data", "")
	if err != nil {
		t.Fatal(err)
	}
	if loc.Namespace != "b_data" || loc.Table != "inventory" || loc.TableBucketARN != "arn:aws:s3tables:us-east-1:111122223333:bucket/aws-s3" {
		t.Fatalf("location %+v", loc)
	}
	rows, snap := readAll(t, env, "data")
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3 (two versions of a, a delete marker of b): %+v", len(rows), rows)
	}
	byKey := map[string][]metatable.Row{}
	for _, r := range rows {
		byKey[r.Key] = append(byKey[r.Key], r)
	}
	a := byKey["a"]
	if len(a) != 2 || a[0].SequenceNumber >= a[1].SequenceNumber {
		t.Fatalf("versions of a: %+v (sequence numbers must grow with age)", a)
	}
	if aws.ToString(a[0].EncryptionStatus) != "SSE-S3" || a[0].KMSKeyARN != nil {
		t.Errorf("first version: %s %v, want SSE-S3 and no key", aws.ToString(a[0].EncryptionStatus), a[0].KMSKeyARN)
	}
	if aws.ToString(a[1].EncryptionStatus) != "SSE-KMS" || aws.ToString(a[1].KMSKeyARN) != key || !aws.ToBool(a[1].BucketKeyEnabled) {
		t.Errorf("second version: %+v, want SSE-KMS under %s with a bucket key", a[1], key)
	}
	if b := byKey["b"]; len(b) != 1 || !aws.ToBool(b[0].IsDeleteMarker) || b[0].EncryptionStatus != nil {
		t.Errorf("b: %+v, want one delete marker without encryption", b)
	}
	if time.Since(snap.Time()) > time.Minute {
		t.Errorf("snapshot time %v", snap.Time())
	}
	for _, c := range env.Emu.Counts() {
		if c.Service == "s3" && (c.Operation == "GetObject" || c.Operation == "HeadObject") {
			t.Errorf("reading the table made %d %s requests to S3", c.N, c.Operation)
		}
	}
}

// Changes show in the table only after the lag
// (docs/AmazonS3/latest/userguide/metadata-tables-inventory-schema.md: "typically reflected ... within one
// hour"); what it already showed stays.
func TestTableLagsChanges(t *testing.T) {
	env := emutest.Start(t, emulator.Options{})
	env.Versioned(t, "data")
	env.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("old")}, "x")
	enableTable(t, env, "data")
	env.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("seen")}, "x")
	if rows, _ := readAll(t, env, "data"); len(rows) != 2 {
		t.Fatalf("with no lag: %d rows, want 2", len(rows))
	}
	env.Emu.SetMetadataLag(time.Hour)
	env.Put(t, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("unseen")}, "x")
	rows, _ := readAll(t, env, "data")
	if len(rows) != 2 {
		t.Fatalf("with an hour's lag: %d rows, want the 2 already shown", len(rows))
	}
	for _, r := range rows {
		if r.Key == "unseen" {
			t.Fatal("a change inside the lag is shown")
		}
	}
}
