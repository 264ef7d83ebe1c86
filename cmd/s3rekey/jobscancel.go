package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/s3rekey/s3rekey/internal/jobs"
)

// runJobsCancel is `jobs cancel ID --reason "…"`: it closes a job that
// will never finish and writes its report.
func runJobsCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	id, rest := splitID(args)
	fs, conn, table, asJSON := jobsFlagSet("jobs cancel", jobsUsage, stderr)
	reason := fs.String("reason", "", "why the job is closed (required; shown by jobs and in its report)")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	switch {
	case id == "":
		return usageError{errors.New("jobs cancel needs a job ID")}
	case strings.TrimSpace(*reason) == "":
		return usageError{errors.New(`jobs cancel needs --reason "why"`)}
	}
	store, _, err := openStore(ctx, conn, *table)
	if err != nil {
		return err
	}
	// The report goes where the functions write it (S3REKEY_REPORT_*).
	jc, err := jobs.ConfigFromEnv()
	if err != nil {
		return usageError{err}
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
	}
	jc.Table = store.Table
	_, committer := jc.Wire(cfg)
	j, err := committer.Cancel(ctx, id, *reason)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(j)
	}
	fmt.Fprintf(stdout, "job %s cancelled %s: %s\n", j.ID, j.Ended.Format(time.RFC3339), j.TerminalReason)
	if j.ReportManifest != "" {
		fmt.Fprintf(stdout, "report %s (what was done before the cancellation)\n", j.ReportManifest)
	} else {
		fmt.Fprintf(stdout, "no report: %s is not set\n", jobs.EnvReportBucket)
	}
	return nil
}

// markStalled shows a planning or running job with no progress for after
// as stalled.
func markStalled(j *jobs.Job, now time.Time, after time.Duration) {
	if j.Kind != jobs.KindUploads && j.Stalled(now, after) {
		j.State = jobs.StateStalled
	}
}

// note says why a job is where it is: a failed or cancelled job's reason,
// or how long a stalled one has not moved.
func note(j *jobs.Job) string {
	switch {
	case j.Terminal():
		return j.TerminalReason
	case j.State == jobs.StateStalled:
		return fmt.Sprintf("no progress since %s: see docs/operations.md, Resuming a stalled job", j.LastProgress().Format(time.RFC3339))
	}
	return ""
}
