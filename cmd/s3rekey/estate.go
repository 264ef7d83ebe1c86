package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/s3rekey/s3rekey/internal/estate"
)

const estateUsage = `Usage: s3rekey estate --policy FILE [--inventory-bucket BUCKET] [flags]

Lists every bucket of the account and region with what s3rekey would do:
the policy rule that governs it (or none), its default encryption, whether
its EventBridge notifications and s3rekey's inventory are on, its objects
and bytes from its latest inventory report, the cost and time of bringing
it onto its key at the policy's budgets, and its replication destinations
with whether the policy governs them (UpdateObjectEncryption is not
replicated). It changes nothing. Policy findings (a rule that governs no
bucket) are listed after the table. With --org, every account of the
organization side by side (each resolving the policy's aliases to its own
keys), with totals and the accounts behind (managed buckets whose new
uploads are not enforced), failing or not deployed.

Examples:
  s3rekey estate --policy policy.json --inventory-bucket s3rekey-inventory-abc123
  s3rekey estate --endpoint http://127.0.0.1:4566 --policy policy.json --json
  s3rekey estate --org --ou ou-ab12-pilot --policy policy.json
`

func runEstate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("estate", estateUsage, stderr)
	policyPath := fs.String("policy", "", "policy `FILE` (JSON)")
	inventoryBucket := fs.String("inventory-bucket", "", "the stack's inventory `BUCKET` (output InventoryBucketName), for sizes and estimates")
	account := fs.String("account", "", "expected bucket owner `ACCOUNT` id, sent on every bucket read")
	asJSON := fs.Bool("json", false, "print JSON")
	org := addOrgFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if org.enabled {
		return runEstateOrg(ctx, org, conn, *policyPath, *asJSON, stdout, stderr)
	}
	pol, cfg, api, err := policyForBuckets(ctx, conn, *policyPath, true)
	if err != nil {
		return err
	}
	d := &estate.Describer{S3: api, Policy: pol, InventoryBucket: *inventoryBucket,
		AccountID: *account, Region: cfg.Region}
	rep, err := d.Describe(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "bucket\tgoverned by\tdefault encryption\teventbridge\tinventory\tobjects\tbytes\tcost\ttime\treplicates to")
	for _, b := range rep.Buckets {
		governed := b.GovernedBy
		switch {
		case !b.Managed && governed != "":
			governed = "excluded: " + governed
		case !b.Managed:
			governed = "-"
		}
		objects, bytes, cost, took := "?", "?", "?", "?"
		if b.Objects >= 0 {
			objects, bytes, cost = fmt.Sprint(b.Objects), fmt.Sprint(b.Bytes), fmt.Sprintf("$%.4f", b.Cost)
			took = "no budget (≤ " + (time.Duration(b.OnePartitionSeconds * float64(time.Second))).Round(time.Second).String() + ")"
			if b.Seconds > 0 {
				took = (time.Duration(b.Seconds * float64(time.Second))).Round(time.Second).String()
			}
		}
		if !b.Managed {
			objects, bytes, cost, took = "-", "-", "-", "-"
		}
		var dests []string
		for _, dst := range b.Replication {
			mark := "NOT governed: replicas stay on their old key"
			if dst.Governed {
				mark = "governed"
			}
			dests = append(dests, dst.Bucket+" ("+mark+")")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, governed, b.DefaultEncryption, onOff(b.EventBridge), onOff(b.Inventory),
			objects, bytes, cost, took, strings.Join(dests, ", "))
		for _, p := range b.Problems {
			fmt.Fprintf(tw, "  %s: %s\t\t\t\t\t\t\t\t\t\n", b.Name, p)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d buckets: %d managed, %d of them with EventBridge on; %d objects, %d bytes known; $%.4f to bring onto their keys\n",
		len(rep.Buckets), rep.Managed, rep.Enrolled, rep.Objects, rep.Bytes, rep.Cost)
	for _, f := range rep.Findings {
		fmt.Fprintln(stdout, "policy: "+f.String())
	}
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
