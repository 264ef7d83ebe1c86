package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/s3rekey/s3rekey/internal/demo"
)

// runOrgDemo runs the organization demo with objects per member account
// (0: the demo's default) and prints what it found.
func runOrgDemo(ctx context.Context, objects int, stdout, stderr io.Writer) error {
	if objects < 0 || objects > 100_000 {
		return usageError{fmt.Errorf("--objects with --org must be from 1 to 100000, not %d", objects)}
	}
	res, err := demo.RunOrg(ctx, demo.OrgOptions{Objects: objects, Progress: stdout})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nThe organization's jobs (s3rekey jobs --org, through each member's reader role)\n")
	if err := writeOrgTable(stdout, res.View, jobsOrgHeader, jobsOrgCells); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nCentral reports (s3://%s) checked against every account's objects\n", demo.CentralReports)
	fmt.Fprintf(tw, "  ACCOUNT\tENROLLED\tOBJECTS ON ITS TARGET KEY\tREPORT ROWS\tJOBS\n")
	for _, a := range res.Accounts {
		when := "at the start"
		if a.Late {
			when = "mid-run, on joining the OU"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d of %d\t%d\t%d\n", a.ID, when, a.OnTarget, a.Objects, a.Rows, len(a.Jobs.Jobs))
	}
	refused := "refused (AccessDenied from the bucket policy)"
	if !res.CrossReadRefused {
		refused = "ALLOWED"
	}
	fmt.Fprintf(tw, "  a member reading another member's report\t%s\n", refused)
	_ = tw.Flush()
	if len(res.Failures) > 0 {
		for _, f := range res.Failures {
			fmt.Fprintln(stderr, "FAIL", f)
		}
		return fmt.Errorf("verification failed: %d problems", len(res.Failures))
	}
	fmt.Fprintf(stdout, "\npassed: every object of every account on its own target key, every account's report rows those of its jobs\ndone in %s\n",
		res.Elapsed.Round(100_000_000))
	return nil
}
