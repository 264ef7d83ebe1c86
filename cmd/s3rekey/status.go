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

const statusUsage = `Usage: s3rekey status --work-queue Q --control-queue Q [flags]

Shows the depth of the work and control queues and of their dead-letter
queues: messages waiting, in flight (being processed) and delayed (retries
waiting for their backoff). With the jobs table (--table, or
S3REKEY_JOBS_TABLE), it also lists what the circuit breaker paused (a key,
a bucket or everything), why and since when, and --json prints
{"queues": [...], "paused": [...]}; s3rekey resume ends a pause. For a
dead-letter queue that holds messages, it reads up to 10 of them (leaving
them visible) and says why they are there: the reason s3rekey recorded, or
"moved by SQS after N receives" for one whose function crashed or timed
out before it could record one.

Examples:
  s3rekey status --work-queue s3rekey-work --control-queue s3rekey-control
  s3rekey status --endpoint http://127.0.0.1:4566 --work-queue s3rekey-work --control-queue s3rekey-control --json
`

// QueueDepth is one queue's message counts.
type QueueDepth struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	Waiting  int64  `json:"waiting"`
	InFlight int64  `json:"inFlight"`
	Delayed  int64  `json:"delayed"`
}

func queueDepth(ctx context.Context, api *sqs.Client, name, url string) (QueueDepth, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{
		"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"}})
	if err != nil {
		return QueueDepth{}, fmt.Errorf("%s: %w", url, err)
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(out.Attributes[k], 10, 64); return v }
	return QueueDepth{Name: name, URL: url, Waiting: n("ApproximateNumberOfMessages"),
		InFlight: n("ApproximateNumberOfMessagesNotVisible"), Delayed: n("ApproximateNumberOfMessagesDelayed")}, nil
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("status", statusUsage, stderr)
	work := fs.String("work-queue", "", "work queue `NAME|URL`")
	control := fs.String("control-queue", "", "control queue `NAME|URL`")
	asJSON := fs.Bool("json", false, "print JSON")
	table := fs.String("table", os.Getenv(jobs.EnvTable), "jobs `TABLE`: also list what the circuit breaker paused (default: $"+jobs.EnvTable+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
	}
	paused, err := pausesOf(ctx, dynamodb.NewFromConfig(cfg), *table)
	if err != nil {
		return fmt.Errorf("reading the pauses: %w", err)
	}
	sqsc := sqs.NewFromConfig(cfg)
	q, err := queuesFor(ctx, sqsc, *work, *control)
	if err != nil {
		return err
	}
	var depths []QueueDepth
	for _, x := range []struct{ name, url string }{{"work", q.Work}, {"work DLQ", q.WorkDLQ}, {"control", q.Control}, {"control DLQ", q.ControlDLQ}} {
		d, err := queueDepth(ctx, sqsc, x.name, x.url)
		if err != nil {
			return err
		}
		depths = append(depths, d)
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
	for _, x := range []struct {
		name, dlq, source string
		depth             int64
	}{{"work DLQ", q.WorkDLQ, q.Work, depths[1].Waiting}, {"control DLQ", q.ControlDLQ, q.Control, depths[3].Waiting}} {
		if x.depth == 0 {
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
