// Command s3rekey is the operator CLI of s3rekey: the local AWS emulator,
// the demo, the local pipeline, backfills, plans, and queue operations.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes, documented in docs/cli.md.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (for demo: verification failed)
	exitUsage   = 2 // bad command line
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"emulator":   {"serve the local S3 + SQS + KMS emulator on a loopback address", runEmulator},
	"demo":       {"run the whole pipeline on the embedded emulator and verify it", runDemo},
	"estate":     {"list every bucket with its governing rule, settings, size and estimate", runEstate},
	"run":        {"run the planner and encrypt functions here, against any endpoint", runRun},
	"plan":       {"read an inventory and estimate a backfill, changing nothing", runPlan},
	"policy":     {"explain which rule governs a bucket, or check the policy against the account", runPolicy},
	"backfill":   {"start a backfill from an inventory or a listing", runBackfill},
	"status":     {"show queue and dead-letter queue depths", runStatus},
	"redrive":    {"move dead-lettered messages back to their queue", runRedrive},
	"jobs":       {"list recent jobs, or show one (jobs show ID)", runJobs},
	"report":     {"show a job's completion report, or save a copy", runReport},
	"resume":     {"end a pause of the circuit breaker once its cause is fixed", runResume},
	"verify":     {"prove which KMS key every object version is under, as signed evidence", runVerify},
	"retire-key": {"retire a KMS key safely: verify, disable, watch, then propose deletion", runRetireKey},
}

// usageError marks an error in the command line (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "s3rekey: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return exitUsage
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "s3rekey %s: %v\nRun 's3rekey %s --help' for usage.\n", args[0], err, args[0])
		return exitUsage
	default:
		fmt.Fprintf(stderr, "s3rekey %s: %v\n", args[0], err)
		return exitFailure
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: s3rekey <command> [flags]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 's3rekey <command> --help' for the flags and examples of a command.")
}

// newFlagSet makes a flag set whose usage text starts with a description
// and examples, and that reports errors instead of exiting.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// repeated is a flag that may be given many times.
type repeated []string

func (r *repeated) String() string     { return fmt.Sprint(*r) }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
