package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// TestStatusJobsAndResume: what the circuit breaker paused shows in status
// and jobs, and resume ends it.
func TestStatusJobsAndResume(t *testing.T) {
	c := newCLIEnv(t, 0)
	ctx := context.Background()
	if err := demo.CreateJobsTable(ctx, c.Cfg, "s3rekey-jobs"); err != nil {
		t.Fatal(err)
	}
	table := &encrypt.PauseTable{API: dynamodb.NewFromConfig(c.Cfg), Name: "s3rekey-jobs"}
	scope := encrypt.ScopeKeyPrefix + c.target
	if err := table.Trip(ctx, encrypt.Pause{Scope: scope, Reason: encrypt.PauseKeyDisabled, Detail: "KMS.DisabledException: " + c.target + " is disabled.",
		Since: time.Now(), ProbeAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	status := []string{"status", "--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control", "--table", "s3rekey-jobs"}
	code, out, errOut := c.cli(t, status...)
	if code != exitOK || !strings.Contains(out, "PAUSED") || !strings.Contains(out, scope) || !strings.Contains(out, encrypt.PauseKeyDisabled) {
		t.Fatalf("status exit %d: %s %s", code, out, errOut)
	}
	code, out, _ = c.cli(t, append(status, "--json")...)
	var js struct {
		Queues []pipeline.QueueDepth `json:"queues"`
		Paused []encrypt.Pause       `json:"paused"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &js) != nil || len(js.Queues) != 4 || len(js.Paused) != 1 || js.Paused[0].Scope != scope {
		t.Errorf("status --json: %d %s", code, out)
	}
	code, out, _ = c.cli(t, "jobs", "--table", "s3rekey-jobs")
	if code != exitOK || !strings.Contains(out, "PAUSED") || !strings.Contains(out, scope) {
		t.Errorf("jobs: %d %s", code, out)
	}

	if code, _, _ := c.cli(t, "resume", "--table", "s3rekey-jobs"); code != exitUsage {
		t.Errorf("resume without a scope: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := c.cli(t, "resume", "--table", "s3rekey-jobs", "--scope", "nonsense"); code != exitUsage {
		t.Errorf("resume --scope nonsense: exit %d, want %d", code, exitUsage)
	}
	code, out, errOut = c.cli(t, "resume", "--table", "s3rekey-jobs", "--scope", scope)
	if code != exitOK || !strings.Contains(out, "resumed "+scope) {
		t.Fatalf("resume: %d %s %s", code, out, errOut)
	}
	if paused, err := table.Pauses(ctx); err != nil || len(paused) != 0 {
		t.Errorf("after resume: %+v %v", paused, err)
	}
	_, out, _ = c.cli(t, status...)
	if strings.Contains(out, "PAUSED") {
		t.Errorf("status after resume: %s", out)
	}
	if code, _, errOut := c.cli(t, "resume", "--table", "s3rekey-jobs", "--scope", scope); code != exitFailure || !strings.Contains(errOut, "is not paused") {
		t.Errorf("resume of a scope not paused: exit %d %s", code, errOut)
	}
	if code, out, _ := c.cli(t, "resume", "--table", "s3rekey-jobs", "--all"); code != exitOK || !strings.Contains(out, "nothing is paused") {
		t.Errorf("resume --all with nothing paused: %d %s", code, out)
	}
}
