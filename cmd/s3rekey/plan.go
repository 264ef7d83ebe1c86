package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/verify"
)

const planUsage = `Usage: s3rekey plan --manifest s3://BUCKET/…/manifest.json --policy FILE [flags]

Reads an S3 Inventory report and prints, without changing anything: objects
and bytes by encryption status × bucket key × lock state, how many objects a
backfill would update or skip (by reason), and the estimated cost beside S3
Batch Operations' fee for the same objects. It reads only the inventory's
own files.

Examples:
  s3rekey plan --manifest s3://inventory/reports/photos/daily/2026-11-01T01-00Z/manifest.json --policy policy.json
  s3rekey plan --endpoint http://127.0.0.1:4566 --manifest s3://… --policy policy.json --json
`

func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("plan", planUsage, stderr)
	manifest := fs.String("manifest", "", "`s3://` URL of the inventory's manifest.json")
	policyPath := fs.String("policy", "", "policy `FILE` (JSON)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, _, err := planner.ParseS3URL(*manifest); err != nil {
		return usageError{fmt.Errorf("--manifest: %w", err)}
	}
	pol, _, s3c, err := policyForBuckets(ctx, conn, *policyPath, true)
	if err != nil {
		return err
	}
	rep, err := planner.Plan(ctx, s3c, *manifest, pol, time.Now(), "")
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*planner.PlanReport
			Verify []verify.SourceCost `json:"verify"`
		}{rep, planVerifyCosts(rep)})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Inventory of s3://%s: %d rows in %d %s files\n", rep.SourceBucket, rep.Rows, rep.Files, rep.Format)
	fmt.Fprintf(tw, "governed by %s\n\n", rep.GovernedBy)
	fmt.Fprintln(tw, "state (encryption / bucket key / lock)\tobjects\tbytes")
	for _, k := range sortedKeys(rep.ByState) {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", k, rep.ByState[k].Objects, rep.ByState[k].Bytes)
	}
	fmt.Fprintln(tw, "\nbackfill\tobjects")
	fmt.Fprintf(tw, "would update\t%d\n", rep.WouldUpdate)
	fmt.Fprintf(tw, "SSE-KMS with the target's bucket-key setting: update unless already under the target key (HEAD decides)\t%d\n", rep.NeedsCheck)
	if rep.WouldCopy > 0 {
		fmt.Fprintf(tw, "would copy in place (unencrypted or DSSE-KMS, opted in): %d bytes\t%d\n", rep.CopyBytes, rep.WouldCopy)
		if rep.KeptVersionBytes > 0 {
			fmt.Fprintf(tw, "  old versions kept in the versioned bucket: %d bytes, at most $%.4f a month (S3 Standard)\t\n", rep.KeptVersionBytes, rep.KeptVersionsPerMonth)
		}
	}
	for _, k := range sortedKeys(rep.Skipped) {
		fmt.Fprintf(tw, "skipped: %s\t%d\n", k, rep.Skipped[k])
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "\nestimate: %d UpdateObjectEncryption requests at most, %d copies, %d HEADs, %d object-task messages\n",
		rep.Usage.UOE, rep.WouldCopy, rep.Usage.S3Get-int64(rep.Files)-2, rep.Messages)
	printCost(stdout, rep.Cost, rep.Rows, 1, "estimate")
	printPace(stdout, rep.Pace, rep.Usage.KMS)
	printVerifyCosts(stdout, rep)
	return nil
}

// printPace says how long the backfill takes at its budgets.
func printPace(w io.Writer, p planner.Pace, kms int64) {
	fmt.Fprintf(w, "KMS requests S3 makes on s3rekey's behalf: %d\n", kms)
	if p.Bound == "" {
		fmt.Fprintf(w, "time: no budget set (maxObjectsPerSecond, maxKmsRequestsPerSecond); s3rekey finds S3's and KMS's quotas, at most %s at one partition's %d requests a second\n",
			duration(p.OnePartitionSeconds), planner.S3PutPerPartition)
		return
	}
	fmt.Fprintf(w, "time at the budgets (%s): %s, set by the %s budget\n", budgets(p), duration(p.Seconds), map[string]string{"objects": "objects-a-second", "kms": "KMS"}[p.Bound])
}

func budgets(p planner.Pace) string {
	var parts []string
	if p.ObjectsPerSecond > 0 {
		parts = append(parts, fmt.Sprintf("%g objects/s", p.ObjectsPerSecond))
	}
	if p.KMSRequestsPerSecond > 0 {
		parts = append(parts, fmt.Sprintf("%g KMS requests/s", p.KMSRequestsPerSecond))
	}
	return strings.Join(parts, ", ")
}

// duration writes seconds as hours, minutes and seconds, to the second.
func duration(seconds float64) string {
	return (time.Duration(math.Ceil(seconds)) * time.Second).String()
}
