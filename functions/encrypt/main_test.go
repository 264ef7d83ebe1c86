package main

import (
	"os"

	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// TestColdStartRefusesABadPolicy builds the function and starts it with an
// invalid policy: it must stop at once with a log line naming the field.
func TestColdStartRefusesABadPolicy(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bootstrap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cases := map[string]struct{ env []string }{
		"bare key id instead of a key ARN": {[]string{`S3REKEY_POLICY={"buckets":{"my-bucket":{"kmsKeyArn":"1234abcd-12ab-34cd-56ef-1234567890ab"}}}`}},
		"no policy":                        {nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_REGION=us-east-1"}, tc.env...)
			out, err := cmd.CombinedOutput()
			exit, ok := err.(*exec.ExitError)
			if !ok || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1; output %s", err, out)
			}
			want := "S3REKEY_POLICY"
			if tc.env != nil {
				want = "buckets.my-bucket.kmsKeyArn"
			}
			if !strings.Contains(string(out), "cold start: invalid policy") || !strings.Contains(string(out), want) {
				t.Errorf("output %s lacks the reason (%s)", out, want)
			}
		})
	}
}

// An alias that does not resolve stops the cold start, naming the alias.
// KMS is the emulator on loopback: nothing else is ever called.
func TestColdStartRefusesAnUnresolvableAlias(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bootstrap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	emu, err := emulator.Start(t.Context(), emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		`S3REKEY_POLICY={"buckets":{"my-bucket":{"kmsKeyArn":"alias/not-there"}}}`,
		"S3REKEY_WORK_QUEUE_URL=" + emu.URL() + "/111122223333/w", "S3REKEY_WORK_DLQ_URL=" + emu.URL() + "/111122223333/d"}, emu.EnvLines()...)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; output %s", err, out)
	}
	if !strings.Contains(string(out), "cold start: KMS alias") || !strings.Contains(string(out), "alias/not-there") {
		t.Errorf("output %s does not name the alias", out)
	}
}
