package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// TestJobCommands records a job as the functions do (a plan, a commit of
// its one task) and reads it back with jobs, jobs show and report.
func TestJobCommands(t *testing.T) {
	c := newCLIEnv(t, 0)
	ctx := context.Background()
	cfg := c.Emu.AWSConfig()
	jc := jobsEnv(t, c)
	store, committer := jc.Wire(cfg)
	id := jobs.InventoryID("s3://inventory/m/manifest.json")
	if _, err := store.Begin(ctx, id, jobs.KindInventory, "s3://inventory/m/manifest.json", 1, committer.Reports.Location(id)); err != nil {
		t.Fatal(err)
	}
	skipped := rekey.Outcome{Status: rekey.Skipped, Reason: rekey.ReasonSSEC}
	task := jobs.Task{JobID: id, MessageID: jobs.MessageID("f", "0")}
	if claims, err := committer.Claim(ctx, "tok", time.Now().Add(time.Minute), []jobs.Task{task}); err != nil || claims[0] != jobs.Claimed {
		t.Fatalf("claim %v %v", claims, err)
	}
	res, err := committer.Commit(ctx, "tok", []jobs.Delivery{{JobID: id, MessageID: task.MessageID,
		Root:     &jobs.Root{Unit: "f", First: true, Final: true, Rows: 3, Planned: 2, Skipped: map[string]int64{skipped.String(): 1}},
		Outcomes: map[string]int64{"updated": 2},
		Rows:     []jobs.Row{{Bucket: "photos", Key: "a b,c.jpg", Outcome: skipped}}}})
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
	// Athena reads exactly the listed parts through hive/symlink.txt.
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	link, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("reports"), Key: aws.String("r/" + id + "/hive/symlink.txt")})
	if err != nil {
		t.Fatal(err)
	}
	links, _ := io.ReadAll(link.Body)
	link.Body.Close()
	if lines := strings.Fields(string(links)); len(lines) != 1 || !strings.HasPrefix(lines[0], "s3://reports/r/"+id+"/parts/") {
		t.Errorf("symlink.txt %q, want the one part", links)
	}
	// The report files are SSE-KMS under the configured key.
	got, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("reports"),
		Key: aws.String("r/" + id + "/manifest.json")})
	if err != nil || aws.ToString(got.SSEKMSKeyId) != jc.ReportKMSKeyARN {
		t.Errorf("manifest encryption %v %v", got, err)
	}
	if code, _, errOut := c.cli(t, "jobs", "show", "inv-000000000000", "--table", "jobs"); code != exitFailure || !strings.Contains(errOut, "no such job") {
		t.Errorf("unknown job: exit %d %s", code, errOut)
	}
	t.Setenv(jobs.EnvTable, "")
	if code, _, _ := c.cli(t, "jobs"); code != exitUsage {
		t.Errorf("jobs without a table: exit %d", code)
	}
}

// jobsEnv adds a jobs table, a report bucket and a report key to a CLI
// environment, and points the commands' S3REKEY_JOBS_* at them.
func jobsEnv(t *testing.T, c *cliEnv) jobs.Config {
	t.Helper()
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
	t.Setenv(jobs.EnvTable, jc.Table)
	t.Setenv(jobs.EnvReportBucket, jc.ReportBucket)
	t.Setenv(jobs.EnvReportPrefix, jc.ReportPrefix)
	t.Setenv(jobs.EnvReportKey, jc.ReportKMSKeyARN)
	return jc
}

// TestRedriveReopensJobs: every object of a listing backfill fails (access
// denied) into the DLQ; once the cause is fixed, a redrive with the jobs
// table reopens the job, and the run brings it to complete with every
// object updated and nothing left in its report. Redriven without the
// table (as the SQS console would), the redriven tasks reopen the job
// themselves: the counts end the same either way.
func TestRedriveReopensJobs(t *testing.T) {
	for _, withTable := range []bool{true, false} {
		t.Run(fmt.Sprintf("table=%t", withTable), func(t *testing.T) {
			c := newCLIEnv(t, 10)
			jobsEnv(t, c)
			if err := c.Emu.SetFault(emulator.Fault{Service: "s3", Operation: "UpdateObjectEncryption", Code: "AccessDenied", Rate: 1}); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := c.cli(t, "backfill", "--bucket", "photos", "--local", "--policy", c.policyFile,
				"--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control", "--json")
			if code != exitOK {
				t.Fatalf("backfill exit %d: %s", code, errOut)
			}
			id := regexp.MustCompile(`lst-[0-9a-f]{12}`).FindString(errOut)
			show := func() jobs.Job {
				t.Helper()
				code, out, errOut := c.cli(t, "jobs", "show", id, "--json")
				var j jobs.Job
				if code != exitOK || json.Unmarshal([]byte(out), &j) != nil {
					t.Fatalf("jobs show %q: exit %d %s %s", id, code, out, errOut)
				}
				return j
			}
			if j := show(); j.State != jobs.StateCompleteWithFailures || j.Outcomes["failed: access-denied"] != 10 {
				t.Fatalf("after the failing run: %s %v", j.State, j.Outcomes)
			}
			c.Emu.ClearFaults()

			args := []string{"redrive", "--queue", "s3rekey-work", "--yes"}
			if !withTable {
				t.Setenv(jobs.EnvTable, "")
			}
			code, out, errOut := c.cli(t, args...)
			if code != exitOK {
				t.Fatalf("redrive exit %d: %s %s", code, out, errOut)
			}
			if withTable {
				if !strings.Contains(out, "reopened job "+id+": 10 objects pending again") {
					t.Errorf("redrive output:\n%s", out)
				}
				if j := show(); j.State != jobs.StateRunning || j.Done != 0 || j.Outcomes["failed: access-denied"] != 0 {
					t.Errorf("after the redrive: %s, %d done, %v; want running with the 10 pending", j.State, j.Done, j.Outcomes)
				}
			}
			t.Setenv(jobs.EnvTable, "jobs")
			if code, out, errOut := c.cli(t, "run", "--policy", c.policyFile, "--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control",
				"--until-idle", "--settle", "300ms"); code != exitOK {
				t.Fatalf("run exit %d: %s %s", code, out, errOut)
			}
			j := show()
			if j.State != jobs.StateComplete || j.Outcomes["updated"] != 10 || j.Outcomes["failed: access-denied"] != 0 || j.Done != 10 || j.Planned != 10 {
				t.Errorf("after the rerun: %s, %d/%d done, %v; want complete with 10 updated", j.State, j.Done, j.Planned, j.Outcomes)
			}
			code, out, _ = c.cli(t, "report", id, "--json")
			var rep struct{ Rows int }
			if code != exitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Rows != 0 {
				t.Errorf("report after the rerun: exit %d %s; want no rows (every object updated)", code, out)
			}
			if c.updated(t) != 10 {
				t.Errorf("%d objects on the target key, want 10", c.updated(t))
			}
		})
	}
}
