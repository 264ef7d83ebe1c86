package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// localRun says how run and backfill --local run the pipeline here.
type localRun struct {
	untilIdle bool
	settle    time.Duration
	asJSON    bool
	// job is the job backfill --local started ("" for run).
	job string
	// resume is the command that goes on after an interrupt.
	resume string
}

// failed reports whether the run should stop for a failed job: its own
// (backfill --local), or any (run --until-idle).
func (o localRun) failed(t *pipeline.Tally) bool {
	if o.job != "" {
		_, failed := t.JobFailed(o.job)
		return failed
	}
	return len(t.Snapshot().FailedJobs) > 0
}

// runSummary is what a local run prints with --json: the job it started,
// if any, and the tally.
type runSummary struct {
	Job string `json:"job,omitempty"`
	pipeline.Snapshot
}

// runPipeline runs p, shows progress on stderr, and prints the summary.
// With --until-idle it stops within a second of a job failing (its own
// job, for backfill --local; the planner fails a job only for what no
// retry can mend); a run in which any job failed returns the failures,
// and an interrupt returns an error that says how to go on.
func runPipeline(ctx context.Context, p *pipeline.Pipeline, o localRun, stdout, stderr io.Writer) error {
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	stop := make(chan struct{})
	done := make(chan struct{})
	tty := isTerminal(stderr)
	began := time.Now()
	go func() {
		defer close(done)
		every := 5 * time.Second
		if tty {
			every = 250 * time.Millisecond
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		// A failed job is looked for often: the run stops within a second.
		watch := time.NewTicker(200 * time.Millisecond)
		defer watch.Stop()
		for {
			select {
			case <-stop:
				if tty {
					fmt.Fprintln(stderr)
				}
				return
			case <-watch.C:
				if o.untilIdle && o.failed(p.Tally) {
					stopRun()
				}
			case <-tick.C:
				line := "  " + progressLine(p.Tally.Snapshot(), time.Since(began))
				if tty {
					fmt.Fprint(stderr, "\r"+line+"\x1b[K")
				} else {
					fmt.Fprintln(stderr, line)
				}
			}
		}
	}()
	var err error
	if o.untilIdle {
		err = p.Runner.RunUntilIdle(runCtx, o.settle)
	} else {
		err = p.Runner.Run(runCtx)
	}
	interrupted := ctx.Err() != nil
	if errors.Is(err, context.Canceled) {
		err = nil // stopped: print what was done
	}
	close(stop)
	<-done
	s := p.Tally.Snapshot()
	if encErr := printSummary(stdout, s, o); encErr != nil {
		return encErr
	}
	switch {
	case err != nil:
		return err
	case len(s.FailedJobs) > 0:
		return failedJobsError(s.FailedJobs)
	case interrupted && o.untilIdle:
		return fmt.Errorf("interrupted: the work left stays in the queues; go on with\n  %s", o.resume)
	}
	return nil
}

func printSummary(stdout io.Writer, s pipeline.Snapshot, o localRun) error {
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(runSummary{Job: o.job, Snapshot: s})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if o.job != "" {
		fmt.Fprintf(tw, "job\t%s\n", o.job)
	}
	fmt.Fprintln(tw, "outcome\tobjects")
	for _, k := range s.SortedOutcomes() {
		fmt.Fprintf(tw, "%s\t%d\n", k, s.Outcomes[k])
	}
	fmt.Fprintf(tw, "total\t%d\n", s.Total())
	if len(s.Retries) > 0 {
		fmt.Fprintf(tw, "attempts tried again\t%d (%d throttled)\n", sum(s.Retries), s.Throttled)
	}
	return tw.Flush()
}

// failedJobsError names every job that failed, with its reason.
func failedJobsError(failed map[string]string) error {
	var b strings.Builder
	for i, id := range sortedKeys(failed) {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "job %s failed: %s", id, failed[id])
	}
	b.WriteString("\n(s3rekey jobs show ID shows it; the reason is also on its message in the control DLQ)")
	return errors.New(b.String())
}

// progressLine is a local run's progress: objects with their final
// outcome (not attempts), of the rows the planner has counted so far, the
// rate and time left, and the attempts throttled and retried apart.
func progressLine(s pipeline.Snapshot, elapsed time.Duration) string {
	done := s.Total()
	line := fmt.Sprintf("%d objects done", done)
	if rows := s.InventoryRows; rows > 0 && done <= rows {
		line = fmt.Sprintf("%d of %d objects done (%.1f%%)", done, rows, float64(done)/float64(rows)*100)
		if secs := elapsed.Seconds(); done > 0 && secs > 0 && done < rows {
			rate := float64(done) / secs
			left := time.Duration(float64(rows-done)/rate) * time.Second
			line += fmt.Sprintf(", %.0f/s, %s left", rate, left.Round(time.Second))
		}
	}
	if retried := sum(s.Retries); retried > 0 {
		line += fmt.Sprintf("; %d throttled, %d other retries", s.Throttled, retried-s.Throttled)
	}
	return line
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// resumeHint is the command that goes on with an interrupted local run:
// run --until-idle with the same connection, policy and queues.
func resumeHint(args []string) string {
	keep := []string{"s3rekey", "run"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		switch name {
		case "endpoint", "region", "policy", "work-queue", "control-queue", "uploads-queue", "concurrency":
			keep = append(keep, a)
			if !strings.Contains(a, "=") && i+1 < len(args) {
				i++
				keep = append(keep, args[i])
			}
		}
	}
	return strings.Join(append(keep, "--until-idle"), " ")
}
