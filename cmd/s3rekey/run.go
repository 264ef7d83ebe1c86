package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/policy"
)

const runUsage = `Usage: s3rekey run --policy FILE --work-queue Q --control-queue Q [--uploads-queue Q] [flags]

Runs the planner and encrypt functions in this process against the queues,
as Lambda's event source mappings would: on a laptop or a server, against
the emulator or real AWS. The uploads queue (--uploads-queue) is consumed
by encrypt invocations of its own, whatever the work queue holds, as the
stack's second event source mapping does. With --until-idle it stops once
the queues stay empty for a few seconds and prints the outcome counts
(JSON with --json); otherwise it runs until interrupted, then prints them.

Examples:
  s3rekey run --endpoint http://127.0.0.1:4566 --policy policy.json \
      --work-queue s3rekey-work --control-queue s3rekey-control --uploads-queue s3rekey-uploads --until-idle
  s3rekey run --policy policy.json --work-queue https://sqs.us-east-1.amazonaws.com/111122223333/s3rekey-work \
      --control-queue s3rekey-control --concurrency 16
`

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, conn := newAWSFlagSet("run", runUsage, stderr)
	policyPath := fs.String("policy", "", "policy `FILE` (JSON)")
	work := fs.String("work-queue", "", "work queue `NAME|URL`")
	control := fs.String("control-queue", "", "control queue `NAME|URL`")
	uploads := fs.String("uploads-queue", "", "uploads queue `NAME|URL` (a deployment's EventBridge uploads; empty: they share the work queue)")
	concurrency := fs.Int("concurrency", 4, "encrypt invocations at once")
	untilIdle := fs.Bool("until-idle", false, "stop when the queues stay empty")
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
	q, err := queuesFor(ctx, sqs.NewFromConfig(cfg), *work, *control, *uploads)
	if err != nil {
		return err
	}
	jc, err := localJobs(pol)
	if err != nil {
		return err
	}
	p := pipeline.New(cfg, pol, q, pipeline.Options{Concurrency: *concurrency, Jobs: jc, Logger: problemLogger(stderr)})
	return runPipeline(ctx, p, localRun{untilIdle: *untilIdle, settle: *settle, asJSON: *asJSON, resume: resumeHint(args)}, stdout, stderr)
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
