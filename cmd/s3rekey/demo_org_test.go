package main

import (
	"context"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/demo"
)

// TestOrgDemoVerifies runs "demo --org" small: the organization's jobs
// table with a deployed row per member and the totals, the central
// reports' checks, the late member enrolled mid-run.
func TestOrgDemoVerifies(t *testing.T) {
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"demo", "--org", "--objects", "20"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("demo --org exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"TOTAL         3 rows", "60/60", "20 of 20", "mid-run, on joining the OU", "refused (AccessDenied from the bucket policy)",
		"passed: every object of every account on its own target key", "joins OU"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo --org output lacks %q:\n%s", want, out)
		}
	}
	for _, acct := range demo.OrgMembers {
		if strings.Count(out, acct+"  ") < 2 || !strings.Contains(out, "deployed") {
			t.Errorf("demo --org: account %s lacks its row in the jobs view or the reports:\n%s", acct, out)
		}
	}
	if code := run(context.Background(), []string{"demo", "--org", "--objects", "-1"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("demo --org --objects -1: exit %d, want %d", code, exitUsage)
	}
}
