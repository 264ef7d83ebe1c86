package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/jobs"
)

const resumeUsage = `Usage: s3rekey resume [--table NAME] (--scope SCOPE | --all) [flags]

Ends a pause of the circuit breaker: the encrypt function sends requests
for the scope's objects again within half a minute, and their messages,
held on the work queue with a delay of up to 15 minutes, run as they come
back. A scope is key:KEY_ARN, bucket:NAME or all, as s3rekey status and
s3rekey jobs list them. Fix the cause first (enable the key, cancel its
deletion, correct its key policy, point the deployment at S3): a key or
bucket still broken pauses again after one object. A pause of a key
resumes by itself once the key works again (a probe every 5 minutes); a
pause for an endpoint that is not S3 only by this command.

Examples:
  s3rekey resume --scope key:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
  s3rekey resume --all
`

func runResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("resume", resumeUsage, stderr)
	table := fs.String("table", os.Getenv(jobs.EnvTable), "jobs `TABLE` holding the pauses (default: $"+jobs.EnvTable+")")
	scope := fs.String("scope", "", "the paused `SCOPE` to resume (key:ARN, bucket:NAME or all)")
	all := fs.Bool("all", false, "resume every paused scope")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *table == "" {
		return usageError{errors.New("--table NAME (or " + jobs.EnvTable + ") is required")}
	}
	if (*scope == "") == !*all {
		return usageError{errors.New("give --scope SCOPE or --all")}
	}
	if *scope != "" && *scope != encrypt.ScopeAll && !strings.HasPrefix(*scope, encrypt.ScopeKeyPrefix) && !strings.HasPrefix(*scope, encrypt.ScopeBucketPrefix) {
		return usageError{fmt.Errorf("--scope %q: want key:KEY_ARN, bucket:NAME or all", *scope)}
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
	}
	t := &encrypt.PauseTable{API: dynamodb.NewFromConfig(cfg), Name: *table}
	paused, err := t.Pauses(ctx)
	if err != nil {
		return fmt.Errorf("reading the pauses: %w", err)
	}
	resumed := 0
	for _, p := range paused {
		if !*all && p.Scope != *scope {
			continue
		}
		if err := t.Resume(ctx, p.Scope); err != nil {
			return fmt.Errorf("resuming %s: %w", p.Scope, err)
		}
		fmt.Fprintf(stdout, "resumed %s (paused %s since %s)\n", p.Scope, p.Reason, p.Since.Format(time.RFC3339))
		resumed++
	}
	if resumed == 0 {
		if *all {
			fmt.Fprintln(stdout, "nothing is paused")
			return nil
		}
		return fmt.Errorf("%s is not paused (s3rekey status --table %s lists the pauses)", *scope, *table)
	}
	return nil
}

// pausesOf reads the pauses for status and jobs; no table, no pauses.
func pausesOf(ctx context.Context, api encrypt.PauseTableAPI, table string) ([]encrypt.Pause, error) {
	if table == "" {
		return nil, nil
	}
	return (&encrypt.PauseTable{API: api, Name: table}).Pauses(ctx)
}

// writePauses prints the paused scopes after status's or jobs' table:
// nothing when none is paused.
func writePauses(w io.Writer, paused []encrypt.Pause) error {
	if len(paused) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nPAUSED by the circuit breaker: nothing is sent for these, nothing is dead-lettered; fix the cause, then s3rekey resume")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tREASON\tSINCE\tRESUMES\tDETAIL")
	for _, p := range paused {
		resumes := "by s3rekey resume only"
		if p.Probes() {
			resumes = "by itself when fixed (probe " + p.ProbeAt.Format(time.RFC3339) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Scope, p.Reason, p.Since.Format(time.RFC3339), resumes, p.Detail)
	}
	return tw.Flush()
}

// showPauses prints the pauses of table, for jobs.
func showPauses(ctx context.Context, api encrypt.PauseTableAPI, table string, w io.Writer) error {
	paused, err := pausesOf(ctx, api, table)
	if err != nil {
		return fmt.Errorf("reading the pauses: %w", err)
	}
	return writePauses(w, paused)
}
