package demo

import (
	"context"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/orgview"
)

// TestOrgDemo runs the organization demo small: three members, the last
// enrolled when it joins the OU mid-run; every object of each account on
// its own target key; each account's central report rows equal to its
// jobs' counts (checkJobsAs); a member refused another's report by the
// bucket policy (aws:PrincipalOrgID with ${aws:PrincipalAccount}: IAM
// User Guide, reference_policies_variables.md); and the organization
// view, read through the reader roles, one deployed row per member with
// its jobs, the totals their sum.
func TestOrgDemo(t *testing.T) {
	// Bounded by cancelling, not by a deadline: the encrypt handler reads a
	// context deadline as its invocation's and requeues what it cannot
	// finish before it.
	ctx, cancel := context.WithCancel(context.Background())
	defer time.AfterFunc(60*time.Second, cancel).Stop()
	defer cancel()
	res, err := RunOrg(ctx, OrgOptions{Objects: 40})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
	if len(res.Accounts) != len(OrgMembers) || !res.Accounts[len(OrgMembers)-1].Late {
		t.Fatalf("accounts %+v, want %d, the last enrolled late", res.Accounts, len(OrgMembers))
	}
	var rows int64
	for _, a := range res.Accounts {
		if a.Objects != 40 || a.OnTarget != 40 || a.Rows != 40 || len(a.Jobs.Jobs) == 0 {
			t.Errorf("account %s: %d/%d objects on target, %d report rows, %d jobs; want 40/40 and a report row for each", a.ID, a.OnTarget, a.Objects, a.Rows, len(a.Jobs.Jobs))
		}
		rows += a.Rows
	}
	if !res.CrossReadRefused {
		t.Error("a member read another member's report")
	}
	total := orgview.Total(res.View)
	if len(res.View.Rows) != len(OrgMembers) || total.Jobs == 0 || total.Done < rows {
		t.Errorf("organization view: %d rows, totals %+v; want %d rows, done >= the %d reported rows", len(res.View.Rows), total, len(OrgMembers), rows)
	}
}
