package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/verify"
)

// retireWorld is newCLIEnv's photos with one object under an old key, a
// live inventory table, an HMAC key and a report location.
type retireWorld struct {
	*cliEnv
	old, mac, reportKey string
	evidenceArgs        []string
}

func newRetireWorld(t *testing.T) *retireWorld {
	c := newCLIEnv(t, 3)
	ctx := context.Background()
	w := &retireWorld{cliEnv: c, old: c.Key(t), reportKey: c.Key(t)}
	c.Put(t, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("img/old.jpg"), ServerSideEncryption: types.ServerSideEncryptionAwsKms,
		SSEKMSKeyId: aws.String(w.old)}, "jpeg")
	c.Bucket(t, "reports", false)
	mac, err := c.KMS.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	w.mac = aws.ToString(mac.KeyMetadata.Arn)
	if _, err := c.S3.CreateBucketMetadataConfiguration(ctx, &s3.CreateBucketMetadataConfigurationInput{Bucket: aws.String("photos"),
		MetadataConfiguration: &types.MetadataConfiguration{
			JournalTableConfiguration:   &types.JournalTableConfiguration{RecordExpiration: &types.RecordExpiration{Expiration: types.ExpirationStateDisabled}},
			InventoryTableConfiguration: &types.InventoryTableConfiguration{ConfigurationState: types.InventoryConfigurationStateEnabled}}}); err != nil {
		t.Fatal(err)
	}
	w.evidenceArgs = []string{"--policy", c.policyFile, "--mac-key", w.mac, "--report-bucket", "reports", "--report-kms-key", w.reportKey}
	return w
}

func (w *retireWorld) keyState(t *testing.T, key string) kmstypes.KeyState {
	t.Helper()
	out, err := w.KMS.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata.KeyState
}

func TestVerifyWritesEvidenceThatChecks(t *testing.T) {
	w := newRetireWorld(t)
	file := filepath.Join(t.TempDir(), "evidence")
	w.Emu.ResetCounts()
	code, out, errOut := w.cli(t, append([]string{"verify", "--out", file}, w.evidenceArgs...)...)
	if code != exitOK {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"from metadata-table", "4 versions: 0 compliant, 4 non-compliant", "not seen: Object Lock state", "evidence: s3://reports/", "0 HEAD (object)"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify's output lacks %q:\n%s", want, out)
		}
	}
	for _, c := range w.Emu.Counts() {
		if c.Bucket == "photos" && (c.Operation == "HeadObject" || c.Operation == "GetObject") {
			t.Errorf("%d %s requests to photos", c.N, c.Operation)
		}
	}
	if code, out, errOut := w.cli(t, "verify", "--check", file, "--mac-key", w.mac); code != exitOK || !strings.Contains(out, "evidence checks") {
		t.Fatalf("--check of the file just written: exit %d\n%s%s", code, out, errOut)
	}
	stored := out[strings.Index(out, "evidence: ")+len("evidence: "):]
	stored = strings.Fields(stored)[0]
	if code, out, errOut := w.cli(t, "verify", "--check", stored); code != exitOK {
		t.Fatalf("--check %s: exit %d\n%s%s", stored, code, out, errOut)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := w.cli(t, "verify", "--check", file); code != exitFailure || !strings.Contains(errOut, "evidence rejected") {
		t.Fatalf("--check of a file with one byte changed: exit %d, %s", code, errOut)
	}
}

// retire-key refuses to disable a key with a version under it, disables it
// once none is, and proposes (never runs) its deletion after the quiet
// period (docs/kms/latest/developerguide/deleting-keys.md: disable, watch, then delete).
func TestRetireKeyWalksTheSteps(t *testing.T) {
	w := newRetireWorld(t)
	code, out, errOut := w.cli(t, append([]string{"retire-key", w.old, "--disable"}, w.evidenceArgs...)...)
	if code != exitFailure || !strings.Contains(errOut, "refusing to disable") || !strings.Contains(out, "img/old.jpg") {
		t.Fatalf("--disable with a version under the key: exit %d\n%s%s", code, out, errOut)
	}
	if st := w.keyState(t, w.old); st != kmstypes.KeyStateEnabled {
		t.Fatalf("the key is %s after a refused --disable", st)
	}
	// The object moves to the target key.
	w.Put(t, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("img/old.jpg"), ServerSideEncryption: types.ServerSideEncryptionAwsKms,
		SSEKMSKeyId: aws.String(w.target)}, "jpeg")
	if code, out, errOut := w.cli(t, append([]string{"retire-key", w.old, "--disable"}, w.evidenceArgs...)...); code != exitOK || !strings.Contains(out, "(b) disabled") {
		t.Fatalf("--disable with nothing under the key: exit %d\n%s%s", code, out, errOut)
	}
	if st := w.keyState(t, w.old); st != kmstypes.KeyStateDisabled {
		t.Fatalf("the key is %s after --disable", st)
	}
	code, out, errOut = w.cli(t, append([]string{"retire-key", w.old, "--status"}, w.evidenceArgs...)...)
	if code != exitOK || !strings.Contains(out, "(d) not yet: quiet for") || strings.Contains(out, "schedule-key-deletion") {
		t.Fatalf("--status within the quiet period: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = w.cli(t, append([]string{"retire-key", w.old, "--status", "--quiet-days", "0"}, w.evidenceArgs...)...)
	if code != exitOK || !strings.Contains(out, "aws kms schedule-key-deletion --key-id "+w.old+" --pending-window-in-days 30") {
		t.Fatalf("--status after the quiet period: exit %d\n%s%s", code, out, errOut)
	}
	if st := w.keyState(t, w.old); st != kmstypes.KeyStateDisabled {
		t.Fatalf("the key is %s: retire-key must never schedule its deletion", st)
	}
}

// A key pending deletion with a version still under it is found, with the
// commands to cancel the deletion and re-key.
func TestPendingDeletionWithObjectsIsFound(t *testing.T) {
	w := newRetireWorld(t)
	if _, err := w.KMS.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(w.old), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := w.cli(t, append([]string{"verify"}, w.evidenceArgs...)...)
	if code != exitOK || !strings.Contains(errOut, "pending deletion") || !strings.Contains(errOut, "aws kms cancel-key-deletion --key-id "+w.old) {
		t.Fatalf("verify with a version under a key pending deletion: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = w.cli(t, append([]string{"retire-key", w.old, "--status"}, w.evidenceArgs...)...)
	if !strings.Contains(out, "WARNING") || !strings.Contains(out, "aws kms cancel-key-deletion --key-id "+w.old) || !strings.Contains(out, "s3rekey backfill --bucket photos") {
		t.Fatalf("--status of a key pending deletion with a version under it: exit %d\n%s%s", code, out, errOut)
	}
}

// plan prices verify from each source: the table makes no object request,
// an inventory a HEAD of each SSE-KMS version, a listing a HEAD of each.
func TestPlanPricesVerifyBySource(t *testing.T) {
	w := newRetireWorld(t)
	key, err := w.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "photos", DestinationBucket: "inventory", Format: "CSV"})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := w.cli(t, "plan", "--manifest", "s3://inventory/"+key, "--policy", w.policyFile, "--json")
	if code != exitOK {
		t.Fatalf("plan: exit %d %s", code, errOut)
	}
	var plan struct {
		Verify []verify.SourceCost `json:"verify"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil || len(plan.Verify) != 3 {
		t.Fatalf("plan's verify costs %+v %v", plan.Verify, err)
	}
	heads := map[string]int64{}
	for _, c := range plan.Verify {
		heads[c.Source] = c.ObjectRequests
	}
	if heads[verify.SourceTable] != 0 || heads[verify.SourceInventory] != 1 || heads[verify.SourceListing] != 4 {
		t.Errorf("object requests by source %v, want 0, 1 (the SSE-KMS version) and 4", heads)
	}
	if code, out, _ := w.cli(t, "plan", "--manifest", "s3://inventory/"+key, "--policy", w.policyFile); code != exitOK || !strings.Contains(out, "verify of these 4 versions") {
		t.Errorf("plan's table lacks verify's costs:\n%s", out)
	}
}

// With no --bucket, verify covers every bucket the policy governs: the
// buckets a rule selects too, not only the listed ones; a bucket no rule
// selects is left out.
func TestVerifyCoversTheBucketsARuleSelects(t *testing.T) {
	w := newRetireWorld(t)
	w.Bucket(t, "scratch", false)
	rules := filepath.Join(t.TempDir(), "rules.json")
	doc := fmt.Sprintf(`{"rules":[{"name":"media","select":{"names":["pho*"]},"settings":{"kmsKeyArn":%q,"bucketKeyEnabled":true}}]}`, w.target)
	if err := os.WriteFile(rules, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := w.cli(t, "verify", "--policy", rules, "--no-evidence", "--json")
	if code != exitOK {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	var res verify.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var names []string
	for _, b := range res.Buckets {
		names = append(names, b.Bucket)
	}
	if len(names) != 1 || names[0] != "photos" || res.Buckets[0].Versions != 4 {
		t.Fatalf("verified %v (%+v), want photos and its 4 versions only", names, res.Buckets)
	}
}
