package planner_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// TestPlanKnownInventory checks every number of a plan against an
// inventory written with a known answer.
func TestPlanKnownInventory(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	e.Bucket(t, "inv", false)
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var rows []inventory.Row
	add := func(n int, r inventory.Row) {
		for i := range n {
			r.Bucket, r.Key, r.Size = "src", fmt.Sprintf("%s/%04d", r.EncryptionStatus+r.BucketKeyStatus+r.LockMode+r.LegalHold, i), 100
			rows = append(rows, r)
		}
	}
	add(50, inventory.Row{IsLatest: true, EncryptionStatus: "SSE-S3", BucketKeyStatus: "DISABLED", LegalHold: "OFF"})     // update
	add(20, inventory.Row{IsLatest: true, EncryptionStatus: "SSE-KMS", BucketKeyStatus: "DISABLED", LegalHold: "OFF"})    // update: bucket key differs
	add(15, inventory.Row{IsLatest: true, EncryptionStatus: "SSE-KMS", BucketKeyStatus: "ENABLED", LegalHold: "OFF"})     // needs a HEAD
	add(7, inventory.Row{IsLatest: true, EncryptionStatus: "NOT-SSE", BucketKeyStatus: "DISABLED", LegalHold: "OFF"})     // skipped
	add(3, inventory.Row{IsLatest: true, EncryptionStatus: "SSE-C", BucketKeyStatus: "DISABLED", LegalHold: "OFF"})       // skipped
	add(2, inventory.Row{IsLatest: true, EncryptionStatus: "DSSE-KMS", BucketKeyStatus: "DISABLED", LegalHold: "OFF"})    // skipped
	add(4, inventory.Row{IsLatest: true, EncryptionStatus: "SSE-S3", BucketKeyStatus: "DISABLED", LegalHold: "ON"})       // locked
	add(6, inventory.Row{IsLatest: false, EncryptionStatus: "SSE-S3", BucketKeyStatus: "DISABLED", LegalHold: "OFF"})     // noncurrent
	add(1, inventory.Row{IsLatest: true, IsDeleteMarker: true})                                                           // delete marker
	add(5, inventory.Row{IsLatest: true, EncryptionStatus: "SSE-S3", BucketKeyStatus: "DISABLED", LockMode: "GOVERNANCE", // expired lock
		RetainUntil: now.Add(-time.Hour), LegalHold: "OFF"})
	rep, err := inventory.ReportWriter{Format: inventory.FormatParquet, SourceBucket: "src", DestinationBucket: "inv", ConfigID: "c", RowsPerFile: 40, Created: now}.Write(rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range rep.FileKeysUsed {
		e.Put(t, &s3.PutObjectInput{Bucket: aws.String("inv"), Key: aws.String(k)}, string(rep.DataFiles[k]))
	}
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("inv"), Key: aws.String(rep.ManifestKey)}, string(rep.Manifest))
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("inv"), Key: aws.String(rep.ChecksumKey)}, string(rep.Checksum))
	pol, err := policy.Parse([]byte(`{"buckets":{"src":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k","bucketKeyEnabled":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planner.Plan(context.Background(), e.S3, "s3://inv/"+rep.ManifestKey, pol, now, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if plan.Rows != 113 || plan.Files != 3 || plan.WouldUpdate != 75 || plan.NeedsCheck != 15 {
		t.Errorf("rows %d files %d wouldUpdate %d needsCheck %d; want 113, 3, 75, 15", plan.Rows, plan.Files, plan.WouldUpdate, plan.NeedsCheck)
	}
	wantSkipped := map[string]int64{"not-encrypted": 7, "sse-c": 3, "dsse-kms": 2, "object-lock": 4, "noncurrent-version": 6, "delete-marker": 1}
	for k, v := range wantSkipped {
		if plan.Skipped[k] != v {
			t.Errorf("skipped %s = %d, want %d (all: %v)", k, plan.Skipped[k], v, plan.Skipped)
		}
	}
	if got := plan.ByState["SSE-S3 / bucket key DISABLED / legal hold"]; got.Objects != 4 || got.Bytes != 400 {
		t.Errorf("legal hold state %+v", got)
	}
	if got := plan.ByState["SSE-KMS / bucket key ENABLED / unlocked"]; got.Objects != 15 {
		t.Errorf("SSE-KMS bucket key state %+v", got)
	}
	// KMS: the 20 SSE-KMS rows without a bucket key need S3 to decrypt
	// their data keys; the target has a bucket key, so encrypting is free.
	if plan.Messages != 1 || plan.Usage.UOE != 90 || plan.Usage.S3Get != 15+3+2 || plan.Usage.KMS != 20 {
		t.Errorf("messages %d usage %+v", plan.Messages, plan.Usage)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	if !near(plan.Cost.BatchOps, cost.BatchOpsPerJob+113*cost.BatchOpsPerObject) || !near(plan.Cost.UOE, 90*cost.S3PutPerRequest) {
		t.Errorf("cost %+v", plan.Cost)
	}
	if n := e.Emu.CountOf("s3", "UpdateObjectEncryption", ""); n != 0 {
		t.Errorf("plan made %d updates; it must change nothing", n)
	}

	// Opted in to copy unencrypted objects: the 7 NOT-SSE rows are copies
	// (a HEAD and a PUT-class COPY each), and in this all-versions report
	// their old versions stay.
	copyPol, err := policy.Parse([]byte(`{"buckets":{"src":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k","bucketKeyEnabled":true,
		"unsupportedSources":{"notEncrypted":"copy"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	withCopies, err := planner.Plan(context.Background(), e.S3, "s3://inv/"+rep.ManifestKey, copyPol, now, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if withCopies.WouldCopy != 7 || withCopies.CopyBytes != 700 || withCopies.KeptVersionBytes != 700 ||
		math.Abs(withCopies.KeptVersionsPerMonth-700.0/(1<<30)*cost.S3StandardPerGBMonth) > 1e-15 || withCopies.Skipped["not-encrypted"] != 0 ||
		withCopies.WouldUpdate != 75 || withCopies.Usage.S3Put != 7 || withCopies.Usage.S3Get != 15+7+3+2 {
		t.Errorf("with copies: wouldCopy %d (%d bytes, %d kept), skipped %v, wouldUpdate %d, usage %+v", withCopies.WouldCopy, withCopies.CopyBytes,
			withCopies.KeptVersionBytes, withCopies.Skipped, withCopies.WouldUpdate, withCopies.Usage)
	}
}
