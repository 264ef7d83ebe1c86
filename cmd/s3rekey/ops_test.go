package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/planner"
)

type cliEnv struct {
	*emutest.Env
	target, policyFile string
	workURL, dlqURL    string
}

// newCLIEnv starts an emulator with the four queues, a bucket "photos" of
// n SSE-S3 objects and a policy file, and points the AWS environment at it.
func newCLIEnv(t *testing.T, n int) *cliEnv {
	e := emutest.Start(t, emulator.Options{})
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", emulator.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", emulator.SecretAccessKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_ENDPOINT_URL", "")
	c := &cliEnv{Env: e, target: e.Key(t)}
	var workDLQARN, controlDLQARN string
	c.dlqURL, workDLQARN = e.Queue(t, "s3rekey-work-dlq", nil)
	_, controlDLQARN = e.Queue(t, "s3rekey-control-dlq", nil)
	c.workURL, _ = e.Queue(t, "s3rekey-work", map[string]string{"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":5}`, workDLQARN)})
	e.Queue(t, "s3rekey-control", map[string]string{"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":5}`, controlDLQARN)})
	e.Bucket(t, "photos", false)
	e.Bucket(t, "inventory", false)
	for i := range n {
		e.Put(t, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String(fmt.Sprintf("img/%03d shot+1.jpg", i))}, "jpeg")
	}
	c.policyFile = filepath.Join(dir, "policy.json")
	doc := fmt.Sprintf(`{"buckets":{"photos":{"kmsKeyArn":%q,"bucketKeyEnabled":true}}}`, c.target)
	if err := os.WriteFile(c.policyFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cliEnv) cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	full := append([]string{args[0], "--endpoint", c.Emu.URL()}, args[1:]...)
	code = run(context.Background(), full, &out, &errOut)
	return code, out.String(), errOut.String()
}

func (c *cliEnv) updated(t *testing.T) int {
	t.Helper()
	n := 0
	for _, v := range c.Emu.Versions("photos") {
		if v.KMSKeyARN == c.target && v.BucketKey {
			n++
		}
	}
	return n
}

func TestBackfillListingLocal(t *testing.T) {
	c := newCLIEnv(t, 25)
	code, out, errOut := c.cli(t, "backfill", "--bucket", "photos", "--local", "--policy", c.policyFile,
		"--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var s pipeline.Snapshot
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary %q: %v", out, err)
	}
	if s.Outcomes["updated"] != 25 || c.updated(t) != 25 {
		t.Errorf("summary %+v; %d objects on the target key, want 25", s.Outcomes, c.updated(t))
	}
}

func TestBackfillInventoryThenRun(t *testing.T) {
	c := newCLIEnv(t, 12)
	manifestKey, err := c.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "photos", DestinationBucket: "inventory", Format: "ORC"})
	if err != nil {
		t.Fatal(err)
	}
	manifest := "s3://inventory/" + manifestKey

	code, out, errOut := c.cli(t, "plan", "--manifest", manifest, "--policy", c.policyFile, "--json")
	if code != exitOK {
		t.Fatalf("plan exit %d: %s", code, errOut)
	}
	var plan planner.PlanReport
	if err := json.Unmarshal([]byte(out), &plan); err != nil || plan.Rows != 12 || plan.WouldUpdate != 12 || plan.ByState["SSE-S3 / bucket key DISABLED / unlocked"].Objects != 12 {
		t.Errorf("plan %+v %v", plan, err)
	}
	code, out, _ = c.cli(t, "plan", "--manifest", manifest, "--policy", c.policyFile)
	if code != exitOK || !strings.Contains(out, "would update") || !strings.Contains(out, "S3 Batch Operations") ||
		!strings.Contains(out, "no budget set") {
		t.Errorf("plan table:\n%s", out)
	}
	// With budgets, the plan says how long the backfill takes at them: 12
	// objects at 4 a second (SSE-S3 onto a bucket key: no KMS request).
	budgeted := filepath.Join(t.TempDir(), "budgeted.json")
	doc, err := os.ReadFile(c.policyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(budgeted, []byte(strings.Replace(string(doc), `"photos":{`, `"photos":{"maxObjectsPerSecond":4,`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = c.cli(t, "plan", "--manifest", manifest, "--policy", budgeted)
	if code != exitOK || !strings.Contains(out, "time at the budgets (4 objects/s): 3s, set by the objects-a-second budget") {
		t.Errorf("plan with a budget (exit %d, %s):\n%s", code, errOut, out)
	}

	if code, _, errOut := c.cli(t, "backfill", "--manifest", manifest, "--control-queue", "s3rekey-control"); code != exitOK || !strings.Contains(errOut, "sent inventory job") {
		t.Fatalf("backfill exit %d: %s", code, errOut)
	}
	if c.updated(t) != 0 {
		t.Fatal("backfill without --local changed objects")
	}
	code, out, errOut = c.cli(t, "run", "--policy", c.policyFile, "--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control",
		"--until-idle", "--settle", "300ms")
	if code != exitOK || !strings.Contains(out, "updated") || c.updated(t) != 12 {
		t.Errorf("run exit %d, %d updated\n%s\n%s", code, c.updated(t), out, errOut)
	}
}

func TestStatusAndRedrive(t *testing.T) {
	c := newCLIEnv(t, 0)
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(c.dlqURL), MessageBody: aws.String(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := c.cli(t, "status", "--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control", "--json")
	var depths []pipeline.QueueDepth
	if code != exitOK || json.Unmarshal([]byte(out), &depths) != nil || len(depths) != 4 || depths[1].Name != "work DLQ" || depths[1].Waiting != 3 {
		t.Fatalf("status exit %d: %s %s", code, out, errOut)
	}
	// Dead letters with no reason of s3rekey's are labelled, and left
	// visible for the redrive below.
	code, out, errOut = c.cli(t, "status", "--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control")
	if code != exitOK || !strings.Contains(out, "work DLQ, 3 read:") ||
		!strings.Contains(out, "3  moved by SQS after 5 receives: the function crashed or timed out before it could record a reason") {
		t.Errorf("status exit %d, want the dead letters labelled:\n%s %s", code, out, errOut)
	}

	stdin = strings.NewReader("n\n")
	defer func() { stdin = os.Stdin }()
	code, out, _ = c.cli(t, "redrive", "--queue", "s3rekey-work")
	if code != exitOK || !strings.Contains(out, "Move 3 messages") || !strings.Contains(out, "nothing moved") {
		t.Errorf("declined redrive: %d %s", code, out)
	}
	stdin = strings.NewReader("y\n")
	code, out, errOut = c.cli(t, "redrive", "--queue", "s3rekey-work")
	if code != exitOK || !strings.Contains(out, "3 messages moved") {
		t.Fatalf("redrive exit %d: %s %s", code, out, errOut)
	}
	_, out, _ = c.cli(t, "status", "--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control", "--json")
	if json.Unmarshal([]byte(out), &depths) != nil || depths[0].Waiting != 3 || depths[1].Waiting != 0 {
		t.Errorf("after redrive: %+v", depths)
	}
	code, out, _ = c.cli(t, "redrive", "--queue", "s3rekey-work", "--yes")
	if code != exitOK || !strings.Contains(out, "empty: nothing to move") {
		t.Errorf("redrive of an empty DLQ: %d %s", code, out)
	}
}

func TestOperatorCommandErrors(t *testing.T) {
	c := newCLIEnv(t, 0)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"run without policy", []string{"run", "--work-queue", "s3rekey-work", "--control-queue", "s3rekey-control"}, exitUsage, "--policy FILE is required"},
		{"run with a missing queue", []string{"run", "--policy", c.policyFile, "--work-queue", "nope", "--control-queue", "s3rekey-control"}, exitFailure, `queue "nope"`},
		{"plan with a bad URL", []string{"plan", "--manifest", "https://x", "--policy", c.policyFile}, exitUsage, "s3://bucket/key"},
		{"plan of a missing manifest", []string{"plan", "--manifest", "s3://inventory/x/manifest.json", "--policy", c.policyFile}, exitFailure, "NoSuchKey"},
		{"backfill needs a source", []string{"backfill", "--control-queue", "s3rekey-control"}, exitUsage, "--manifest"},
		{"backfill with both sources", []string{"backfill", "--manifest", "s3://a/manifest.json", "--bucket", "b"}, exitUsage, "not both"},
		{"queue without a DLQ", []string{"redrive", "--queue", "s3rekey-work-dlq", "--yes"}, exitFailure, "has no dead-letter queue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := c.cli(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut+out, tc.want) {
				t.Errorf("exit %d (want %d), output %q lacks %q", code, tc.code, errOut+out, tc.want)
			}
		})
	}
}
