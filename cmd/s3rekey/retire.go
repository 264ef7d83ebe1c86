package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/retire"
)

const retireUsage = `Usage: s3rekey retire-key KEY --policy FILE [--disable | --status] [flags]

Walks the safe path to retire a KMS key, one step a run, and refuses to
skip one:
  (a) retire-key KEY            verifies that no object version in the
                                policy's buckets is under KEY (evidence written);
  (b) retire-key KEY --disable  does (a), then disables KEY and records when,
                                refusing while any version is, or may be, under it;
  (c) retire-key KEY --status   reports KEY's use since it was disabled
                                (GetKeyLastUsage, or the CloudTrail query) and
                                how long it has been quiet;
  (d) once quiet for --quiet-days, --status prints the ScheduleKeyDeletion
      command. It never runs it.
A key pending deletion with versions still under it is reported with the
commands to cancel the deletion and re-key them. Versions newer than a
metadata table's snapshot are found by listing and read with a HEAD.

Examples:
  s3rekey retire-key arn:aws:kms:us-east-1:111122223333:key/1234abcd-… --policy policy.json --mac-key alias/s3rekey-evidence
  s3rekey retire-key alias/acquired-co --policy policy.json --disable
  s3rekey retire-key alias/acquired-co --policy policy.json --status --quiet-days 30
`

func runRetireKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	key, rest := splitID(args)
	fs, conn := newAWSFlagSet("retire-key", retireUsage, stderr)
	var vf verifyFlags
	vf.register(fs)
	disable := fs.Bool("disable", false, "step (b): disable the key once nothing is under it, and record when")
	status := fs.Bool("status", false, "steps (c) and (d): the key's use since it was disabled, and what comes next")
	quietDays := fs.Int("quiet-days", 30, "how many `days` the key must be disabled and unused before its deletion is proposed")
	waitingDays := fs.Int("waiting-days", 30, "the ScheduleKeyDeletion waiting period to propose, 7 to 30 `days`")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if key == "" {
		return usageError{errors.New("retire-key needs a KEY (id, ARN or alias)")}
	}
	if *disable && *status {
		return usageError{errors.New("--disable and --status are separate steps")}
	}
	if *waitingDays < 7 || *waitingDays > 30 || *quietDays < 0 {
		return usageError{errors.New("--waiting-days must be from 7 to 30 (ScheduleKeyDeletion), --quiet-days not negative")}
	}
	cfg, err := conn.load(ctx)
	if err != nil {
		return err
	}
	kmsc := kms.NewFromConfig(cfg)
	arn, err := keyARN(ctx, kmsc, key)
	if err != nil {
		return err
	}
	run, err := vf.verify(ctx, cfg, "retire-key "+arn, arn, stderr)
	if err != nil {
		return err
	}
	rem := retire.Assess(run.res, arn)
	loc := retire.Location{Bucket: vf.reportBucket, Prefix: vf.reportPrefix, KMSKey: vf.reportKey, Owner: vf.reportOwner}
	s3c := s3.NewFromConfig(cfg, awsconf.S3Options(cfg))
	now := time.Now()
	out := struct {
		Key       string           `json:"key"`
		Remaining retire.Remaining `json:"remaining"`
		Evidence  string           `json:"evidence,omitempty"`
		Disabled  *retire.Record   `json:"disabled,omitempty"`
		Status    *retire.Status   `json:"status,omitempty"`
		Next      *retire.Next     `json:"next,omitempty"`
	}{Key: arn, Remaining: rem, Evidence: run.stored}
	var stepErr error
	switch {
	case *status:
		if loc.Bucket == "" {
			return usageError{errors.New("--status reads the retirement record: give --report-bucket")}
		}
		st, err := retire.ReadStatus(ctx, kmsc, s3c, loc, arn, now)
		if err != nil {
			return err
		}
		next := retire.Advise(st, rem, time.Duration(*quietDays)*24*time.Hour, *waitingDays)
		out.Status, out.Next = &st, &next
	case *disable:
		if vf.noEvidence {
			return usageError{errors.New("--disable writes the evidence it relies on: drop --no-evidence")}
		}
		rec, err := retire.Disable(ctx, kmsc, s3c, loc, rem, run.stored, now)
		if err != nil && errors.Is(err, retire.ErrNotClear) {
			stepErr = err
		} else if err != nil {
			return err
		} else {
			out.Disabled = &rec
		}
	default:
		if !rem.Clear() {
			stepErr = fmt.Errorf("%s is not clear: %s", arn, rem.Summary())
		}
	}
	if vf.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		return stepErr
	}
	printRetirement(stdout, arn, rem, run.stored, out.Disabled, out.Status, out.Next)
	return stepErr
}

func printRetirement(w io.Writer, arn string, rem retire.Remaining, evidence string, rec *retire.Record, st *retire.Status, next *retire.Next) {
	if rem.Clear() {
		fmt.Fprintf(w, "(a) no object version in the verified buckets is under %s\n", arn)
	} else {
		fmt.Fprintf(w, "(a) still under %s: %s\n", arn, rem.Summary())
		for i, v := range rem.Versions {
			if i == 20 {
				fmt.Fprintf(w, "    … and %d more in the evidence\n", len(rem.Versions)-20)
				break
			}
			fmt.Fprintf(w, "    s3://%s/%s version %s (%s)\n", v.Bucket, v.Key, v.VersionID, v.Encryption)
		}
	}
	if evidence != "" {
		fmt.Fprintf(w, "    evidence: %s\n", evidence)
	}
	if rec != nil {
		fmt.Fprintf(w, "(b) disabled %s at %s (recorded)\n", arn, rec.DisabledAt.Format(time.RFC3339))
	}
	if st == nil {
		return
	}
	fmt.Fprintf(w, "(c) %s is %s", arn, st.State)
	if st.Record != nil {
		fmt.Fprintf(w, ", disabled by retire-key at %s", st.Record.DisabledAt.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	switch {
	case st.LastUsageUnavailable != "":
		fmt.Fprintf(w, "    GetKeyLastUsage is unavailable (%s); look for its use in CloudTrail:\n    %s\n", st.LastUsageUnavailable, st.CloudTrailCommand)
	case st.LastUsed != nil:
		fmt.Fprintf(w, "    last used %s (%s)", st.LastUsed.Format(time.RFC3339), st.LastOperation)
		if st.UsedSinceDisabled {
			fmt.Fprint(w, ": AFTER it was disabled")
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintln(w, "    no use recorded since tracking began")
	}
	fmt.Fprintf(w, "    quiet for %s (since %s); CloudTrail has every call: %s\n", st.Quiet.Round(time.Minute), st.QuietSince.Format(time.RFC3339), st.CloudTrailCommand)
	if next.Warning != "" {
		fmt.Fprintf(w, "WARNING: %s\n", next.Warning)
	}
	if next.Wait != "" {
		fmt.Fprintf(w, "(d) not yet: %s\n", next.Wait)
	}
	if len(next.Commands) > 0 {
		if next.Ready {
			fmt.Fprintln(w, "(d) quiet long enough. s3rekey never schedules a deletion; to do it:")
		} else {
			fmt.Fprintln(w, "run:")
		}
		fmt.Fprintf(w, "    %s\n", strings.Join(next.Commands, "\n    "))
	}
}

// printRetirementDemo shows the demo's last step: the verification from
// the metadata tables and the old key's retirement.
func printRetirementDemo(w io.Writer, r *demo.Retirement) {
	if r == nil || r.Verified == nil {
		return
	}
	fmt.Fprintf(w, "\nVerified from the S3 Metadata live inventory tables (%d object requests)\n", r.ObjectRequests)
	for _, b := range r.Verified.Buckets {
		fmt.Fprintf(w, "  s3://%s\t%s: %d versions, %d compliant, %d non-compliant, %d exempt, %d unknown\n",
			b.Bucket, b.Source, b.Versions, b.Compliant, b.NonCompliant, b.Exempt, b.Unknown)
	}
	fmt.Fprintf(w, "  evidence\t%s\n", r.Evidence)
	if r.Refused != "" {
		fmt.Fprintf(w, "Retiring the old key: first %s\n", r.Refused)
		fmt.Fprintf(w, "  copied %d versions onto the target key and deleted their old versions, verified again\n", r.Rekeyed)
	}
	if r.Disabled != nil {
		fmt.Fprintf(w, "  (b) disabled %s at %s; next: s3rekey retire-key --status, and after the quiet period it prints ScheduleKeyDeletion\n",
			r.Disabled.KeyARN, r.Disabled.DisabledAt.Format(time.RFC3339))
	}
}
