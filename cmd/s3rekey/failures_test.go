package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/planner"
)

// failEnv is a CLI environment with job records and reports, and a policy
// that manages "photos", a bucket "gone" that does not exist, and "flat",
// whose policy says versions: current.
type failEnv struct {
	*cliEnv
	policy string
}

func newFailEnv(t *testing.T) *failEnv {
	c := newCLIEnv(t, 5)
	jc, err := demo.SetupJobs(context.Background(), c.Emu, "s3rekey-jobs", "reports")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(jobs.EnvTable, jc.Table)
	t.Setenv(jobs.EnvReportBucket, jc.ReportBucket)
	t.Setenv(jobs.EnvReportPrefix, jc.ReportPrefix)
	t.Setenv(jobs.EnvReportKey, jc.ReportKMSKeyARN)
	c.Bucket(t, "flat", false)
	f := &failEnv{cliEnv: c, policy: filepath.Join(t.TempDir(), "policy.json")}
	doc := fmt.Sprintf(`{"buckets":{"photos":{"kmsKeyArn":%[1]q,"versions":"all"},"gone":{"kmsKeyArn":%[1]q},"flat":{"kmsKeyArn":%[1]q}}}`, c.target)
	if err := os.WriteFile(f.policy, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// within runs a command with a generous deadline: a failure must end the
// command, not the deadline.
func (f *failEnv) within(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut syncBuffer
	code := run(ctx, append([]string{args[0], "--endpoint", f.Emu.URL()}, args[1:]...), &out, &errOut)
	if ctx.Err() != nil {
		t.Fatalf("%s: still running after 60 s", strings.Join(args, " "))
	}
	return code, out.String(), errOut.String()
}

func (f *failEnv) local() []string {
	return []string{"--local", "--policy", f.policy, "--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control"}
}

// inventory publishes an inventory of photos and returns its manifest URL
// and its data file.
func (f *failEnv) inventory(t *testing.T) (manifest, dataKey string) {
	t.Helper()
	key, err := f.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "photos", DestinationBucket: "inventory", Format: "CSV"})
	if err != nil {
		t.Fatal(err)
	}
	manifest = "s3://inventory/" + key
	m, _, err := planner.ReadManifest(context.Background(), f.S3, manifest)
	if err != nil {
		t.Fatal(err)
	}
	return manifest, m.Files[0].Key
}

// spoilChecksum writes a manifest.checksum that does not match.
func (f *failEnv) spoilChecksum(t *testing.T, manifest string) {
	key := strings.TrimSuffix(strings.TrimPrefix(manifest, "s3://inventory/"), "json") + "checksum"
	f.Put(t, &s3.PutObjectInput{Bucket: aws.String("inventory"), Key: aws.String(key)}, "0123456789abcdef0123456789abcdef")
}

// corruptFile replaces a data file and its manifest with ones that agree
// (the MD5 matches) but whose file is not gzip: a corrupt report the
// checksums vouch for.
func (f *failEnv) corruptFile(t *testing.T, manifest, dataKey string) {
	ctx := context.Background()
	bad := "not a gzip file"
	f.Put(t, &s3.PutObjectInput{Bucket: aws.String("inventory"), Key: aws.String(dataKey)}, bad)
	key := strings.TrimPrefix(manifest, "s3://inventory/")
	out, err := f.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("inventory"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.NewDecoder(out.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["files"] = []map[string]any{{"key": dataKey, "size": len(bad), "MD5checksum": md5Hex(bad)}}
	body, _ := json.Marshal(m)
	f.Put(t, &s3.PutObjectInput{Bucket: aws.String("inventory"), Key: aws.String(key)}, string(body))
	f.Put(t, &s3.PutObjectInput{Bucket: aws.String("inventory"), Key: aws.String(strings.TrimSuffix(key, "json") + "checksum")}, md5Hex(string(body)))
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestBackfillRefusesWhatWouldFail: what the CLI can check before sending,
// it checks, and refuses with the problem named and exit status 1, sending
// nothing.
func TestBackfillRefusesWhatWouldFail(t *testing.T) {
	f := newFailEnv(t)
	manifest, _ := f.inventory(t)
	f.spoilChecksum(t, manifest)
	cases := []struct {
		name string
		args []string
		says string
	}{
		{"bucket does not exist", []string{"--bucket", "gone"}, "bucket gone does not exist"},
		{"bucket does not exist, no policy", []string{"--bucket", "nowhere", "--control-queue", "s3rekey-control"}, "bucket nowhere does not exist"},
		{"bucket the policy does not manage", []string{"--bucket", "inventory"}, "the policy does not manage bucket inventory"},
		{"versions the policy forbids", []string{"--bucket", "flat", "--versions"}, "versions: current for bucket flat"},
		{"manifest does not exist", []string{"--manifest", "s3://inventory/none/manifest.json"}, "manifest s3://inventory/none/manifest.json does not exist"},
		{"manifest does not verify", []string{"--manifest", manifest}, "does not verify: manifest.json: checksum mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"backfill"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--control-queue") {
				args = append(args, f.local()...)
			}
			code, _, errOut := f.within(t, args...)
			if code != exitFailure || !strings.Contains(errOut, tc.says) {
				t.Fatalf("exit %d, stderr %q; want exit 1 saying %q", code, errOut, tc.says)
			}
			if strings.Contains(errOut, "sent ") {
				t.Errorf("a refused backfill was sent: %s", errOut)
			}
		})
	}
}

// TestFailedJobsEndTheRun: what goes wrong after the job was sent (the
// bucket deleted, the manifest spoilt, a data file corrupt) fails the job
// with its reason; backfill --local and run --until-idle exit 1 with it at
// once, and jobs and jobs show show the failed job and its reason.
func TestFailedJobsEndTheRun(t *testing.T) {
	cases := []struct {
		name string
		// start sends the job (passing the checks), then breaks it.
		start func(t *testing.T, f *failEnv) (jobID string)
		says  string
	}{
		{"bucket deleted after sending", func(t *testing.T, f *failEnv) string {
			f.Bucket(t, "doomed", false)
			f.rewritePolicy(t, "doomed")
			id := f.send(t, "--bucket", "doomed")
			if _, err := f.S3.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String("doomed")}); err != nil {
				t.Fatal(err)
			}
			return id
		}, "NoSuchBucket"},
		{"manifest no longer verifies", func(t *testing.T, f *failEnv) string {
			manifest, _ := f.inventory(t)
			id := f.send(t, "--manifest", manifest)
			f.spoilChecksum(t, manifest)
			return id
		}, "checksum mismatch"},
		{"inventory of a bucket the policy does not manage, sent without --policy", func(t *testing.T, f *failEnv) string {
			f.Bucket(t, "stray", false)
			f.Put(t, &s3.PutObjectInput{Bucket: aws.String("stray"), Key: aws.String("a.txt")}, "a")
			key, err := f.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "stray", DestinationBucket: "inventory", Format: "CSV"})
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := f.within(t, "backfill", "--manifest", "s3://inventory/"+key, "--control-queue", "s3rekey-control")
			if code != exitOK {
				t.Fatalf("backfill without --policy: exit %d %s", code, errOut)
			}
			return strings.TrimSpace(out)
		}, "inventory of bucket stray, which the policy does not manage"},
		{"corrupt inventory file", func(t *testing.T, f *failEnv) string {
			manifest, dataKey := f.inventory(t)
			f.corruptFile(t, manifest, dataKey)
			return f.send(t, "--manifest", manifest)
		}, "not gzip"},
	}
	for _, tc := range cases {
		for _, how := range []string{"run --until-idle", "backfill --local"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				f := newFailEnv(t)
				jobID := tc.start(t, f)
				var code int
				var errOut string
				if how == "run --until-idle" {
					code, _, errOut = f.within(t, "run", "--policy", f.policy, "--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control", "--until-idle")
				} else {
					// The job is in the queue already; a second backfill of a
					// healthy bucket runs it here, and stops on the failure.
					code, _, errOut = f.within(t, append([]string{"backfill", "--bucket", "photos"}, f.local()...)...)
				}
				if code != exitFailure || !strings.Contains(errOut, "job "+jobID+" failed") || !strings.Contains(errOut, tc.says) {
					t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 naming job %s and %q", code, errOut, jobID, tc.says)
				}
				f.showsFailed(t, jobID, tc.says)
			})
		}
	}
}

// TestBackfillLocalOwnJobFails: backfill --local of a job that fails
// exits 1 with it within seconds.
func TestBackfillLocalOwnJobFails(t *testing.T) {
	f := newFailEnv(t)
	manifest, dataKey := f.inventory(t)
	f.corruptFile(t, manifest, dataKey)
	began := time.Now()
	code, out, errOut := f.within(t, append([]string{"backfill", "--manifest", manifest, "--json"}, f.local()...)...)
	jobID := jobs.InventoryID(manifest)
	if code != exitFailure || !strings.Contains(errOut, "job "+jobID+" failed: file task") || !strings.Contains(errOut, "not gzip") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var s runSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Job != jobID || s.FailedJobs[jobID] == "" {
		t.Fatalf("summary %q (%v): want job %s and its failure", out, err, jobID)
	}
	t.Logf("failed and exited in %v", time.Since(began).Round(time.Millisecond))
	f.showsFailed(t, jobID, "not gzip")
}

// A throttled listing is retried, not failed.
func TestThrottledBackfillCompletes(t *testing.T) {
	f := newFailEnv(t)
	if err := f.Emu.SetFault(emulator.Fault{Service: "s3", Operation: "ListObjectsV2", Code: "SlowDown", Rate: 0.5}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := f.within(t, append([]string{"backfill", "--bucket", "photos", "--json"}, f.local()...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var s runSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Outcomes["updated"] != 5 || len(s.FailedJobs) > 0 {
		t.Fatalf("summary %s (%v), want 5 updated and no failure", out, err)
	}
	code, show, _ := f.within(t, "jobs", "show", s.Job, "--json")
	var j jobs.Job
	if err := json.Unmarshal([]byte(show), &j); code != exitOK || err != nil || j.State != jobs.StateComplete {
		t.Fatalf("jobs show: exit %d, %s", code, show)
	}
}

// send starts a backfill without running it, and returns its id from
// --json.
func (f *failEnv) send(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := f.within(t, append(append([]string{"backfill"}, args...), "--policy", f.policy, "--control-queue", "s3rekey-control", "--json")...)
	var sent struct{ Job string }
	if err := json.Unmarshal([]byte(out), &sent); code != exitOK || err != nil || sent.Job == "" {
		t.Fatalf("backfill %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
	}
	return sent.Job
}

// rewritePolicy adds a bucket to the policy.
func (f *failEnv) rewritePolicy(t *testing.T, bucket string) {
	doc := fmt.Sprintf(`{"buckets":{"photos":{"kmsKeyArn":%[1]q,"versions":"all"},"flat":{"kmsKeyArn":%[1]q},%[2]q:{"kmsKeyArn":%[1]q}}}`, f.target, bucket)
	if err := os.WriteFile(f.policy, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// showsFailed checks that jobs and jobs show show the job failed, with
// its reason.
func (f *failEnv) showsFailed(t *testing.T, jobID, says string) {
	t.Helper()
	code, out, errOut := f.within(t, "jobs", "show", jobID)
	if code != exitOK || !strings.Contains(out, "failed") || !strings.Contains(out, says) {
		t.Errorf("jobs show %s: exit %d\n%s%s", jobID, code, out, errOut)
	}
	code, out, _ = f.within(t, "jobs")
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, jobID) {
			line = l
		}
	}
	if code != exitOK || !strings.Contains(line, " failed ") || !strings.Contains(line, says) {
		t.Errorf("jobs: exit %d, the job's line %q; want failed and %q:\n%s", code, line, says, out)
	}
}
