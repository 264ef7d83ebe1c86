package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

const emulatorUsage = `Usage: s3rekey emulator [flags]

Serves s3rekey's local AWS (S3 path-style, SQS, KMS) on one loopback
endpoint until interrupted, and prints the environment lines that point the
AWS CLI or any AWS SDK at it. Any credentials are accepted.

Examples:
  s3rekey emulator --addr 127.0.0.1:4566
  s3rekey emulator --eventbridge-rule 'photos=work-queue' \
      --eventbridge-rule 'inventory:manifest.checksum=control-queue'
  s3rekey emulator --fault 's3:UpdateObjectEncryption=SlowDown:0.05' --latency 's3:*=20ms'
`

func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("emulator", emulatorUsage, stderr)
	addr := fs.String("addr", "127.0.0.1:4566", "loopback `address` to listen on (port 0 picks a free port)")
	account := fs.String("account", emulator.DefaultAccount, "AWS `account` id that owns every resource")
	region := fs.String("region", emulator.DefaultRegion, "AWS `region` served")
	verbose := fs.Bool("verbose", false, "log every request to stderr")
	var rules, faults, latencies repeated
	fs.Var(&rules, "eventbridge-rule", "`BUCKET[:KEY_SUFFIX]=QUEUE_NAME`: deliver \"Object Created\" events of a bucket with EventBridge enabled to a queue (repeatable)")
	fs.Var(&faults, "fault", "`SERVICE:OPERATION=CODE:RATE`: fail a share of requests, e.g. s3:UpdateObjectEncryption=SlowDown:0.05 (repeatable)")
	fs.Var(&latencies, "latency", "`SERVICE:OPERATION=DURATION`: delay requests, e.g. s3:*=20ms (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts := emulator.Options{Addr: *addr, Account: *account, Region: *region}
	for _, r := range rules {
		rule, err := emulator.ParseEventBridgeRule(r)
		if err != nil {
			return usageError{err}
		}
		opts.EventBridgeRules = append(opts.EventBridgeRules, rule)
	}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	emu, err := emulator.New(opts)
	if err != nil {
		return usageError{err}
	}
	for _, f := range faults {
		fault, err := emulator.ParseFault(f)
		if err != nil {
			return usageError{err}
		}
		if err := emu.SetFault(fault); err != nil {
			return usageError{err}
		}
	}
	for _, l := range latencies {
		lat, err := emulator.ParseLatency(l)
		if err != nil {
			return usageError{err}
		}
		emu.SetLatency(lat)
	}
	if err := emu.Listen(ctx); err != nil {
		return err
	}
	defer emu.Close()
	fmt.Fprintf(stdout, "s3rekey emulator serving S3, SQS and KMS at %s (account %s, region %s)\n\n", emu.URL(), emu.Account(), emu.Region())
	fmt.Fprintln(stdout, "Point the AWS CLI or an SDK at it with:")
	for _, line := range emu.EnvLines() {
		fmt.Fprintln(stdout, "  export "+line)
	}
	fmt.Fprintf(stdout, "\nS3 clients must use path-style addressing (Go: s3.Options.UsePathStyle = true;\nAWS CLI: aws configure set default.s3.addressing_style path).\nRequest counts: %s/_emulator/counts\nPress Ctrl-C to stop.\n", emu.URL())
	<-ctx.Done()
	return nil
}
