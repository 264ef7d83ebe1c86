package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/jobs"
)

const jobsUsage = `s3rekey jobs [--table NAME] [--limit N] [--stalled-after D] [--json]
s3rekey jobs --org [--ou OU] [--accounts IDS] [--regions REGIONS] [--json]
s3rekey jobs show ID [--table NAME] [--json]
s3rekey jobs cancel ID --reason "…" [--table NAME] [--json]

Lists recent jobs with their state, percent done, rate and ETA, or shows
one job's counts by outcome and reason and its report location. A job
that cannot proceed is failed, with its reason; one with no progress for
--stalled-after (default 20m) shows as stalled. cancel closes a job that
will never finish: its report is written with what was done, and says it
was cancelled and why. The table is the stack's jobs table (its name is in
the stack's outputs), or S3REKEY_JOBS_TABLE. With --org, every account of
the organization side by side, with totals and the accounts behind,
failing or not deployed (docs/operations.md, Organization view).`

const reportUsage = `s3rekey report ID [--table NAME] [--out FILE] [--json]

Shows a job's completion report: its summary and where its files are, or,
with --out, a local copy of every row as CSV (Batch Operations' columns,
then outcome, reason and dead letter).`

// reportOwnerDefault is the report bucket's owner from the environment
// the functions have too.
func reportOwnerDefault() string {
	if v := os.Getenv(jobs.EnvReportOwner); v != "" {
		return v
	}
	return os.Getenv(bucketowner.EnvAccountID)
}

// jobsFlags are the flags of the job commands.
func jobsFlagSet(name, usage string, stderr io.Writer) (*flag.FlagSet, *awsFlags, *string, *bool) {
	fs, conn := newAWSFlagSet(name, usage, stderr)
	table := fs.String("table", os.Getenv(jobs.EnvTable), "jobs table `NAME` (default: $"+jobs.EnvTable+")")
	asJSON := fs.Bool("json", false, "print JSON")
	return fs, conn, table, asJSON
}

func openStore(ctx context.Context, conn *awsFlags, table string) (*jobs.Store, *s3.Client, error) {
	if table == "" {
		return nil, nil, usageError{errors.New("--table NAME (or " + jobs.EnvTable + ") is required")}
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &jobs.Store{API: dynamodb.NewFromConfig(cfg), Table: table}, s3.NewFromConfig(cfg, awsconf.S3Options(cfg)), nil
}

// splitID takes a command's one positional argument, wherever the flags
// stand.
func splitID(args []string) (string, []string) {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") && (i == 0 || !strings.HasPrefix(args[i-1], "--") || strings.Contains(args[i-1], "=") || args[i-1] == "--json") {
			return a, append(append([]string{}, args[:i]...), args[i+1:]...)
		}
	}
	return "", args
}

func runJobs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	id, rest := "", args
	first, afterFirst := splitID(args)
	show := first == "show"
	if show {
		id, rest = splitID(afterFirst)
	}
	if first == "cancel" {
		return runJobsCancel(ctx, afterFirst, stdout, stderr)
	}
	fs, conn, table, asJSON := jobsFlagSet("jobs", jobsUsage, stderr)
	limit := fs.Int("limit", 20, "jobs to list")
	stalledAfter := fs.Duration("stalled-after", jobs.StallAfter, "show a planning or running job with no progress for this long as stalled")
	org := addOrgFlags(fs)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *stalledAfter <= 0 {
		return usageError{errors.New("--stalled-after must be positive")}
	}
	if org.enabled {
		if show {
			return usageError{errors.New("jobs show reads one account: run it without --org")}
		}
		return runJobsOrg(ctx, org, conn, *limit, *stalledAfter, *asJSON, stdout, stderr)
	}
	if show && id == "" {
		return usageError{errors.New("jobs show needs a job ID")}
	}
	store, _, err := openStore(ctx, conn, *table)
	if err != nil {
		return err
	}
	if show {
		j, err := store.Get(ctx, id)
		if err != nil {
			return err
		}
		markStalled(j, time.Now(), *stalledAfter)
		if *asJSON {
			return json.NewEncoder(stdout).Encode(j)
		}
		printJob(stdout, j)
		return nil
	}
	list, err := listJobs(ctx, store, *limit, *stalledAfter)
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []*jobs.Job{}
		}
		return json.NewEncoder(stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tKIND\tSTATE\tDONE\tOBJECTS\tRATE\tETA\tSOURCE\tNOTE")
	for _, j := range list {
		rate, eta := progress(j, time.Now())
		done := fmt.Sprintf("%5.1f%%", j.Percent())
		if isTerminal(stdout) && j.Kind != jobs.KindUploads {
			done = bar(j.Percent()) + " " + done
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", j.ID, j.Kind, j.State, done, j.Done, j.Planned, rate, eta, j.Source, note(j))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return showPauses(ctx, store.API, *table, stdout)
}

// listJobs reads what jobs lists of one deployment: its most recent jobs,
// those with no progress for stalledAfter shown as stalled. The --org view
// calls it for every account.
func listJobs(ctx context.Context, store *jobs.Store, limit int, stalledAfter time.Duration) ([]*jobs.Job, error) {
	list, err := store.List(ctx, limit)
	if err != nil {
		return nil, err
	}
	for _, j := range list {
		markStalled(j, time.Now(), stalledAfter)
	}
	return list, nil
}

// progress is a job's average rate since it started and the time left at
// that rate.
func progress(j *jobs.Job, now time.Time) (rate, eta string) {
	end := now
	if !j.Completed.IsZero() {
		end = j.Completed
	}
	secs := end.Sub(j.Created).Seconds()
	if secs <= 0 || j.Done == 0 {
		return "-", "-"
	}
	r := float64(j.Done) / secs
	rate = fmt.Sprintf("%.0f/s", r)
	switch {
	case j.Kind == jobs.KindUploads, j.Finished(), j.Terminal(), j.State == jobs.StateStalled:
		return rate, "-"
	case j.State == jobs.StatePlanning:
		return rate, "planning"
	}
	return rate, (time.Duration(float64(j.Planned-j.Done)/r) * time.Second).Round(time.Second).String()
}

func bar(percent float64) string {
	const width = 20
	n := int(percent / 100 * width)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func printJob(w io.Writer, j *jobs.Job) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "job\t%s (%s)\n", j.ID, j.Kind)
	fmt.Fprintf(tw, "source\t%s\n", j.Source)
	fmt.Fprintf(tw, "state\t%s, %.1f%% done\n", j.State, j.Percent())
	if n := note(j); n != "" {
		fmt.Fprintf(tw, "\t%s\n", n)
	}
	fmt.Fprintf(tw, "created\t%s\n", j.Created.Format(time.RFC3339))
	if !j.Ended.IsZero() {
		fmt.Fprintf(tw, "%s\t%s\n", j.State, j.Ended.Format(time.RFC3339))
	}
	if !j.Completed.IsZero() {
		fmt.Fprintf(tw, "completed\t%s\n", j.Completed.Format(time.RFC3339))
	}
	if !j.Progressed.IsZero() {
		fmt.Fprintf(tw, "last progress\t%s\n", j.Progressed.Format(time.RFC3339))
	}
	if j.Kind != jobs.KindUploads {
		fmt.Fprintf(tw, "files read\t%d of %d\n", j.UnitsDone, j.UnitsTotal)
		fmt.Fprintf(tw, "rows\t%d\n", j.Rows)
	}
	fmt.Fprintf(tw, "objects\t%d planned, %d done\n", j.Planned, j.Done)
	for _, k := range sortedKeys(j.Outcomes) {
		fmt.Fprintf(tw, "  %s\t%d\n", k, j.Outcomes[k])
	}
	switch {
	case j.ReportManifest != "":
		fmt.Fprintf(tw, "report\t%s\n", j.ReportManifest)
	case j.Report != "" && j.Terminal():
		fmt.Fprintf(tw, "report\t%s (no manifest: the job %s; the parts written before are there)\n", j.Report, j.State)
	case j.Report != "":
		fmt.Fprintf(tw, "report\t%s (manifest written when the job completes)\n", j.Report)
	}
	_ = tw.Flush()
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	id, rest := splitID(args)
	fs, conn, table, asJSON := jobsFlagSet("report", reportUsage, stderr)
	out := fs.String("out", "", "write every row to this local CSV `FILE`")
	owner := fs.String("report-owner", reportOwnerDefault(), "`ACCOUNT` expected to own the report bucket; S3 refuses the request when it does not (default: $"+jobs.EnvReportOwner+", else $"+bucketowner.EnvAccountID+")")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if id == "" {
		return usageError{errors.New("report needs a job ID")}
	}
	store, s3c, err := openStore(ctx, conn, *table)
	if err != nil {
		return err
	}
	j, err := store.Get(ctx, id)
	if err != nil {
		return err
	}
	if j.ReportManifest == "" {
		if j.State == jobs.StateFailed {
			return fmt.Errorf("job %s failed (%s): it has no report manifest; the parts written before it failed are under %s", id, j.TerminalReason, j.Report)
		}
		return fmt.Errorf("job %s is %s: its report manifest is written when it completes (parts so far under %s)", id, j.State, j.Report)
	}
	rows, err := jobs.ReadReport(ctx, bucketowner.Client{Client: s3c, Owner: *owner}, j.ReportManifest)
	if err != nil {
		return err
	}
	byOutcome := map[string]int64{}
	for _, r := range rows {
		byOutcome[r.Outcome.String()]++
	}
	if *out != "" {
		if err := writeRows(*out, rows); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"job": j.ID, "state": j.State, "reason": j.TerminalReason, "manifest": j.ReportManifest, "rows": len(rows),
			"byOutcome": byOutcome, "localCopy": *out})
	}
	fmt.Fprintf(stdout, "job %s: %s\n", j.ID, j.State)
	if j.Terminal() {
		fmt.Fprintf(stdout, "%s %s: %s; the report lists what was done before\n", j.State, j.Ended.Format(time.RFC3339), j.TerminalReason)
	}
	fmt.Fprintf(stdout, "report %s: %d objects listed\n", j.ReportManifest, len(rows))
	for _, k := range sortedKeys(byOutcome) {
		fmt.Fprintf(stdout, "  %s  %d\n", k, byOutcome[k])
	}
	if *out != "" {
		fmt.Fprintf(stdout, "rows written to %s\n", *out)
	}
	return nil
}

func writeRows(path string, rows []jobs.Row) error {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(jobs.ReportSchema, ", ", ",") + "\n")
	for _, r := range rows {
		b.WriteString(jobs.CSVLine(r))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
