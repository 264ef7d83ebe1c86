package emulator_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// Debian's AWS CLI (2.9) and boto3 (1.26) are the judges of the emulator:
// they speak SQS's query protocol, upload 8 MiB and more in parts, list
// with ListObjects and delete with DeleteObjects. .ci/run installs them;
// a developer machine without them skips, CI never does.
func TestRealClients(t *testing.T) {
	const cli, python = "/usr/bin/aws", "/usr/bin/python3"
	for _, bin := range []string{cli, python} {
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing: .ci/run installs awscli and python3-boto3", bin)
			}
			t.Skipf("%s is not installed (apt-get install awscli python3-boto3)", bin)
		}
	}
	if out, err := exec.Command(python, "-c", "import boto3").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("boto3: %v %s", err, out)
		}
		t.Skipf("boto3 is not installed: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emu, err := emulator.Start(ctx, emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dir := t.TempDir()
	// Only the emulator is ever reached: the endpoint is always given, no
	// configuration or instance metadata is read.
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID="+emulator.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+emulator.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "HOME="+dir)
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	aws := func(args ...string) string {
		return run(cli, append([]string{"--endpoint-url", emu.URL(), "--no-cli-pager", "--output", "json"}, args...)...)
	}

	data := make([]byte, 20_000_000)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	aws("s3", "mb", "s3://real-clients")
	aws("s3", "cp", "--only-show-errors", "big.bin", "s3://real-clients/dir/big.bin")
	aws("s3", "cp", "--only-show-errors", "s3://real-clients/dir/big.bin", "back.bin")
	back, err := os.ReadFile(filepath.Join(dir, "back.bin"))
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("aws s3 cp of 20 MB and back: %d bytes, equal %v, %v", len(back), bytes.Equal(back, data), err)
	}
	if head := aws("s3api", "head-object", "--bucket", "real-clients", "--key", "dir/big.bin"); !strings.Contains(head, `-3\""`) {
		t.Errorf("a multipart upload's ETag ends -<parts>: %s", head)
	}
	aws("s3", "cp", "--only-show-errors", "big.bin", "s3://real-clients/dir/copy.bin")
	if list := aws("s3api", "list-objects", "--bucket", "real-clients"); !strings.Contains(list, "dir/big.bin") || !strings.Contains(list, "dir/copy.bin") {
		t.Errorf("aws s3api list-objects: %s", list)
	}
	aws("s3", "rm", "--recursive", "--only-show-errors", "s3://real-clients/dir/")
	if list := aws("s3api", "list-objects-v2", "--bucket", "real-clients"); strings.Contains(list, "dir/") {
		t.Errorf("after aws s3 rm --recursive: %s", list)
	}

	queue := aws("sqs", "create-queue", "--queue-name", "real-clients")
	url := emu.URL() + "/" + emu.Account() + "/real-clients"
	if !strings.Contains(queue, url) {
		t.Fatalf("aws sqs create-queue: %s", queue)
	}
	aws("sqs", "send-message", "--queue-url", url, "--message-body", "hello from the CLI")
	if got := aws("sqs", "receive-message", "--queue-url", url, "--attribute-names", "All"); !strings.Contains(got, "hello from the CLI") {
		t.Errorf("aws sqs receive-message: %s", got)
	}
	script := `
import boto3, sys
sqs = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1")
print(sqs.list_queues()["QueueUrls"])
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
s3.upload_file("big.bin", "real-clients", "py/big.bin")
print(s3.head_object(Bucket="real-clients", Key="py/big.bin", PartNumber=1)["PartsCount"])
`
	if out := run(python, "-c", script, emu.URL()); !strings.Contains(out, url) || !strings.HasSuffix(strings.TrimSpace(out), "3") {
		t.Errorf("boto3 list_queues and upload_file: %s", out)
	}
}
