package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

const statusUsage = `Usage: s3rekey status --work-queue Q --control-queue Q [--uploads-queue Q] [flags]

Shows the depth of the work, uploads and control queues and of their dead-letter
queues: messages waiting, in flight (being processed) and delayed (retries
waiting for their backoff). With the jobs table (--table, or
S3REKEY_JOBS_TABLE), it also lists what the circuit breaker paused (a key,
a bucket or everything), why and since when, and --json prints
{"queues": [...], "paused": [...]}; s3rekey resume ends a pause. With
--org, every account of the organization side by side (its queues and
table from its deployment record), with totals and the accounts behind,
failing or not deployed.

Examples:
  s3rekey status --work-queue s3rekey-work --control-queue s3rekey-control --uploads-queue s3rekey-uploads
  s3rekey status --endpoint http://127.0.0.1:4566 --work-queue s3rekey-work --control-queue s3rekey-control --json
  s3rekey status --org --regions us-east-1,eu-west-1
`

// deploymentStatus reads what status shows of one deployment: its queues' depths
// and, with a jobs table, what the circuit breaker paused. The --org view
// calls it for every account.
func deploymentStatus(ctx context.Context, db encrypt.PauseTableAPI, api pipeline.QueueAttributesAPI, table string, q pipeline.Queues) ([]pipeline.QueueDepth, []encrypt.Pause, error) {
	paused, err := pausesOf(ctx, db, table)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the pauses: %w", err)
	}
	depths, err := pipeline.Depths(ctx, api, q)
	if err != nil {
		return nil, nil, err
	}
	return depths, paused, nil
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("status", statusUsage, stderr)
	work := fs.String("work-queue", "", "work queue `NAME|URL`")
	control := fs.String("control-queue", "", "control queue `NAME|URL`")
	uploads := fs.String("uploads-queue", "", "uploads queue `NAME|URL` (also show it and its DLQ)")
	asJSON := fs.Bool("json", false, "print JSON")
	table := fs.String("table", os.Getenv(jobs.EnvTable), "jobs `TABLE`: also list what the circuit breaker paused (default: $"+jobs.EnvTable+")")
	org := addOrgFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if org.enabled {
		return runStatusOrg(ctx, org, conn, *asJSON, stdout, stderr)
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
	}
	sqsc := sqs.NewFromConfig(cfg)
	q, err := queuesFor(ctx, sqsc, *work, *control, *uploads)
	if err != nil {
		return err
	}
	depths, paused, err := deploymentStatus(ctx, dynamodb.NewFromConfig(cfg), sqsc, *table, q)
	if err != nil {
		return err
	}
	if *asJSON && *table != "" {
		return json.NewEncoder(stdout).Encode(map[string]any{"queues": depths, "paused": append([]encrypt.Pause{}, paused...)})
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(depths)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "queue\twaiting\tin flight\tdelayed\turl")
	for _, d := range depths {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", d.Name, d.Waiting, d.InFlight, d.Delayed, d.URL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writePauses(stdout, paused)
}
