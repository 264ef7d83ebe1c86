package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/buckettags"
	"github.com/s3rekey/s3rekey/internal/estate"
	"github.com/s3rekey/s3rekey/internal/policy"
)

const policyUsage = `Usage: s3rekey policy explain --policy FILE [flags] BUCKET...
       s3rekey policy check --policy FILE [flags]

explain prints, for each bucket, what in the policy governs it (a rule, the
bucket list, an exclusion, or nothing) and the settings it resolves to. Tag
rules read the bucket's tags (GetBucketTagging).

check resolves every bucket of the account and region (ListBuckets) and
reports rules that govern no bucket, and listed buckets or overrides the
account does not have; it exits non-zero when it reports anything.

Examples:
  s3rekey policy explain --policy policy.json photos-prod
  s3rekey policy check --endpoint http://127.0.0.1:4566 --policy policy.json --json
`

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// The subcommand is the first word that is not a flag or its value.
	sub, rest := "", args
	for i, a := range args {
		if a == "explain" || a == "check" {
			sub, rest = a, append(append([]string{}, args[:i]...), args[i+1:]...)
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprint(stderr, policyUsage)
			return nil
		}
	}
	if sub == "" {
		return usageError{errors.New("policy needs a subcommand: explain or check")}
	}
	args = append([]string{sub}, rest...)
	fs, conn := newAWSFlagSet("policy "+sub, policyUsage, stderr)
	policyPath := fs.String("policy", "", "policy `FILE` (JSON)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	buckets := fs.Args()
	switch {
	case sub == "explain" && len(buckets) == 0:
		return usageError{errors.New("policy explain: name at least one BUCKET")}
	case sub == "check" && len(buckets) > 0:
		return usageError{fmt.Errorf("unexpected argument %q", buckets[0])}
	}
	pol, cfg, api, err := policyForBuckets(ctx, conn, *policyPath, false)
	if err != nil {
		return err
	}
	if sub == "check" {
		if buckets, err = estate.Buckets(ctx, api, cfg.Region); err != nil {
			return err
		}
	}
	matches, findings, err := pol.Check(ctx, buckets)
	if err != nil {
		return err
	}
	if sub == "explain" {
		findings = nil // the account's other buckets are not listed: only check can tell
	}
	if *asJSON {
		type explained struct {
			Bucket   string         `json:"bucket"`
			Managed  bool           `json:"managed"`
			By       string         `json:"governedBy"`
			Override bool           `json:"override,omitempty"`
			Settings *policy.Bucket `json:"settings,omitempty"`
		}
		out := struct {
			Buckets  []explained      `json:"buckets"`
			Findings []policy.Finding `json:"findings"`
		}{Findings: findings}
		for i, m := range matches {
			e := explained{Bucket: buckets[i], Managed: m.Managed, By: m.By, Override: m.Override}
			if m.Managed {
				b := m.Bucket
				e.Settings = &b
			}
			out.Buckets = append(out.Buckets, e)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for i, m := range matches {
			if sub == "explain" {
				printExplained(tw, buckets[i], m)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\n", buckets[i], governedBy(m))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, f := range findings {
			fmt.Fprintln(stdout, "policy: "+f.String())
		}
	}
	if len(findings) > 0 {
		return fmt.Errorf("%d finding(s) in the policy", len(findings))
	}
	return nil
}

// governedBy words a match for a person.
func governedBy(m policy.Match) string {
	switch {
	case m.Managed && m.Override:
		return m.By + " (with its override)"
	case m.Managed:
		return m.By
	case m.By != "":
		return "not managed: excluded by " + m.By
	}
	return "not managed: nothing selects it"
}

func printExplained(tw io.Writer, bucket string, m policy.Match) {
	fmt.Fprintf(tw, "bucket\t%s\n", bucket)
	fmt.Fprintf(tw, "governed by\t%s\n", governedBy(m))
	if m.Managed {
		b := m.Bucket
		fmt.Fprintf(tw, "kmsKeyArn\t%s\n", b.KMSKeyARN)
		fmt.Fprintf(tw, "bucketKeyEnabled\t%v\n", b.BucketKeyEnabled)
		fmt.Fprintf(tw, "expectedOwner\t%s\n", b.ExpectedOwner)
		fmt.Fprintf(tw, "includePrefixes\t%v\n", b.IncludePrefixes)
		fmt.Fprintf(tw, "excludePrefixes\t%v\n", b.ExcludePrefixes)
		fmt.Fprintf(tw, "versions\t%s\n", b.Versions)
		fmt.Fprintf(tw, "copy unencrypted / DSSE-KMS\t%v / %v\n", b.CopiesNotEncrypted(), b.CopiesDSSEKMS())
		fmt.Fprintf(tw, "maxObjectsPerSecond\t%v\n", b.MaxObjectsPerSecond)
		inventory := "off"
		if b.Inventory != nil {
			inventory = b.Inventory.Format + ", " + b.Inventory.Frequency
		}
		fmt.Fprintf(tw, "enrollment\teventBridge %v, defaultEncryption %v, inventory %s\n", b.EventBridge(), b.SetDefaultEncryption, inventory)
	}
	fmt.Fprintln(tw)
}

// policyForBuckets loads the policy, the AWS configuration and an S3
// client, with the policy's tag selectors reading bucket tags through it
// and, with resolve, its KMS aliases resolved.
func policyForBuckets(ctx context.Context, conn *awsFlags, path string, resolve bool) (*policy.Policy, aws.Config, *s3.Client, error) {
	pol, err := loadPolicy(path)
	if err != nil {
		return nil, aws.Config{}, nil, err
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return nil, cfg, nil, err
	}
	pol, api, err := readyPolicy(ctx, cfg, pol, resolve)
	return pol, cfg, api, err
}

// readyPolicy makes a loaded policy ready to say which buckets it governs:
// with resolve, its KMS aliases resolved; its tag selectors reading bucket
// tags through an S3 client of cfg, which it returns.
func readyPolicy(ctx context.Context, cfg aws.Config, pol *policy.Policy, resolve bool) (*policy.Policy, *s3.Client, error) {
	if resolve {
		var err error
		if pol, err = resolveKeys(ctx, cfg, pol); err != nil {
			return nil, nil, err
		}
	}
	api := s3.NewFromConfig(cfg, awsconf.S3Options(cfg))
	return buckettags.Attach(pol, api), api, nil
}
