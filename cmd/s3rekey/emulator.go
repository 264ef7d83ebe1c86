package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
)

const emulatorUsage = `Usage: s3rekey emulator [flags]

Serves s3rekey's local AWS (S3 path-style, SQS, KMS) on one loopback
endpoint until interrupted, and prints the environment lines that point the
AWS CLI or any AWS SDK at it. Any credentials are accepted.

With --seed N it also creates what the demo uses, for trying the other
commands by hand: KMS keys, buckets demo-data (versioned), demo-locked
(Object Lock) and demo-inventory, the queues s3rekey-work, s3rekey-uploads
and s3rekey-control with their dead-letter queues, N objects in every
encryption state, EventBridge delivery (uploads to s3rekey-uploads), and a published inventory of each
data bucket (whose manifest.checksum events are already waiting on the
control queue); the policy is written to --policy-out.

Examples:
  s3rekey emulator --addr 127.0.0.1:4566
  s3rekey emulator --seed 1000 --policy-out policy.json
  s3rekey emulator --eventbridge-rule 'photos=work-queue' \
      --eventbridge-rule 'inventory:manifest.checksum=control-queue'
  s3rekey emulator --fault 's3:UpdateObjectEncryption=SlowDown:0.05' --latency 's3:*=20ms'
  s3rekey emulator --iam 'AKIAMYFUNCTION000001=encrypt-policy.json'
  s3rekey emulator --s3-put-rate 350 --kms-rate 100
  s3rekey emulator --org 3

With --org N it serves an organization of N accounts instead: --account is
the management account, the N-1 members are 100000000001, 100000000002, …;
each account has its own buckets, queues and keys, STS and Organizations
are served too, and the root access key of every account is printed.

IAM: requests signed with an access key bound by --iam are allowed only what
that IAM policy document allows (Allow/Deny, wildcards, String*/Arn*/Bool
conditions such as kms:ViaService); every other access key has full access.
`

func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("emulator", emulatorUsage, stderr)
	addr := fs.String("addr", "127.0.0.1:4566", "loopback `address` to listen on (port 0 picks a free port)")
	account := fs.String("account", emulator.DefaultAccount, "AWS `account` id that owns every resource")
	region := fs.String("region", emulator.DefaultRegion, "AWS `region` served")
	verbose := fs.Bool("verbose", false, "log every request to stderr")
	orgSize := fs.Int("org", 0, "serve an organization of `N` accounts (2 to 1000): --account manages it, members are 100000000001 on")
	seed := fs.Int("seed", 0, "create the demo's keys, buckets and queues and seed `N` objects")
	format := fs.String("format", "csv", "with --seed: inventory format, csv, parquet or orc")
	policyOut := fs.String("policy-out", "s3rekey-demo-policy.json", "with --seed: where to write the policy `FILE`")
	rawKeys := fs.Bool("eventbridge-raw-keys", false, "send EventBridge object keys raw instead of form-encoded (AWS documents neither)")
	notS3 := fs.Bool("not-s3-update-encryption", false, "answer UpdateObjectEncryption as a server that is not S3 does: overwrite the object with the request body and answer with an ETag")
	metadataLag := fs.Duration("metadata-lag", 0, "how long after a change S3 Metadata live inventory tables show it (S3: typically within an hour)")
	var quotas emulator.Quotas
	fs.Float64Var(&quotas.S3PutPerSecond, "s3-put-rate", 0, "PUT-class requests a `second` per S3 partition (bucket and first key segment); 503 SlowDown above it (0: no limit)")
	fs.Float64Var(&quotas.S3GetPerSecond, "s3-get-rate", 0, "GET/HEAD requests a `second` per S3 partition (0: no limit)")
	fs.Float64Var(&quotas.KMSPerSecond, "kms-rate", 0, "KMS cryptographic requests a `second` for the account, S3's on callers' behalf included (0: no limit)")
	var rules, faults, latencies, policies repeated
	fs.Var(&policies, "iam", "`ACCESS_KEY=POLICY_FILE`: requests signed with the key get only what the IAM policy document allows (repeatable)")
	fs.Var(&rules, "eventbridge-rule", "`BUCKET[:KEY_SUFFIX]=QUEUE_NAME`: deliver \"Object Created\" events of a bucket with EventBridge enabled to a queue (repeatable)")
	fs.Var(&faults, "fault", "`SERVICE:OPERATION=CODE:RATE`: fail a share of requests, e.g. s3:UpdateObjectEncryption=SlowDown:0.05 (repeatable)")
	fs.Var(&latencies, "latency", "`SERVICE:OPERATION=DURATION`: delay requests, e.g. s3:*=20ms (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *orgSize != 0 && (*orgSize < 2 || *orgSize > 1000 || *seed != 0 || len(policies) != 0) {
		return usageError{fmt.Errorf("--org must be from 2 to 1000, without --seed or --iam")}
	}
	if quotas.S3PutPerSecond < 0 || quotas.S3GetPerSecond < 0 || quotas.KMSPerSecond < 0 {
		return usageError{fmt.Errorf("--s3-put-rate, --s3-get-rate and --kms-rate must not be negative")}
	}
	opts := emulator.Options{Addr: *addr, Account: *account, Region: *region, EventBridgeRawKeys: *rawKeys, NotS3UpdateEncryption: *notS3, Policies: map[string][]byte{},
		Quotas: quotas, MetadataLag: *metadataLag}
	for _, p := range policies {
		key, file, ok := strings.Cut(p, "=")
		if !ok || key == "" || file == "" {
			return usageError{fmt.Errorf("--iam %q: want ACCESS_KEY=POLICY_FILE", p)}
		}
		doc, err := os.ReadFile(file)
		if err != nil {
			return usageError{fmt.Errorf("--iam %s: %w", key, err)}
		}
		opts.Policies[key] = doc
	}
	for _, r := range rules {
		rule, err := emulator.ParseEventBridgeRule(r)
		if err != nil {
			return usageError{err}
		}
		opts.EventBridgeRules = append(opts.EventBridgeRules, rule)
	}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *seed < 0 || *seed > 2_000_000 {
		return usageError{fmt.Errorf("--seed must be from 0 to 2000000")}
	}
	invFormat, err := inventoryFormat(*format)
	if err != nil {
		return usageError{err}
	}
	if *orgSize != 0 {
		return serveOrganization(ctx, opts, *orgSize, faults, latencies, stdout)
	}
	emu, err := emulator.New(opts)
	if err != nil {
		return usageError{err}
	}
	for key := range opts.Policies {
		fmt.Fprintf(stdout, "IAM: requests signed with %s are bound to its policy\n", key)
	}
	if err := applyFaults(emu, faults, latencies); err != nil {
		return err
	}
	if err := emu.Listen(ctx); err != nil {
		return err
	}
	defer emu.Close()
	fmt.Fprintf(stdout, "s3rekey emulator serving S3, SQS, KMS and DynamoDB at %s (account %s, region %s)\n\n", emu.URL(), emu.Account(), emu.Region())
	var jobsEnv []string
	if *seed > 0 {
		prep, err := demo.Prepare(ctx, emu, demo.Options{Objects: *seed, Format: invFormat, Progress: stdout})
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		j := prep.Jobs
		jobsEnv = []string{jobs.EnvTable + "=" + j.Table, jobs.EnvReportBucket + "=" + j.ReportBucket,
			jobs.EnvReportPrefix + "=" + j.ReportPrefix, jobs.EnvReportKey + "=" + j.ReportKMSKeyARN, EnvEvidenceMacKey + "=" + demo.EvidenceMacAlias}
		if err := os.WriteFile(*policyOut, prep.PolicyJSON, 0o644); err != nil {
			return fmt.Errorf("write the policy: %w", err)
		}
		fmt.Fprintf(stdout, "\npolicy written to %s; queues %s, %s and %s; inventories:\n", *policyOut, demo.WorkQueue, demo.ControlQueue, demo.UploadsQueue)
		for _, m := range prep.Manifests {
			fmt.Fprintln(stdout, "  "+m)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, "Point the AWS CLI or an SDK at it with:")
	for _, line := range emu.EnvLines() {
		fmt.Fprintln(stdout, "  export "+line)
	}
	if jobsEnv != nil {
		fmt.Fprintln(stdout, "and s3rekey run, backfill, jobs, report, redrive, verify and retire-key at its job records, reports and evidence with:")
		for _, line := range jobsEnv {
			fmt.Fprintln(stdout, "  export "+line)
		}
	}
	fmt.Fprintf(stdout, `
AWS_ENDPOINT_URL is read only by AWS CLI 2.13.0 (1.29.0) and boto3 1.28.0 or
later. Older ones (Debian 12's awscli 2.9 and python3-boto3 1.26 among them)
ignore it and would call real AWS: give them the endpoint yourself,
  aws --endpoint-url %[1]s s3 ls
  boto3.client("sqs", endpoint_url="%[1]s")
S3 is served path-style: Go s3.Options.UsePathStyle = true; AWS CLI
  aws configure set default.s3.addressing_style path
(with an IP endpoint such as this one the CLI and boto3 use path style anyway).
Request counts: %[1]s/_emulator/counts
Press Ctrl-C to stop.
`, emu.URL())
	<-ctx.Done()
	return nil
}

// orgMember is the id of the i-th member account of an --org organization.
func orgMember(i int) string { return fmt.Sprintf("%012d", 100000000000+i) }

// serveOrganization serves an organization of size accounts, each with the
// per-account options, faults and latencies of opts, until ctx is done.
func serveOrganization(ctx context.Context, opts emulator.Options, size int, faults, latencies []string, stdout io.Writer) error {
	members := make([]string, 0, size-1)
	for i := 1; i < size; i++ {
		members = append(members, orgMember(i))
	}
	org, err := emulator.NewOrganization(emulator.OrgOptions{Addr: opts.Addr, Region: opts.Region, Management: opts.Account,
		Members: members, Account: opts, Logger: opts.Logger})
	if err != nil {
		return usageError{err}
	}
	for _, account := range org.Accounts() {
		if err := applyFaults(org.Account(account), faults, latencies); err != nil {
			return err
		}
	}
	if err := org.Listen(ctx); err != nil {
		return err
	}
	defer org.Close()
	fmt.Fprintf(stdout, "s3rekey emulator serving an organization of %d accounts at %s: S3, SQS, KMS, DynamoDB, STS and Organizations (region %s)\n",
		size, org.URL(), org.Region())
	fmt.Fprintf(stdout, "organization %s, root %s, management account %s\n\n", org.ID(), org.RootID(), org.Management())
	fmt.Fprintln(stdout, "Root access keys (secret "+emulator.SecretAccessKey+"):")
	for _, account := range org.Accounts() {
		fmt.Fprintf(stdout, "  %s  %s\n", account, emulator.RootAccessKey(account))
	}
	fmt.Fprintf(stdout, `
Point the AWS CLI or an SDK at it with:
  export AWS_ENDPOINT_URL=%[1]s
  export AWS_ACCESS_KEY_ID=%[2]s
  export AWS_SECRET_ACCESS_KEY=%[3]s
  export AWS_REGION=%[4]s
(the management account's root; %[5]s signs as it too). Another account: its
root access key above. S3 is served path-style; older clients need
--endpoint-url %[1]s.
Press Ctrl-C to stop.
`, org.URL(), emulator.RootAccessKey(org.Management()), emulator.SecretAccessKey, org.Region(), emulator.AccessKeyID)
	<-ctx.Done()
	return nil
}

// applyFaults injects the --fault and --latency settings into one
// account's emulator.
func applyFaults(emu *emulator.Emulator, faults, latencies []string) error {
	for _, f := range faults {
		fault, err := emulator.ParseFault(f)
		if err != nil {
			return usageError{err}
		}
		if err := emu.SetFault(fault); err != nil {
			return usageError{err}
		}
	}
	for _, l := range latencies {
		lat, err := emulator.ParseLatency(l)
		if err != nil {
			return usageError{err}
		}
		emu.SetLatency(lat)
	}
	return nil
}
