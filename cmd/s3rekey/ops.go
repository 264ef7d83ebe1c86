package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/keyalias"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
)

// stdin is where redrive reads its confirmation; tests replace it.
var stdin io.Reader = os.Stdin

// awsFlags are the connection flags every AWS-facing command takes.
type awsFlags struct{ endpoint, region string }

// newAWSFlagSet is newFlagSet with the connection flags of every command
// that talks to AWS.
func newAWSFlagSet(name, usage string, stderr io.Writer) (*flag.FlagSet, *awsFlags) {
	fs := newFlagSet(name, usage, stderr)
	conn := &awsFlags{}
	fs.StringVar(&conn.endpoint, "endpoint", "", "endpoint `URL` for every AWS service (the emulator: http://127.0.0.1:4566); AWS_ENDPOINT_URL works too")
	fs.StringVar(&conn.region, "region", "", "AWS `region` (default: from the environment or the AWS config)")
	return fs, conn
}

func (a *awsFlags) load(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconf.Load(ctx, a.endpoint)
	if err != nil {
		return cfg, err
	}
	if a.region != "" {
		cfg.Region = a.region
	}
	if cfg.Region == "" {
		return cfg, usageError{errors.New("no AWS region: pass --region or set AWS_REGION")}
	}
	return cfg, nil
}

func loadPolicy(path string) (*policy.Policy, error) {
	if path == "" {
		return nil, usageError{errors.New("--policy FILE is required")}
	}
	p, err := policy.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

// resolveKeys resolves the KMS aliases a policy names its keys by
// (DescribeKey), naming an alias that does not resolve.
func resolveKeys(ctx context.Context, cfg aws.Config, pol *policy.Policy) (*policy.Policy, error) {
	return keyalias.Resolve(ctx, kms.NewFromConfig(cfg), pol)
}

// queuesFor resolves the work and control queues (names or URLs) and
// their dead-letter queues.
func queuesFor(ctx context.Context, api pipeline.QueueAPI, work, control string) (pipeline.Queues, error) {
	var q pipeline.Queues
	var err error
	if work == "" || control == "" {
		return q, usageError{errors.New("--work-queue and --control-queue are required")}
	}
	if q.Work, q.WorkDLQ, err = pipeline.ResolveQueue(ctx, api, work); err != nil {
		return q, err
	}
	if q.Control, q.ControlDLQ, err = pipeline.ResolveQueue(ctx, api, control); err != nil {
		return q, err
	}
	if q.WorkDLQ == "" || q.ControlDLQ == "" {
		return q, errors.New("the work and control queues need a redrive policy to a dead-letter queue")
	}
	return q, nil
}

const runUsage = `Usage: s3rekey run --policy FILE --work-queue Q --control-queue Q [flags]

Runs the planner and encrypt functions in this process against the queues,
as Lambda's event source mappings would: on a laptop or a server, against
the emulator or real AWS. With --until-idle it stops once both queues stay
empty for a few seconds and prints the outcome counts (JSON with --json);
otherwise it runs until interrupted, then prints them.

Examples:
  s3rekey run --endpoint http://127.0.0.1:4566 --policy policy.json \
      --work-queue s3rekey-work --control-queue s3rekey-control --until-idle
  s3rekey run --policy policy.json --work-queue https://sqs.us-east-1.amazonaws.com/111122223333/s3rekey-work \
      --control-queue s3rekey-control --concurrency 16
`

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("run", runUsage, stderr)
	policyPath := fs.String("policy", "", "policy `FILE` (JSON)")
	work := fs.String("work-queue", "", "work queue `NAME|URL`")
	control := fs.String("control-queue", "", "control queue `NAME|URL`")
	concurrency := fs.Int("concurrency", 4, "encrypt invocations at once")
	untilIdle := fs.Bool("until-idle", false, "stop when both queues stay empty")
	settle := fs.Duration("settle", 3*time.Second, "with --until-idle: how long the queues must stay empty")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 1000 {
		return usageError{fmt.Errorf("--concurrency must be from 1 to 1000")}
	}
	pol, err := loadPolicy(*policyPath)
	if err != nil {
		return err
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
	}
	if _, err := resolveKeys(ctx, cfg, pol); err != nil {
		return err
	}
	q, err := queuesFor(ctx, sqs.NewFromConfig(cfg), *work, *control)
	if err != nil {
		return err
	}
	jc, err := localJobs(pol)
	if err != nil {
		return err
	}
	p := pipeline.New(cfg, pol, q, pipeline.Options{Concurrency: *concurrency, Jobs: jc, Logger: problemLogger(stderr)})
	return runPipeline(ctx, p, *untilIdle, *settle, *asJSON, stdout, stderr)
}

// localJobs reads the jobs settings of a local run from the environment, as
// the functions do, and checks that they carry the policy's budgets.
func localJobs(pol *policy.Policy) (jobs.Config, error) {
	jc, err := jobs.ConfigFromEnv()
	if err == nil {
		err = encrypt.Config{Jobs: jc}.Check(pol)
	}
	if err != nil {
		return jc, usageError{err}
	}
	return jc, nil
}

// problemLogger logs a local run's warnings and errors (a handler that
// failed, a send that will be retried) to stderr; the functions' routine
// lines stay out of the way of the progress and the summary.
func problemLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// runPipeline runs p, shows progress on stderr, and prints the summary.
func runPipeline(ctx context.Context, p *pipeline.Pipeline, untilIdle bool, settle time.Duration, asJSON bool, stdout, stderr io.Writer) error {
	stop := make(chan struct{})
	done := make(chan struct{})
	tty := isTerminal(stderr)
	go func() {
		defer close(done)
		every := 5 * time.Second
		if tty {
			every = 250 * time.Millisecond
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				if tty {
					fmt.Fprintln(stderr)
				}
				return
			case <-tick.C:
				s := p.Tally.Snapshot()
				line := fmt.Sprintf("  %d objects done (%d updated), %d invocations", s.Total(), s.Outcomes["updated"], s.Invocations)
				if tty {
					fmt.Fprint(stderr, "\r"+line)
				} else {
					fmt.Fprintln(stderr, line)
				}
			}
		}
	}()
	var err error
	if untilIdle {
		err = p.Runner.RunUntilIdle(ctx, settle)
	} else {
		err = p.Runner.Run(ctx)
		if errors.Is(err, context.Canceled) {
			err = nil // interrupted: print what was done
		}
	}
	close(stop)
	<-done
	s := p.Tally.Snapshot()
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if encErr := enc.Encode(s); encErr != nil {
			return encErr
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "outcome\tobjects")
		for _, k := range s.SortedOutcomes() {
			fmt.Fprintf(tw, "%s\t%d\n", k, s.Outcomes[k])
		}
		fmt.Fprintf(tw, "total\t%d\n", s.Total())
		_ = tw.Flush()
	}
	return err
}

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
		return enc.Encode(rep)
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

const backfillUsage = `Usage: s3rekey backfill (--manifest s3://… | --bucket B [--prefix P] [--versions]) --control-queue Q [flags]

Starts a backfill: sends an inventory job (the manifest.json of an S3
Inventory report) or a listing job (for buckets without inventory) to the
control queue, where the planner picks it up. With --local it then runs the
planner and encrypt functions in this process until the work is done, as
"s3rekey run --until-idle" does.

Examples:
  s3rekey backfill --manifest s3://inventory/reports/photos/daily/2026-11-01T01-00Z/manifest.json --control-queue s3rekey-control
  s3rekey backfill --bucket photos --prefix 2019/ --control-queue s3rekey-control
  s3rekey backfill --endpoint http://127.0.0.1:4566 --bucket photos --local \
      --policy policy.json --work-queue s3rekey-work --control-queue s3rekey-control
`

func runBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("backfill", backfillUsage, stderr)
	manifest := fs.String("manifest", "", "`s3://` URL of an inventory's manifest.json")
	bucket := fs.String("bucket", "", "`BUCKET` to list (when it has no inventory)")
	prefix := fs.String("prefix", "", "with --bucket: only keys under this `PREFIX`")
	versions := fs.Bool("versions", false, "with --bucket: every version, not only current ones (the policy must say versions: all)")
	control := fs.String("control-queue", "", "control queue `NAME|URL`")
	local := fs.Bool("local", false, "run the planner and encrypt functions here until the backfill is done")
	policyPath := fs.String("policy", "", "with --local: policy `FILE`")
	work := fs.String("work-queue", "", "with --local: work queue `NAME|URL`")
	asJSON := fs.Bool("json", false, "with --local: print the summary as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var job planner.Job
	switch {
	case *manifest != "" && *bucket != "":
		return usageError{errors.New("give --manifest or --bucket, not both")}
	case *manifest != "":
		job = planner.Job{Type: planner.TypeInventory, Manifest: *manifest, JobID: jobs.InventoryID(*manifest)}
	case *bucket != "":
		job = planner.Job{Type: planner.TypeListing, Bucket: *bucket, Prefix: *prefix, Versions: *versions,
			JobID: jobs.ListingID(*bucket, *prefix, *versions, time.Now())}
	default:
		return usageError{errors.New("give --manifest s3://…/manifest.json or --bucket NAME")}
	}
	if (*prefix != "" || *versions) && *bucket == "" {
		return usageError{errors.New("--prefix and --versions go with --bucket")}
	}
	body, err := job.Encode()
	if err != nil {
		return usageError{err}
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
	}
	sqsc := sqs.NewFromConfig(cfg)
	var p *pipeline.Pipeline
	controlURL := *control
	if *local {
		pol, err := loadPolicy(*policyPath)
		if err != nil {
			return err
		}
		if _, err := resolveKeys(ctx, cfg, pol); err != nil {
			return err
		}
		q, err := queuesFor(ctx, sqsc, *work, *control)
		if err != nil {
			return err
		}
		jc, err := localJobs(pol)
		if err != nil {
			return err
		}
		p, controlURL = pipeline.New(cfg, pol, q, pipeline.Options{Jobs: jc, Logger: problemLogger(stderr)}), q.Control
	} else {
		if controlURL == "" {
			return usageError{errors.New("--control-queue is required")}
		}
		if controlURL, _, err = pipeline.ResolveQueue(ctx, sqsc, controlURL); err != nil {
			return err
		}
	}
	if errs := (&queue.Sender{API: sqsc}).Send(ctx, controlURL, []queue.Message{{Body: body}}); errs[0] != nil {
		return fmt.Errorf("send the job: %w", errs[0])
	}
	fmt.Fprintf(stderr, "sent %s job %s to %s\n", job.Type, job.JobID, controlURL)
	if p == nil {
		return nil
	}
	return runPipeline(ctx, p, true, 3*time.Second, *asJSON, stdout, stderr)
}

const statusUsage = `Usage: s3rekey status --work-queue Q --control-queue Q [flags]

Shows the depth of the work and control queues and of their dead-letter
queues: messages waiting, in flight (being processed) and delayed (retries
waiting for their backoff).

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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
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
	if *asJSON {
		return json.NewEncoder(stdout).Encode(depths)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "queue\twaiting\tin flight\tdelayed\turl")
	for _, d := range depths {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", d.Name, d.Waiting, d.InFlight, d.Delayed, d.URL)
	}
	return tw.Flush()
}

const redriveUsage = `Usage: s3rekey redrive --queue NAME|URL [--table NAME] [--yes] [flags]

Moves the messages of a queue's dead-letter queue back to the queue (SQS
StartMessageMoveTask), after showing how many and asking for confirmation.
Dead letters of the work queue are object tasks: once the cause (a key
policy, a permission) is fixed, they run again. With the jobs table
(--table, or S3REKEY_JOBS_TABLE), their jobs are reopened first: the
objects count as pending until they run again. Without a terminal, --yes is
required.

Examples:
  s3rekey redrive --queue s3rekey-work
  s3rekey redrive --queue s3rekey-control --yes
`

func runRedrive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("redrive", redriveUsage, stderr)
	queueFlag := fs.String("queue", "", "the `NAME|URL` of the queue whose DLQ to move back")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	table := fs.String("table", os.Getenv(jobs.EnvTable), "jobs table `NAME`: reopen the dead letters' jobs (default: $"+jobs.EnvTable+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *queueFlag == "" {
		return usageError{errors.New("--queue is required")}
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
	}
	sqsc := sqs.NewFromConfig(cfg)
	url, dlqURL, err := pipeline.ResolveQueue(ctx, sqsc, *queueFlag)
	if err != nil {
		return err
	}
	if dlqURL == "" {
		return fmt.Errorf("queue %s has no dead-letter queue", url)
	}
	d, err := queueDepth(ctx, sqsc, "dlq", dlqURL)
	if err != nil {
		return err
	}
	if d.Waiting == 0 {
		fmt.Fprintf(stdout, "the dead-letter queue %s is empty: nothing to move\n", dlqURL)
		return nil
	}
	if !*yes {
		if !isTerminal(os.Stdin) && stdin == os.Stdin {
			return usageError{errors.New("no terminal to confirm on: pass --yes to move the messages")}
		}
		fmt.Fprintf(stdout, "Move %d messages from %s back to %s? [y/N] ", d.Waiting, dlqURL, url)
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout, "nothing moved")
			return nil
		}
	}
	if *table != "" {
		store := &jobs.Store{API: dynamodb.NewFromConfig(cfg), Table: *table}
		if err := reopenJobs(ctx, sqsc, store, dlqURL, d.Waiting, stdout); err != nil {
			return err
		}
	}
	arns, err := queueARNs(ctx, sqsc, dlqURL, url)
	if err != nil {
		return err
	}
	task, err := sqsc.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(arns[0]), DestinationArn: aws.String(arns[1])})
	if err != nil {
		return fmt.Errorf("start the move: %w", err)
	}
	fmt.Fprintf(stdout, "moving %d messages from %s to %s (task %s)\n", d.Waiting, dlqURL, url, aws.ToString(task.TaskHandle))
	for range 60 {
		tasks, err := sqsc.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(arns[0]), MaxResults: aws.Int32(1)})
		if err != nil {
			return fmt.Errorf("move status: %w", err)
		}
		if len(tasks.Results) > 0 {
			r := tasks.Results[0]
			if st := aws.ToString(r.Status); st != "RUNNING" {
				fmt.Fprintf(stdout, "move %s: %d messages moved\n", strings.ToLower(st), r.ApproximateNumberOfMessagesMoved)
				if st != "COMPLETED" {
					return fmt.Errorf("move task ended %s: %s", st, aws.ToString(r.FailureReason))
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	fmt.Fprintln(stdout, "the move is still running; check with 's3rekey status'")
	return nil
}

// reopenJobs reads every dead letter once and reopens its job (once per
// dead letter, however often this runs), then makes them visible again for
// the move. Dead letters that are not job tasks are left as they are.
func reopenJobs(ctx context.Context, api *sqs.Client, store *jobs.Store, dlqURL string, waiting int64, stdout io.Writer) error {
	seen := map[string]bool{}
	var handles []string
	byJob := map[string]int64{}
	stale := 0
	// Each dead letter is held (120 s) once read, so every round reads new
	// ones; the rounds are bounded by what the queue held.
	for round := int64(0); round < waiting/10+10 && int64(len(seen)) < waiting; round++ {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlqURL), MaxNumberOfMessages: 10, VisibilityTimeout: 120})
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			if seen[aws.ToString(m.MessageId)] {
				continue
			}
			seen[aws.ToString(m.MessageId)] = true
			handles = append(handles, aws.ToString(m.ReceiptHandle))
			t, err := messages.Decode(aws.ToString(m.Body))
			if err != nil || t.Prior == "" {
				continue
			}
			n := int64(0)
			for _, o := range t.Objects {
				if o.Skip == "" {
					n++
				}
			}
			wasStale, err := store.Reopen(ctx, t.JobID, t.ID, t.ParentToken, t.Prior, n)
			if err != nil {
				return err
			}
			if wasStale {
				stale++
				continue
			}
			byJob[t.JobID] += n
		}
	}
	for start := 0; start < len(handles); start += 10 {
		var entries []sqstypes.ChangeMessageVisibilityBatchRequestEntry
		for i, h := range handles[start:min(start+10, len(handles))] {
			entries = append(entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h), VisibilityTimeout: 0})
		}
		if _, err := api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(dlqURL), Entries: entries}); err != nil {
			return fmt.Errorf("release dead letters for the move: %w", err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byJob)) {
		fmt.Fprintf(stdout, "reopened job %s: %d objects pending again\n", id, byJob[id])
	}
	if stale > 0 {
		fmt.Fprintf(stdout, "%d dead letters of deliveries that lost their commit: they count nothing\n", stale)
	}
	return nil
}

func queueARNs(ctx context.Context, api *sqs.Client, urls ...string) ([]string, error) {
	var arns []string
	for _, u := range urls {
		out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u), AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		arns = append(arns, out.Attributes["QueueArn"])
	}
	return arns, nil
}
