package verify_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/metatable"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/verify"
)

type world struct {
	env                *emutest.Env
	old, target, other string
	mac                string
	pol                *policy.Policy
	versionOf          map[string][]string // key -> version ids, oldest first
}

func (w *world) put(t testing.TB, bucket, key, kmsKey string, bucketKey bool) string {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if kmsKey != "" {
		in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, aws.String(kmsKey), aws.Bool(bucketKey)
	}
	out := w.env.Put(t, in, "body of "+key)
	id := aws.ToString(out.VersionId)
	w.versionOf[bucket+"/"+key] = append(w.versionOf[bucket+"/"+key], id)
	return id
}

func newWorld(t testing.TB) *world {
	env := emutest.Start(t, emulator.Options{})
	w := &world{env: env, old: env.Key(t), target: env.Key(t), other: env.Key(t), versionOf: map[string][]string{}}
	out, err := env.KMS.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	w.mac = aws.ToString(out.KeyMetadata.Arn)
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{"gov":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"versions":"all"},
		"plain":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"versions":"all"}}}`, w.target, w.target)))
	if err != nil {
		t.Fatal(err)
	}
	w.pol = pol
	return w
}

// policyFor is a policy of one bucket under the world's target key.
func policyFor(w *world, bucket string) (*policy.Policy, error) {
	return policy.Parse([]byte(fmt.Sprintf(`{"buckets":{%q:{"kmsKeyArn":%q,"bucketKeyEnabled":true,"versions":"all"}}}`, bucket, w.target)))
}

func (w *world) clients() verify.Clients {
	return verify.Clients{Metadata: w.env.S3, Catalog: metatable.NewCatalog(w.env.Cfg), Files: w.env.S3, Reports: w.env.S3, List: w.env.S3, Head: w.env.S3}
}

func enableTable(t testing.TB, env *emutest.Env, bucket string) {
	t.Helper()
	_, err := env.S3.CreateBucketMetadataConfiguration(context.Background(), &s3.CreateBucketMetadataConfigurationInput{
		Bucket: aws.String(bucket),
		MetadataConfiguration: &types.MetadataConfiguration{
			JournalTableConfiguration:   &types.JournalTableConfiguration{RecordExpiration: &types.RecordExpiration{Expiration: types.ExpirationStateDisabled}},
			InventoryTableConfiguration: &types.InventoryTableConfiguration{ConfigurationState: types.InventoryConfigurationStateEnabled},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func ids(vs []verify.Version) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Key+"@"+v.VersionID)
	}
	sort.Strings(out)
	return out
}

func objectRequests(env *emutest.Env, bucket string) int64 {
	var n int64
	for _, c := range env.Emu.Counts() {
		if c.Service == "s3" && c.Bucket == bucket && (c.Operation == "HeadObject" || c.Operation == "GetObject" || c.Operation == "GetObjectAttributes") {
			n += c.N
		}
	}
	return n
}

// The done-when test of verification from the table: objects under several
// keys across versions, the table lagging some changes; verify reports
// exactly the non-compliant versions the table shows, names the changes
// it has not seen (by listing, a bucket request), and makes no object
// request (the emulator's counts). Table columns:
// docs/AmazonS3/latest/userguide/metadata-tables-inventory-schema.md.
func TestVerifyFromTheTable(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	env := w.env
	env.Versioned(t, "gov")
	aOld := w.put(t, "gov", "a", w.old, false)    // non-compliant: old key
	w.put(t, "gov", "a", w.target, true)          // compliant
	b := w.put(t, "gov", "b", "", false)          // non-compliant: SSE-S3
	c := w.put(t, "gov", "c", w.target, false)    // non-compliant: no bucket key
	dOther := w.put(t, "gov", "d", w.other, true) // non-compliant: another key
	if _, err := env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("gov"), Key: aws.String("d")}); err != nil {
		t.Fatal(err)
	}
	enableTable(t, env, "gov")
	e := w.put(t, "gov", "e", w.old, true) // after the backfill, with no lag: seen
	// A read of the table catches it up with e before the lag is set.
	if _, _, err := metatable.NewCatalog(env.Cfg).LoadTable(ctx, metatable.Location{TableBucketARN: "arn:aws:s3tables:us-east-1:111122223333:bucket/aws-s3", Namespace: "b_gov", Table: "inventory"}); err != nil {
		t.Fatal(err)
	}
	env.Emu.SetMetadataLag(time.Hour)
	f := w.put(t, "gov", "f", w.old, true) // inside the lag: not seen
	if _, err := env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("gov"), Key: aws.String("a"), VersionId: aws.String(aOld)}); err != nil {
		t.Fatal(err)
	}
	env.Emu.ResetCounts()

	res, err := verify.Run(ctx, w.clients(), w.pol, verify.Options{Buckets: []string{"gov"}, Recent: true})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Buckets[0]
	if got.Source != verify.SourceTable {
		t.Fatalf("source %s, want %s (fallbacks %v)", got.Source, verify.SourceTable, got.Fallbacks)
	}
	want := []string{"a@" + aOld, "b@" + b, "c@" + c, "d@" + dOther, "e@" + e}
	sort.Strings(want)
	if fmt.Sprint(ids(got.Listed)) != fmt.Sprint(want) {
		t.Errorf("non-compliant %v, want exactly %v", ids(got.Listed), want)
	}
	if got.Versions != 6 || got.Compliant != 1 || got.NonCompliant != 5 || got.DeleteMarkers != 1 {
		t.Errorf("counts: %d versions, %d compliant, %d non-compliant, %d delete markers; want 6, 1, 5, 1", got.Versions, got.Compliant, got.NonCompliant, got.DeleteMarkers)
	}
	if under, _ := got.VersionsUnder(w.old); under != 2 {
		t.Errorf("%d versions under the old key in the table, want 2 (a's first, e)", under)
	}
	if fmt.Sprint(ids(got.Recent)) != fmt.Sprint([]string{"f@" + f}) {
		t.Errorf("recent changes not in the table: %v, want f", ids(got.Recent))
	}
	if fmt.Sprint(ids(got.GoneSinceSnapshot)) != fmt.Sprint([]string{"a@" + aOld}) {
		t.Errorf("gone since the snapshot: %v, want a's first version", ids(got.GoneSinceSnapshot))
	}
	if !strings.Contains(strings.Join(got.NotSeen, "\n"), "Object Lock") {
		t.Errorf("not seen %q: must name Object Lock state", got.NotSeen)
	}
	if n := objectRequests(env, "gov"); n != 0 {
		t.Errorf("%d object requests with the table present, want 0", n)
	}
	if got.Requests.Head != 0 || got.Requests.TableFiles < 3 {
		t.Errorf("requests %+v: want no HEAD and the table's files read", got.Requests)
	}
}

// Without a table or report: a listing and a HEAD of every version.
func TestVerifyFallsBackToListing(t *testing.T) {
	w := newWorld(t)
	w.env.Versioned(t, "plain")
	w.put(t, "plain", "x", w.old, true)
	w.put(t, "plain", "x", w.target, true)
	w.env.Emu.ResetCounts()
	var estimates []verify.Estimate
	res, err := verify.Run(context.Background(), w.clients(), w.pol, verify.Options{Buckets: []string{"plain"},
		Estimate: func(e verify.Estimate) error { estimates = append(estimates, e); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Buckets[0]
	if got.Source != verify.SourceListing || len(got.Fallbacks) != 2 {
		t.Fatalf("source %s, fallbacks %v", got.Source, got.Fallbacks)
	}
	if got.NonCompliant != 1 || got.Compliant != 1 {
		t.Errorf("%d non-compliant, %d compliant; want 1 and 1", got.NonCompliant, got.Compliant)
	}
	if len(estimates) != 1 || estimates[0].Heads != 2 {
		t.Errorf("estimates %+v, want one of 2 HEADs before they were made", estimates)
	}
	if n := objectRequests(w.env, "plain"); n != 2 {
		t.Errorf("%d object requests, want a HEAD of each of the 2 versions", n)
	}
}

// An estimate that is refused stops the verification before any HEAD.
func TestRefusedEstimateMakesNoHead(t *testing.T) {
	w := newWorld(t)
	w.env.Versioned(t, "plain")
	w.put(t, "plain", "x", w.old, true)
	w.env.Emu.ResetCounts()
	stop := errors.New("over budget")
	_, err := verify.Run(context.Background(), w.clients(), w.pol, verify.Options{Buckets: []string{"plain"},
		Estimate: func(verify.Estimate) error { return stop }})
	if !errors.Is(err, stop) {
		t.Fatalf("err %v, want the estimate's refusal", err)
	}
	if n := objectRequests(w.env, "plain"); n != 0 {
		t.Errorf("%d object requests after a refused estimate", n)
	}
}

// The evidence file checks, and fails to check after any one byte of it
// changes (docs/kms/latest/APIReference/API_GenerateMac.md, API_VerifyMac.md).
func TestEvidenceRejectsAnyChangedByte(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.env.Versioned(t, "gov")
	w.put(t, "gov", "a", w.old, true)
	enableTable(t, w.env, "gov")
	res, err := verify.Run(ctx, w.clients(), w.pol, verify.Options{Buckets: []string{"gov"}})
	if err != nil {
		t.Fatal(err)
	}
	file, err := verify.Seal(ctx, w.env.KMS, w.mac, verify.NewEvidence(res, verify.PolicyDigest([]byte("{}")), "verify"))
	if err != nil {
		t.Fatal(err)
	}
	ev, key, err := verify.Check(ctx, w.env.KMS, file, w.mac)
	if err != nil {
		t.Fatalf("the sealed file does not check: %v", err)
	}
	if key != w.mac || ev.Totals.NonCompliant != 1 || ev.Buckets[0].Bucket != "gov" {
		t.Fatalf("checked %s %+v", key, ev.Totals)
	}
	// Every byte position, flipped one at a time, must be rejected.
	step := 1
	if testing.Short() {
		step = 7
	}
	for i := 0; i < len(file); i += step {
		bad := append([]byte(nil), file...)
		bad[i] ^= 0x01
		if _, _, err := verify.Check(ctx, w.env.KMS, bad, ""); err == nil {
			t.Fatalf("a change of byte %d (%q) was accepted", i, file[i])
		}
	}
	if _, _, err := verify.Check(ctx, w.env.KMS, file, w.old); !errors.Is(err, verify.ErrRejected) {
		t.Errorf("checked against another key: %v, want rejected", err)
	}
}

// With no table but an S3 Inventory report: the report's rows, and a HEAD
// of each SSE-KMS version only, since reports carry the encryption but no
// key ARN (docs/AmazonS3/latest/userguide/storage-inventory.md: the encryption status field).
func TestVerifyFromAnInventoryReport(t *testing.T) {
	w := newWorld(t)
	w.env.Versioned(t, "plain")
	w.env.Bucket(t, "reports", false)
	w.put(t, "plain", "x", w.old, true)
	w.put(t, "plain", "x", w.target, true)
	w.put(t, "plain", "y", "", false)
	key, err := w.env.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "plain", DestinationBucket: "reports", Format: "CSV"})
	if err != nil {
		t.Fatal(err)
	}
	w.env.Emu.ResetCounts()
	var est verify.Estimate
	res, err := verify.Run(context.Background(), w.clients(), w.pol, verify.Options{Buckets: []string{"plain"},
		Inventories: []string{"s3://reports/" + key}, Estimate: func(e verify.Estimate) error { est = e; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Buckets[0]
	if got.Source != verify.SourceInventory {
		t.Fatalf("source %s (fallbacks %v)", got.Source, got.Fallbacks)
	}
	if got.Versions != 3 || got.NonCompliant != 2 || got.Compliant != 1 {
		t.Errorf("%d versions, %d non-compliant, %d compliant; want 3, 2, 1", got.Versions, got.NonCompliant, got.Compliant)
	}
	if est.Heads != 2 || est.Dollars <= 0 {
		t.Errorf("estimate %+v, want 2 HEADs priced", est)
	}
	if n := objectRequests(w.env, "plain"); n != 2 {
		t.Errorf("%d object requests, want a HEAD of each of the 2 SSE-KMS versions", n)
	}
}

// Without --inventory, a bucket's latest complete report is found where S3
// Inventory delivers it: prefix/source-bucket/config-ID/YYYY-MM-DDTHH-MMZ/,
// manifest.checksum written last (userguide storage-inventory-location):
// a later folder without a checksum is a report still being written, and
// is passed over; a bucket with no report falls back to a listing, saying
// why.
func TestVerifyFindsTheLatestInventoryReport(t *testing.T) {
	w := newWorld(t)
	w.env.Versioned(t, "plain")
	w.env.Versioned(t, "unreported")
	w.env.Bucket(t, "reports", false)
	w.put(t, "plain", "x", w.old, true)
	w.put(t, "plain", "x", w.target, true)
	w.put(t, "unreported", "y", w.target, true)
	if _, err := w.env.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "plain", DestinationBucket: "reports", Prefix: "s3rekey", Format: "CSV"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("reports"),
		Key: aws.String("s3rekey/plain/s3rekey/2099-01-01T00-00Z/manifest.json"), Body: strings.NewReader("{not yet")}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{"plain":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"versions":"all"},
		"unreported":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"versions":"all"}}}`, w.target, w.target)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Run(context.Background(), w.clients(), pol, verify.Options{Buckets: []string{"plain", "unreported"},
		InventoryBucket: "reports", InventoryPrefix: "s3rekey", InventoryID: "s3rekey", Estimate: func(verify.Estimate) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Buckets[0]; got.Source != verify.SourceInventory || got.Versions != 2 || got.NonCompliant != 1 {
		t.Errorf("s3://plain: source %s, %d versions, %d non-compliant (fallbacks %v); want inventory+head, 2, 1",
			got.Source, got.Versions, got.NonCompliant, got.Fallbacks)
	}
	if got := res.Buckets[1]; got.Source != verify.SourceListing || !strings.Contains(strings.Join(got.Fallbacks, "; "), "no S3 Inventory report") {
		t.Errorf("s3://unreported: source %s, fallbacks %v; want listing+head, saying no report was found", got.Source, got.Fallbacks)
	}
}

// A noncurrent version under a key is exempt when the policy covers
// current versions, but still counted under its key, and listed when that
// key is to be retired.
func TestExemptVersionsStillCountUnderTheirKey(t *testing.T) {
	w := newWorld(t)
	w.env.Versioned(t, "cur")
	old := w.put(t, "cur", "k", w.old, true)
	w.put(t, "cur", "k", w.target, true)
	enableTable(t, w.env, "cur")
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{"cur":{"kmsKeyArn":%q,"bucketKeyEnabled":true}}}`, w.target)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		listUnder string
		listed    []string
	}{
		{"plain", "", nil},
		{"retiring the old key", w.old, []string{"k@" + old}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := verify.Run(context.Background(), w.clients(), pol, verify.Options{ListUnder: tc.listUnder})
			if err != nil {
				t.Fatal(err)
			}
			b := res.Buckets[0]
			if b.Exempt != 1 || b.Compliant != 1 || b.NonCompliant != 0 {
				t.Errorf("%d exempt, %d compliant, %d non-compliant; want 1, 1, 0", b.Exempt, b.Compliant, b.NonCompliant)
			}
			if under, _ := b.VersionsUnder(w.old); under != 1 {
				t.Errorf("%d versions under the old key, want the noncurrent one", under)
			}
			if fmt.Sprint(ids(b.Listed)) != fmt.Sprint(tc.listed) {
				t.Errorf("listed %v, want %v", ids(b.Listed), tc.listed)
			}
		})
	}
}

// A policy that selects buckets by rule names no bucket list of its own:
// verifying it without bucket names is refused, not an empty success.
func TestRulePolicyWithoutBucketsIsRefused(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"rules":[{"name":"all","select":{"all":true},"settings":{"kmsKeyArn":%q}}]}`, w.target)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Run(context.Background(), w.clients(), pol, verify.Options{}); err == nil || !strings.Contains(err.Error(), "name the buckets") {
		t.Fatalf("verify of a rule policy without buckets: %v, want refused", err)
	}
}
