package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestColdStartRefusesABadPolicy builds the function and starts it with an
// invalid policy: it must stop at once with a log line naming the field.
func TestColdStartRefusesABadPolicy(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bootstrap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cases := map[string]struct{ env []string }{
		"alias instead of a key ARN": {[]string{`S3REKEY_POLICY={"buckets":{"my-bucket":{"kmsKeyArn":"alias/mine"}}}`}},
		"no policy":                  {nil},
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
