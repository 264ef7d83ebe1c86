package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/enroll"
	"github.com/s3rekey/s3rekey/internal/estate"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/metatable"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/verify"
)

// EnvEvidenceMacKey names the HMAC KMS key evidence is signed with.
const EnvEvidenceMacKey = "S3REKEY_EVIDENCE_MAC_KEY"

const verifyUsage = `Usage: s3rekey verify --policy FILE [--bucket B]... [flags]
       s3rekey verify --check FILE|s3://… [--mac-key KEY]

Proves which KMS key every object version of the policy's buckets (or the
named ones) is under, compared with the policy. Each bucket is read from
the best source it has, and the output says which: its S3 Metadata live
inventory table (no object requests), else its latest S3 Inventory report
(--inventory) and a HEAD of each SSE-KMS version, else a listing and a HEAD
of each version. HEADs are priced before they are made and paced by the
bucket's maxObjectsPerSecond. The result is written to the report location
(S3REKEY_REPORT_BUCKET, S3REKEY_REPORT_PREFIX) as an evidence file,
encrypted under S3REKEY_REPORT_KMS_KEY_ARN and signed with KMS GenerateMac
under the HMAC key --mac-key (or S3REKEY_EVIDENCE_MAC_KEY).
--check verifies such a file: it fails if any byte was changed.

Examples:
  s3rekey verify --policy policy.json --mac-key alias/s3rekey-evidence
  s3rekey verify --policy policy.json --bucket photos --recent --all --json
  s3rekey verify --policy policy.json --inventory s3://inventory/photos/s3rekey/2026-11-01T01-00Z/manifest.json
  s3rekey verify --check s3://reports/s3rekey/evidence/20261201T101500Z.evidence
`

// verifyFlags are the flags verify and retire-key share.
type verifyFlags struct {
	policyPath, source, macKey, reportBucket, reportPrefix, reportKey, reportOwner, out string
	inventoryBucket, inventoryPrefix                                                    string
	buckets, inventories                                                                repeated
	all, recent, asJSON, noEvidence                                                     bool
	concurrency                                                                         int
	maxCost                                                                             float64
}

func (v *verifyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&v.policyPath, "policy", "", "policy `FILE` (JSON)")
	fs.Var(&v.buckets, "bucket", "verify this `BUCKET` of the policy only (repeatable)")
	fs.Var(&v.inventories, "inventory", "`s3://` URL of an S3 Inventory manifest.json (repeatable; the latest per bucket is used)")
	fs.StringVar(&v.inventoryBucket, "inventory-bucket", "", "the stack's inventory `BUCKET` (output InventoryBucketName): a bucket without --inventory is verified from its latest complete report there")
	fs.StringVar(&v.inventoryPrefix, "inventory-prefix", enroll.InventoryPrefix, "with --inventory-bucket: the reports' `PREFIX`")
	fs.StringVar(&v.source, "source", "", "force a source: metadata-table, inventory+head or listing+head (default: the best available)")
	fs.BoolVar(&v.all, "all", false, "list every version in the evidence, not only the non-compliant")
	fs.BoolVar(&v.recent, "recent", false, "with a table: list the bucket to name the versions newer than its snapshot (LIST requests, no object request)")
	fs.IntVar(&v.concurrency, "concurrency", 16, "HEADs at once")
	fs.Float64Var(&v.maxCost, "max-cost", 0, "refuse a bucket whose HEADs and listings would cost more than this many `dollars` (0: no limit)")
	fs.StringVar(&v.macKey, "mac-key", os.Getenv(EnvEvidenceMacKey), "HMAC KMS `KEY` that signs the evidence (GenerateMac)")
	fs.StringVar(&v.reportBucket, "report-bucket", os.Getenv(jobs.EnvReportBucket), "`BUCKET` the evidence is written to")
	fs.StringVar(&v.reportPrefix, "report-prefix", os.Getenv(jobs.EnvReportPrefix), "`PREFIX` of the evidence in the report bucket")
	fs.StringVar(&v.reportOwner, "report-owner", reportOwnerDefault(), "`ACCOUNT` expected to own the report bucket; S3 refuses the request when it does not (default: $"+jobs.EnvReportOwner+", else $"+bucketowner.EnvAccountID+")")
	fs.StringVar(&v.reportKey, "report-kms-key", os.Getenv(jobs.EnvReportKey), "KMS `KEY` the evidence file is encrypted under (SSE-KMS)")
	fs.StringVar(&v.out, "out", "", "also write the signed evidence to this local `FILE`")
	fs.BoolVar(&v.noEvidence, "no-evidence", false, "print the result without writing evidence")
	fs.BoolVar(&v.asJSON, "json", false, "print JSON")
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("verify", verifyUsage, stderr)
	var vf verifyFlags
	vf.register(fs)
	check := fs.String("check", "", "check this evidence `FILE` (or s3:// URL) instead of verifying")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
	}
	if *check != "" {
		return checkEvidence(ctx, cfg, *check, vf.macKey, vf.asJSON, stdout)
	}
	run, err := vf.verify(ctx, cfg, "verify", "", stderr)
	if err != nil {
		return err
	}
	warnPendingDeletion(ctx, kms.NewFromConfig(cfg), run.res, stderr)
	return run.print(stdout, vf.asJSON)
}

// verifyRun is one verification and its evidence.
type verifyRun struct {
	res      *verify.Result
	evidence *verify.Evidence
	stored   string // s3:// URL of the evidence, or ""
	signer   string
}

// verify runs a verification and writes its evidence.
func (vf *verifyFlags) verify(ctx context.Context, cfg aws.Config, purpose, listUnder string, stderr io.Writer) (*verifyRun, error) {
	headRecent := listUnder != ""
	pol, err := loadPolicy(vf.policyPath)
	if err != nil {
		return nil, err
	}
	policyFile, err := os.ReadFile(vf.policyPath)
	if err != nil {
		return nil, err
	}
	if !vf.noEvidence && (vf.macKey == "" || vf.reportBucket == "" || vf.reportKey == "") {
		return nil, usageError{errors.New("the evidence needs --mac-key, --report-bucket and --report-kms-key (or their variables); --no-evidence prints the result only")}
	}
	pol, s3c, err := readyPolicy(ctx, cfg, pol, true)
	if err != nil {
		return nil, err
	}
	for _, b := range vf.buckets {
		if _, ok := pol.Lookup(b); !ok {
			return nil, usageError{fmt.Errorf("--bucket %s: not in the policy", b)}
		}
	}
	names := vf.buckets
	if len(names) == 0 {
		if names, err = governedBuckets(ctx, s3c, cfg.Region, pol); err != nil {
			return nil, err
		}
	}
	clients := verify.Clients{Metadata: s3c, Catalog: metatable.NewCatalog(cfg), Files: s3c, Reports: s3c, List: s3c, Head: s3c}
	opts := verify.Options{Buckets: names, Source: vf.source, Inventories: vf.inventories, All: vf.all,
		InventoryBucket: vf.inventoryBucket, InventoryPrefix: vf.inventoryPrefix, InventoryID: enroll.InventoryID,
		Recent: vf.recent || headRecent, HeadRecent: headRecent, ListUnder: listUnder, Concurrency: vf.concurrency,
		Estimate: func(e verify.Estimate) error {
			fmt.Fprintf(stderr, "s3://%s from %s: %d HEADs and %d LIST requests, $%.4f", e.Bucket, e.Source, e.Heads, e.Lists, e.Dollars)
			if e.AtBudget > 0 {
				fmt.Fprintf(stderr, ", %s at the bucket's budget", e.AtBudget.Round(time.Second))
			}
			fmt.Fprintln(stderr)
			if vf.maxCost > 0 && e.Dollars > vf.maxCost {
				return fmt.Errorf("$%.4f is over --max-cost $%.4f", e.Dollars, vf.maxCost)
			}
			return nil
		}}
	res, err := verify.Run(ctx, clients, pol, opts)
	if err != nil {
		return nil, err
	}
	run := &verifyRun{res: res, evidence: verify.NewEvidence(res, verify.PolicyDigest(policyFile), purpose)}
	if vf.noEvidence {
		return run, nil
	}
	file, err := verify.Seal(ctx, kms.NewFromConfig(cfg), vf.macKey, run.evidence)
	if err != nil {
		return nil, err
	}
	if run.stored, err = verify.Store(ctx, bucketowner.Client{Client: s3c, Owner: vf.reportOwner}, vf.reportBucket, vf.reportPrefix, vf.reportKey, res.GeneratedAt, file); err != nil {
		return nil, err
	}
	run.signer = vf.macKey
	if vf.out != "" {
		if err := os.WriteFile(vf.out, file, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", vf.out, err)
		}
	}
	return run, nil
}

func (r *verifyRun) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*verify.Evidence
			StoredAt string `json:"storedAt,omitempty"`
		}{r.evidence, r.stored})
	}
	printVerification(w, r.evidence)
	if r.stored != "" {
		fmt.Fprintf(w, "\nevidence: %s (signed with %s; check it with s3rekey verify --check %s)\n", r.stored, r.signer, r.stored)
	}
	return nil
}

// printVerification is the human summary.
func printVerification(w io.Writer, ev *verify.Evidence) {
	for _, b := range ev.Buckets {
		fmt.Fprintf(w, "s3://%s  from %s (%s), as of %s\n", b.Bucket, b.Source, b.SourceRef, b.AsOf.Format(time.RFC3339))
		for _, f := range b.Fallbacks {
			fmt.Fprintf(w, "  not from a better source: %s\n", f)
		}
		fmt.Fprintf(w, "  %d versions: %d compliant, %d non-compliant, %d exempt, %d unknown; %d delete markers\n",
			b.Versions, b.Compliant, b.NonCompliant, b.Exempt, b.Unknown, b.DeleteMarkers)
		for _, k := range b.ByKey {
			label := k.Key
			if k.Key == b.TargetKey {
				label += " (the target)"
			}
			fmt.Fprintf(w, "  under %s [%s]: %d (%d non-compliant)\n", label, k.Encryption, k.Versions, k.NonCompliant)
		}
		const shown = 20
		for i, v := range b.Listed {
			if i == shown {
				fmt.Fprintf(w, "  … and %d more in the evidence\n", len(b.Listed)-shown)
				break
			}
			fmt.Fprintf(w, "  %s %s version %s: %s\n", v.Verdict, v.Key, v.VersionID, v.Reason)
		}
		for _, v := range b.Recent {
			fmt.Fprintf(w, "  newer than the table: %s version %s (%s)\n", v.Key, v.VersionID, v.LastModified.Format(time.RFC3339))
		}
		for _, v := range b.GoneSinceSnapshot {
			fmt.Fprintf(w, "  gone since: %s version %s\n", v.Key, v.VersionID)
		}
		for _, n := range b.NotSeen {
			fmt.Fprintf(w, "  not seen: %s\n", n)
		}
		fmt.Fprintf(w, "  requests: %d HEAD (object), %d LIST, %d table files, %d report files\n\n",
			b.Requests.Head, b.Requests.List, b.Requests.TableFiles, b.Requests.Report)
	}
	t := ev.Totals
	fmt.Fprintf(w, "total: %d versions, %d compliant, %d non-compliant, %d exempt, %d unknown (policy sha256 %s)\n",
		t.Versions, t.Compliant, t.NonCompliant, t.Exempt, t.Unknown, ev.PolicySHA256)
}

// checkEvidence checks an evidence file, local or in S3.
func checkEvidence(ctx context.Context, cfg aws.Config, ref, macKey string, asJSON bool, stdout io.Writer) error {
	var data []byte
	var err error
	if strings.HasPrefix(ref, "s3://") {
		bucket, key, perr := planner.ParseS3URL(ref)
		if perr != nil {
			return usageError{fmt.Errorf("--check: %w", perr)}
		}
		data, err = inventory.ReadSmall(ctx, s3.NewFromConfig(cfg, awsconf.S3Options(cfg)), bucket, key, 1<<30)
	} else {
		data, err = os.ReadFile(ref)
	}
	if err != nil {
		return err
	}
	kmsc := kms.NewFromConfig(cfg)
	if macKey != "" {
		if macKey, err = keyARN(ctx, kmsc, macKey); err != nil {
			return err
		}
	}
	ev, signer, err := verify.Check(ctx, kmsc, data, macKey)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ev)
	}
	fmt.Fprintf(stdout, "evidence checks: signed with %s, made %s for %s\n", signer, ev.GeneratedAt.Format(time.RFC3339), ev.Purpose)
	printVerification(stdout, ev)
	return nil
}

// keyARN resolves a key id, ARN or alias to its key ARN.
func keyARN(ctx context.Context, api *kms.Client, ref string) (string, error) {
	out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
	if err != nil {
		return "", fmt.Errorf("key %s: %w", ref, err)
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

// warnPendingDeletion names every key that versions are under and that
// is pending deletion: those versions are lost when it is deleted.
func warnPendingDeletion(ctx context.Context, api *kms.Client, res *verify.Result, w io.Writer) {
	keys := map[string]int64{}
	for _, b := range res.Buckets {
		for _, k := range b.ByKey {
			if strings.HasPrefix(k.Key, "arn:") {
				keys[k.Key] += k.Versions
			}
		}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k)})
		if err != nil || out.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
			continue
		}
		fmt.Fprintf(w, "WARNING: %d versions are under %s, which is pending deletion (on %s). Cancel it and re-key them:\n"+
			"  aws kms cancel-key-deletion --key-id %s\n  aws kms enable-key --key-id %s\n  then s3rekey backfill for each bucket named above\n",
			keys[k], k, aws.ToTime(out.KeyMetadata.DeletionDate).Format(time.RFC3339), k, k)
	}
}

// planVerifyCosts prices s3rekey verify from each source for the versions
// of a plan's inventory.
func planVerifyCosts(rep *planner.PlanReport) []verify.SourceCost {
	versions, kmsVersions := planVersions(rep)
	return verify.Costs(versions, kmsVersions, rep.Files, false)
}

func planVersions(rep *planner.PlanReport) (versions, kmsVersions int64) {
	for state, c := range rep.ByState {
		if state == "delete marker" {
			continue
		}
		versions += c.Objects
		if strings.HasPrefix(state, "SSE-KMS") || strings.HasPrefix(state, "DSSE-KMS") {
			kmsVersions += c.Objects
		}
	}
	return versions, kmsVersions
}

// printVerifyCosts shows what s3rekey verify would cost from each source.
func printVerifyCosts(w io.Writer, rep *planner.PlanReport) {
	versions, _ := planVersions(rep)
	fmt.Fprintf(w, "\nverify of these %d versions, by source (s3rekey verify chooses the best the bucket has):\n", versions)
	for _, c := range planVerifyCosts(rep) {
		fmt.Fprintf(w, "  %-16s %9d object requests  %6d other  $%.4f  ($%.4f per million versions)\n", c.Source, c.ObjectRequests, c.OtherRequests, c.Dollars, c.PerMillion)
	}
}

// governedBuckets are the buckets of the account and region that the
// policy governs: those it lists and those its rules select, read from
// ListBuckets, so that a rule's buckets are verified like listed ones.
func governedBuckets(ctx context.Context, api *s3.Client, region string, pol *policy.Policy) ([]string, error) {
	all, err := estate.Buckets(ctx, api, region)
	if err != nil {
		return nil, fmt.Errorf("list the account's buckets: %w", err)
	}
	var names []string
	for _, name := range all {
		m, err := pol.Resolve(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", name, err)
		}
		if m.Managed {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("the policy governs no bucket of the account and region")
	}
	return names, nil
}
