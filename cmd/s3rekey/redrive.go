package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/planner"
)

const redriveUsage = `Usage: s3rekey redrive --queue NAME|URL [--table NAME] [--yes] [--json] [flags]

Moves the messages of a queue's dead-letter queue back to the queue (SQS
StartMessageMoveTask), after showing how many and asking for confirmation.
Dead letters of the work queue are object tasks, those of the uploads queue
uploads: once the cause (a key policy, a permission) is fixed, they run
again, an upload's on the uploads queue. With the jobs table
(--table, or S3REKEY_JOBS_TABLE), their jobs are reopened first: the
objects count as pending until they run again. Without a terminal, --yes is
required. With --json, the outcome is printed as JSON on stdout (and the
question, if asked, on stderr).

Examples:
  s3rekey redrive --queue s3rekey-work
  s3rekey redrive --queue s3rekey-uploads
  s3rekey redrive --queue s3rekey-control --yes
`

func runRedrive(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs, conn := newAWSFlagSet("redrive", redriveUsage, stderr)
	queueFlag := fs.String("queue", "", "the `NAME|URL` of the queue whose DLQ to move back")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	table := fs.String("table", os.Getenv(jobs.EnvTable), "jobs table `NAME`: reopen the dead letters' jobs (default: $"+jobs.EnvTable+")")
	asJSON := fs.Bool("json", false, "print the outcome as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// With --json, the words go to stderr and the outcome to stdout.
	say := stdout
	res := redriveResult{Reopened: map[string]int64{}}
	if *asJSON {
		say = stderr
		defer func() {
			if err == nil && res.URL != "" {
				_ = json.NewEncoder(stdout).Encode(res)
			}
		}()
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
	d, err := pipeline.Depth(ctx, sqsc, "dlq", dlqURL)
	if err != nil {
		return err
	}
	res.URL, res.DeadLetterQueue, res.Waiting, res.Status = url, dlqURL, d.Waiting, "nothing to move"
	if d.Waiting == 0 {
		fmt.Fprintf(say, "the dead-letter queue %s is empty: nothing to move\n", dlqURL)
		return nil
	}
	if !*yes {
		if !isTerminal(os.Stdin) && stdin == os.Stdin {
			return usageError{errors.New("no terminal to confirm on: pass --yes to move the messages")}
		}
		fmt.Fprintf(say, "Move %d messages from %s back to %s? [y/N] ", d.Waiting, dlqURL, url)
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(say, "nothing moved")
			res.Status = "declined"
			return nil
		}
	}
	if *table != "" {
		store := &jobs.Store{API: dynamodb.NewFromConfig(cfg), Table: *table}
		maxReceives, err := pipeline.MaxReceives(ctx, sqsc, url)
		if err != nil {
			return err
		}
		if res.Reopened, res.Stale, res.Reasons, err = reopenJobs(ctx, sqsc, store, dlqURL, d.Waiting, maxReceives, say); err != nil {
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
	res.Task, res.Status = aws.ToString(task.TaskHandle), "running"
	fmt.Fprintf(say, "moving %d messages from %s to %s (task %s)\n", d.Waiting, dlqURL, url, res.Task)
	for range 60 {
		tasks, err := sqsc.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(arns[0]), MaxResults: aws.Int32(1)})
		if err != nil {
			return fmt.Errorf("move status: %w", err)
		}
		if len(tasks.Results) > 0 {
			r := tasks.Results[0]
			if st := aws.ToString(r.Status); st != "RUNNING" {
				res.Status, res.Moved = strings.ToLower(st), r.ApproximateNumberOfMessagesMoved
				fmt.Fprintf(say, "move %s: %d messages moved\n", res.Status, res.Moved)
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
	fmt.Fprintln(say, "the move is still running; check with 's3rekey status'")
	return nil
}

// reopenJobs reads every dead letter once and reopens its job (once per
// dead letter, however often this runs), then makes them visible again for
// the move. Dead letters that are not job tasks are left as they are.
func reopenJobs(ctx context.Context, api *sqs.Client, store *jobs.Store, dlqURL string, waiting int64, maxReceives int, stdout io.Writer) (map[string]int64, int, map[string]int, error) {
	seen := map[string]bool{}
	reasons := map[string]int{}
	var handles []string
	byJob := map[string]int64{}
	stale := 0
	// Each dead letter is held (120 s) once read, so every round reads new
	// ones; the rounds are bounded by what the queue held.
	for round := int64(0); round < waiting/10+10 && int64(len(seen)) < waiting; round++ {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlqURL), MaxNumberOfMessages: 10, VisibilityTimeout: 120,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			return nil, 0, nil, fmt.Errorf("read dead letters: %w", err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			if seen[aws.ToString(m.MessageId)] {
				continue
			}
			seen[aws.ToString(m.MessageId)] = true
			reasons[deadLetterReason(m, maxReceives)]++
			handles = append(handles, aws.ToString(m.ReceiptHandle))
			t, err := messages.Decode(aws.ToString(m.Body))
			if err != nil || t.Parent == "" || !jobs.ValidID(t.JobID) || !jobs.ValidTaskID(t.ID) {
				if err == nil && t.Prior != "" {
					stale++ // a dead letter of an earlier version: its job cannot be reopened
				}
				continue // not a job's dead letter: moved back as it is
			}
			n := int64(0)
			for _, o := range t.Objects {
				if o.Skip == "" {
					n++
				}
			}
			if err := store.Reopen(ctx, t.JobID, t.ID); err != nil {
				return nil, 0, nil, err
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
			return nil, 0, nil, fmt.Errorf("release dead letters for the move: %w", err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byJob)) {
		fmt.Fprintf(stdout, "reopened job %s: %d objects pending again\n", id, byJob[id])
	}
	if stale > 0 {
		fmt.Fprintf(stdout, "%d dead letters from an earlier version of s3rekey: their objects are retried, and their jobs are not reopened\n", stale)
	}
	for _, r := range slices.Sorted(maps.Keys(reasons)) {
		fmt.Fprintf(stdout, "%d dead letters: %s\n", reasons[r], r)
	}
	return byJob, stale, reasons, nil
}

// deadLetterReason is why a dead letter is there: the reason s3rekey
// recorded on it, or, for one without, what that means. The functions
// dead-letter a message themselves, with its reason, on its queue's last
// receive; SQS moves one without a reason only when the invocation
// crashed or timed out before it could.
func deadLetterReason(m sqstypes.Message, maxReceives int) string {
	for _, name := range []string{encrypt.AttrReason, planner.AttrReason} {
		if a, ok := m.MessageAttributes[name]; ok && aws.ToString(a.StringValue) != "" {
			return aws.ToString(a.StringValue)
		}
	}
	after := "its queue's maxReceiveCount"
	if maxReceives > 0 {
		after = strconv.Itoa(maxReceives)
	}
	return "moved by SQS after " + after + " receives: the function crashed or timed out before it could record a reason"
}

// redriveResult is what redrive --json prints.
type redriveResult struct {
	URL             string `json:"queue"`
	DeadLetterQueue string `json:"deadLetterQueue"`
	Waiting         int64  `json:"deadLetters"`
	// Status is the move's: "nothing to move", "declined", "running",
	// "completed", "failed" or "cancelled".
	Status   string           `json:"status"`
	Task     string           `json:"task,omitempty"`
	Moved    int64            `json:"moved"`
	Reopened map[string]int64 `json:"reopenedJobs"`
	// Stale are dead letters of deliveries that lost their commit.
	Stale int `json:"stale"`
	// Reasons counts the dead letters read (with the jobs table) by why
	// they are there (deadLetterReason).
	Reasons map[string]int `json:"reasons,omitempty"`
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
