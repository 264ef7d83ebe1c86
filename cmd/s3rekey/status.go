package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

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
{"queues": [...], "paused": [...]}; s3rekey resume ends a pause. For a
dead-letter queue that holds messages, it reads up to 10 of them (leaving
them visible) and says why they are there: the reason s3rekey recorded, or
"moved by SQS after N receives" for one whose function crashed or timed
out before it could record one. With --org, every account of the
organization side by side (its queues and table from its deployment
record), with totals and the accounts behind, failing or not deployed.

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
	waiting := map[string]int64{}
	for _, d := range depths {
		waiting[d.Name] = d.Waiting
	}
	for _, x := range []struct{ name, dlq, source string }{{pipeline.DepthWorkDLQ, q.WorkDLQ, q.Work},
		{pipeline.DepthControlDLQ, q.ControlDLQ, q.Control}, {pipeline.DepthUploadsDLQ, q.UploadsDLQ, q.Uploads}} {
		if x.dlq == "" || waiting[x.name] == 0 {
			continue
		}
		if err := writeDeadLetterReasons(ctx, sqsc, stdout, x.name, x.dlq, x.source); err != nil {
			return err
		}
	}
	return writePauses(stdout, paused)
}

// deadLetterSample is how many dead letters status reads per queue to say
// why they are there.
const deadLetterSample = 10

// writeDeadLetterReasons prints why a sample of a DLQ's messages are
// there (deadLetterReason). They are made visible again at once, for a
// redrive (a ReceiveMessage VisibilityTimeout of 0 is not sent: the SDK
// omits a zero).
func writeDeadLetterReasons(ctx context.Context, api *sqs.Client, w io.Writer, name, dlqURL, sourceURL string) error {
	maxReceives, err := pipeline.MaxReceives(ctx, api, sourceURL)
	if err != nil {
		return err
	}
	out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlqURL), MaxNumberOfMessages: deadLetterSample,
		VisibilityTimeout: 30, MessageAttributeNames: []string{"All"}})
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	reasons := map[string]int{}
	var entries []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	for i, m := range out.Messages {
		reasons[deadLetterReason(m, maxReceives)]++
		entries = append(entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
	}
	if len(entries) > 0 {
		if _, err := api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(dlqURL), Entries: entries}); err != nil {
			return fmt.Errorf("make the dead letters read visible again: %w", err)
		}
	}
	if len(reasons) > 0 {
		fmt.Fprintf(w, "%s, %d read:\n", name, len(out.Messages))
	}
	for _, r := range slices.Sorted(maps.Keys(reasons)) {
		fmt.Fprintf(w, "  %d  %s\n", reasons[r], r)
	}
	return nil
}
