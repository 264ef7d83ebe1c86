package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/awsconf"

	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
)

const backfillUsage = `Usage: s3rekey backfill (--manifest s3://… | --bucket B [--prefix P] [--versions]) --control-queue Q [flags]

Starts a backfill: sends an inventory job (the manifest.json of an S3
Inventory report) or a listing job (for buckets without inventory) to the
control queue, where the planner picks it up. With --local it then runs the
planner and encrypt functions in this process until the work is done, as
"s3rekey run --until-idle" does.

Before sending, it checks what would fail the job: the manifest exists and
matches its manifest.checksum; the bucket exists; with --policy (required
with --local), the policy manages the bucket and allows --versions. It
refuses with the reason and exit status 1. It prints the job's id on
stdout (with --json, as {"job": ID, …}).

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
	policyPath := fs.String("policy", "", "policy `FILE`: required with --local; without, the bucket is checked against it before sending")
	work := fs.String("work-queue", "", "with --local: work queue `NAME|URL`")
	asJSON := fs.Bool("json", false, "print the job id (and, with --local, the summary) as JSON on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var job planner.Job
	switch {
	case *manifest != "" && *bucket != "":
		return usageError{errors.New("give --manifest or --bucket, not both")}
	case *manifest != "":
		if _, _, err := planner.ParseS3URL(*manifest); err != nil {
			return usageError{fmt.Errorf("--manifest: %w", err)}
		}
		job = planner.Job{Type: planner.TypeInventory, Manifest: *manifest, JobID: jobs.InventoryID(*manifest)}
	case *bucket != "":
		job = planner.ListingJob(*bucket, *prefix, *versions, time.Now())
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
	var pol *policy.Policy
	if *local || *policyPath != "" {
		if pol, err = loadPolicy(*policyPath); err != nil {
			return err
		}
	}
	// Refused here, before anything is sent: what would fail the job.
	if err := checkBackfill(ctx, s3.NewFromConfig(cfg, awsconf.S3Options(cfg)), pol, job); err != nil {
		return err
	}
	controlURL := *control
	if *local {
		if _, err := resolveKeys(ctx, cfg, pol); err != nil {
			return err
		}
		q, err := queuesFor(ctx, sqsc, *work, *control, "")
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
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"job": job.JobID, "type": job.Type, "controlQueue": controlURL})
		}
		fmt.Fprintln(stdout, job.JobID)
		return nil
	}
	return runPipeline(ctx, p, localRun{untilIdle: true, settle: 3 * time.Second, asJSON: *asJSON, job: job.JobID, resume: resumeHint(args)}, stdout, stderr)
}
