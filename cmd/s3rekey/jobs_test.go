package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// TestJobCommands records a job as the functions do (a plan, a commit of
// its one task) and reads it back with jobs, jobs show and report.
func TestJobCommands(t *testing.T) {
	c := newCLIEnv(t, 0)
	ctx := context.Background()
	cfg := c.Emu.AWSConfig()
	if err := demo.CreateJobsTable(ctx, cfg, "jobs"); err != nil {
		t.Fatal(err)
	}
	c.Bucket(t, "reports", false)
	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	jc := jobs.Config{Table: "jobs", ReportBucket: "reports", ReportPrefix: "r", ReportKMSKeyARN: aws.ToString(key.KeyMetadata.Arn)}
	store, committer := jc.Wire(cfg)
	id := jobs.InventoryID("s3://inventory/m/manifest.json")
	if _, err := store.Begin(ctx, id, jobs.KindInventory, "s3://inventory/m/manifest.json", 1, committer.Reports.Location(id)); err != nil {
		t.Fatal(err)
	}
	skipped := rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonSSEC}
	res, err := committer.Commit(ctx, "tok", []jobs.Delivery{{JobID: id, MessageID: jobs.MessageID("f", "0"),
		Counts: jobs.Counts{Rows: 3, RowsExpected: 3, UnitsDone: 1, Planned: 2, Done: 2, Outcomes: map[string]int64{"updated": 2, skipped.String(): 1}},
		Rows:   []jobs.Row{{Bucket: "photos", Key: "a b,c.jpg", Outcome: skipped}}}})
	if err != nil || res[0] != jobs.Committed {
		t.Fatalf("commit %v %v", res, err)
	}

	code, out, errOut := c.cli(t, "jobs", "--table", "jobs", "--json")
	var list []jobs.Job
	if code != exitOK || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].State != jobs.StateComplete {
		t.Fatalf("jobs: exit %d %s %s", code, out, errOut)
	}
	code, out, _ = c.cli(t, "jobs", "show", id, "--table", "jobs")
	if code != exitOK || !strings.Contains(out, "complete") || !strings.Contains(out, "skipped: sse-c") || !strings.Contains(out, "manifest.json") {
		t.Errorf("jobs show: exit %d\n%s", code, out)
	}
	local := filepath.Join(t.TempDir(), "report.csv")
	code, out, errOut = c.cli(t, "report", id, "--table", "jobs", "--out", local, "--json")
	var rep struct {
		Rows      int              `json:"rows"`
		ByOutcome map[string]int64 `json:"byOutcome"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Rows != 1 || rep.ByOutcome["skipped: sse-c"] != 1 {
		t.Fatalf("report: exit %d %s %s", code, out, errOut)
	}
	csvText, err := os.ReadFile(local)
	if err != nil || !strings.Contains(string(csvText), "a+b%2Cc.jpg") || !strings.HasPrefix(string(csvText), "Bucket,Key,VersionId,TaskStatus") {
		t.Errorf("local copy %q %v", csvText, err)
	}
	// The report files are SSE-KMS under the configured key.
	got, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("reports"),
		Key: aws.String("r/" + id + "/manifest.json")})
	if err != nil || aws.ToString(got.SSEKMSKeyId) != jc.ReportKMSKeyARN {
		t.Errorf("manifest encryption %v %v", got, err)
	}
	if code, _, errOut := c.cli(t, "jobs", "show", "inv-000000000000", "--table", "jobs"); code != exitFailure || !strings.Contains(errOut, "no such job") {
		t.Errorf("unknown job: exit %d %s", code, errOut)
	}
	if code, _, _ := c.cli(t, "jobs"); code != exitUsage {
		t.Errorf("jobs without a table: exit %d", code)
	}
}
