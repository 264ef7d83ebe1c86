package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/jobs"
)

const demoUsage = `Usage: s3rekey demo [flags]

Runs the whole s3rekey pipeline on the embedded emulator; no AWS account,
no setup. It creates KMS keys, a versioned bucket, an Object Lock bucket and
an inventory bucket, seeds a mix of every encryption state (SSE-S3, SSE-KMS
under an old key and under the target key with and without a bucket key,
legacy unencrypted, SSE-C, DSSE-KMS, retention, legal hold, noncurrent
versions, delete markers, keys with spaces, '+' and unicode), publishes a real
S3 Inventory report, and runs the real planner and encrypt functions through
the local run loop while new objects are uploaded. Then it verifies every
object version (HEAD, plus the stored bytes: nothing may be rewritten) and
prices the run per million objects beside S3 Batch Operations. Last, it
verifies its buckets from their S3 Metadata live inventory tables and
retires the old key through disabling (see s3rekey retire-key).

With --org, it runs an organization instead: a management account holding
the central report bucket and key, and three member accounts in an OU, the
third joining the OU mid-run and enrolled when it joins (as the member
StackSet's automatic deployment does). Each member re-keys its own bucket
onto its own target key and reports into the central bucket under
reports/ACCOUNT/REGION/; the run ends with the organization's jobs view
(read through each member's reader role, as jobs --org does) and the central
reports checked against every account's objects.

Exit code 1 means verification failed.

Examples:
  s3rekey demo
  s3rekey demo --objects 20000 --format parquet
  s3rekey demo --org --objects 500
`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", demoUsage, stderr)
	objects := fs.Int("objects", 3000, "objects to seed")
	format := fs.String("format", "csv", "inventory `format`: csv, parquet or orc")
	uploads := fs.Int("uploads", 0, "new uploads during the run (default objects/20)")
	org := fs.Bool("org", false, "run an organization of three member accounts (--objects each, default 300)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *org {
		n := 0
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "objects" {
				n = *objects
			}
		})
		return runOrgDemo(ctx, n, stdout, stderr)
	}
	if *objects < 1 || *objects > 2_000_000 {
		return usageError{fmt.Errorf("--objects must be from 1 to 2000000, not %d", *objects)}
	}
	f, err := inventoryFormat(*format)
	if err != nil {
		return usageError{err}
	}
	if *uploads < 0 {
		return usageError{fmt.Errorf("--uploads must not be negative")}
	}
	res, err := demo.Run(ctx, demo.Options{Objects: *objects, Format: f, Uploads: *uploads, Progress: stdout, Bar: isTerminal(stdout)})
	if err != nil {
		return err
	}
	printDemo(stdout, res)
	if len(res.Failures) > 0 {
		for i, f := range res.Failures {
			if i == 20 {
				fmt.Fprintf(stderr, "… and %d more\n", len(res.Failures)-20)
				break
			}
			fmt.Fprintln(stderr, "FAIL", f)
		}
		return fmt.Errorf("verification failed for %d objects", len(res.Failures))
	}
	return nil
}

// inventoryFormat maps a flag value to the manifest's spelling.
func inventoryFormat(s string) (string, error) {
	switch strings.ToLower(s) {
	case "csv":
		return "CSV", nil
	case "parquet":
		return "Parquet", nil
	case "orc":
		return "ORC", nil
	}
	return "", fmt.Errorf("--format %q: want csv, parquet or orc", s)
}

func printDemo(w io.Writer, res *demo.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	again := ""
	if res.NewBucketBackfill > 0 {
		again = fmt.Sprintf(", counted again by the backfill its enrollment started (%d)", res.NewBucketBackfill)
	}
	fmt.Fprintf(tw, "\nOutcomes (%d objects: %d versions seeded, %d uploaded during the run, and the first upload of s3://%s, created during the run%s)\n",
		res.Expected, res.Versions, res.Uploads, demo.NewBucket, again)
	for _, k := range res.Outcomes.SortedOutcomes() {
		fmt.Fprintf(tw, "  %s\t%d\n", k, res.Outcomes.Outcomes[k])
	}
	fmt.Fprintf(tw, "  accounted for\t%d of %d\n", res.Outcomes.Total(), res.Expected)

	fmt.Fprintf(tw, "\nVerification (HeadObject of every version; stored bytes compared)\n")
	for _, k := range sortedKeys(res.Verified) {
		fmt.Fprintf(tw, "  %s\t%d\n", k, res.Verified[k])
	}
	if len(res.Failures) == 0 {
		fmt.Fprintf(tw, "  result\tpassed: every object is in the state the policy demands or skipped with its reason; no object was rewritten\n")
	} else {
		fmt.Fprintf(tw, "  result\tFAILED for %d objects\n", len(res.Failures))
	}

	if res.Jobs != nil {
		fmt.Fprintf(tw, "\nJobs (records in DynamoDB; reports checked against the objects)\n")
		for _, j := range res.Jobs.Jobs {
			if j.Kind == jobs.KindUploads {
				fmt.Fprintf(tw, "  %s\t%s of %s today, %s: %d objects\n", j.ID, j.Kind, j.Source, j.State, j.Done)
			} else {
				fmt.Fprintf(tw, "  %s\t%s, %s: %d rows, %d planned, %d done\n", j.ID, j.Kind, j.State, j.Rows, j.Planned, j.Done)
			}
			for _, k := range sortedKeys(j.Outcomes) {
				fmt.Fprintf(tw, "    %s\t%d\n", k, j.Outcomes[k])
			}
			if j.ReportManifest != "" {
				fmt.Fprintf(tw, "    report\t%s (%d objects listed)\n", j.ReportManifest, res.Jobs.Rows[j.ID])
			}
		}
	}

	printRetirementDemo(tw, res.Retirement)

	fmt.Fprintf(tw, "\nRequests made by the pipeline\n")
	for _, c := range res.Counts {
		if c.Service == "s3" && c.Operation == "PutObject" {
			continue // the demo's own uploads
		}
		who := ""
		if c.Service == "kms" {
			who = " (by S3, s3://" + c.Bucket + ")"
		} else if c.Bucket != "" {
			who = " s3://" + c.Bucket
		}
		fmt.Fprintf(tw, "  %s %s%s\t%d\n", c.Service, c.Operation, who, c.N)
	}
	fmt.Fprintf(tw, "  sqs billed requests (64 KiB chunks, idle checks excluded)\t%d\n", res.Usage.SQS)
	fmt.Fprintf(tw, "  function time measured here\t%.2f s in %d invocations\n", res.Usage.LambdaSeconds, res.Usage.LambdaInvokes)
	_ = tw.Flush()
	printCost(w, res.Cost, res.Usage.Objects, res.Usage.BatchOpsJobs, "this run")
	fmt.Fprintf(w, "\ndone in %s\n", res.Elapsed.Round(100_000_000))
}

// printCost prints a priced usage per million objects beside S3 Batch
// Operations.
func printCost(w io.Writer, b cost.Breakdown, objects, jobs int64, what string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	pm := func(v float64) string { return fmt.Sprintf("$%.4f", cost.PerMillion(v, objects)) }
	fmt.Fprintf(w, "\nCost per million objects (%s, %d objects; us-east-1 list prices; function time at %d MB)\n", what, objects, cost.DefaultLambdaMemoryMB)
	fmt.Fprintf(tw, "  UpdateObjectEncryption requests (every tool pays)\t%s\t\n", pm(b.UOE))
	fmt.Fprintf(tw, "  KMS calls S3 makes (every tool pays; bucket keys cut them)\t%s\t\n", pm(b.KMS))
	fmt.Fprintf(tw, "  s3rekey overhead: S3 reads and lists\t%s\t\n", pm(b.S3Requests))
	fmt.Fprintf(tw, "  s3rekey overhead: SQS\t%s\t\n", pm(b.SQS))
	fmt.Fprintf(tw, "  s3rekey overhead: Lambda\t%s\t\n", pm(b.Lambda))
	fmt.Fprintf(tw, "  s3rekey overhead: job records and reports\t%s\t\n", pm(b.Jobs))
	fmt.Fprintf(tw, "  s3rekey overhead, total\t%s\t\n", pm(b.Overhead))
	fmt.Fprintf(tw, "  S3 Batch Operations fee, per object\t$%.4f\t\n", cost.BatchOpsPerObject*1e6)
	_ = tw.Flush()
	fmt.Fprintf(w, "  S3 Batch Operations also charges $%.2f per job (one per bucket), once: $%.2f here.\n", cost.BatchOpsPerJob, float64(jobs)*cost.BatchOpsPerJob)
	if b.Overhead > 0 {
		fmt.Fprintf(w, "  s3rekey's overhead is %.1f%% of Batch Operations' per-object fee.\n", 100*cost.PerMillion(b.Overhead, objects)/(cost.BatchOpsPerObject*1e6))
	}
}
