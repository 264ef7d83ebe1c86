package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/permissions"
)

// TestUploadsJobIndexNeedsPutItem: the first count of a bucket's rolling
// uploads job of the day writes the job's index entry with PutItem: under
// the deployed statements it is written, and without that one action it
// is not.
func TestUploadsJobIndexNeedsPutItem(t *testing.T) {
	ctx := context.Background()
	emu, err := emulator.Start(ctx, emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	jc, err := SetupJobs(ctx, emu, "up-jobs", "up-reports")
	if err != nil {
		t.Fatal(err)
	}
	res := JobsResources(emu, permissions.Resources{Partition: "aws", Region: emu.Region(), Account: emu.Account(), ManagedBuckets: []string{"up-data"},
		WorkQueueARN: "q", WorkDLQARN: "d"}, jc)
	for i, tc := range []struct {
		name   string
		stmts  []permissions.Statement
		denied bool
	}{
		{"deployed", permissions.Encrypt(res), false},
		{"without dynamodb:PutItem", permissions.Without(permissions.Encrypt(res), "CommitJobs", "dynamodb:PutItem"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := emu.BindPolicy(EncryptAccessKey, permissions.PolicyDocument(tc.stmts)); err != nil {
				t.Fatal(err)
			}
			_, c := jc.Wire(clientConfig(emu.AWSConfigAs(EncryptAccessKey)))
			day := time.Date(2026, 12, 1+i, 0, 0, 0, 0, time.UTC)
			err := c.AddUploads(ctx, "up-data", day, jobs.Counts{Planned: 1, Done: 1, Outcomes: map[string]int64{"updated": 1}})
			if (err != nil) != tc.denied || (err != nil && !strings.Contains(err.Error(), "AccessDenied")) {
				t.Fatalf("counting a new uploads job: %v, want denied %t", err, tc.denied)
			}
		})
	}
}
