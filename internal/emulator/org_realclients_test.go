package emulator_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// The AWS CLI and boto3 judge STS and Organizations as they do the other
// services: assume-role across accounts with an external id,
// get-caller-identity with the session, and list-accounts paged by the
// client (STS API reference, API_AssumeRole.md; Organizations API
// reference, API_ListAccounts.md).
func TestOrganizationRealClients(t *testing.T) {
	var cli, python string
	for _, bin := range []*string{&cli, &python} {
		name := map[*string]string{&cli: "aws", &python: "python3"}[bin]
		path, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing: .ci/run installs awscli and python3-boto3", name)
			}
			t.Skipf("%s is not installed (apt-get install awscli python3-boto3)", name)
		}
		*bin = path
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := startOrg(t)
	role := putRole(t, o, memberA, "auditor", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"`+mgmtAccount+`"},
		"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"cli-test"}}}]}`, "")
	dir := t.TempDir()
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID="+emulator.RootAccessKey(mgmtAccount), "AWS_SECRET_ACCESS_KEY="+emulator.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "HOME="+dir)
	run := func(extraEnv []string, name string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env, cmd.Dir = append(append([]string(nil), env...), extraEnv...), dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	aws := func(extraEnv []string, args ...string) (string, error) {
		return run(extraEnv, cli, append([]string{"--endpoint-url", o.URL(), "--output", "json"}, args...)...)
	}

	if out, err := aws(nil, "sts", "assume-role", "--role-arn", role, "--role-session-name", "cli"); err == nil || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("assume-role without the external id: %v\n%s", err, out)
	}
	out, err := aws(nil, "sts", "assume-role", "--role-arn", role, "--role-session-name", "cli", "--external-id", "cli-test")
	if err != nil {
		t.Fatalf("assume-role: %v\n%s", err, out)
	}
	var assumed struct {
		Credentials     struct{ AccessKeyId, SecretAccessKey, SessionToken string }
		AssumedRoleUser struct{ Arn string }
	}
	if err := json.Unmarshal([]byte(out), &assumed); err != nil || assumed.AssumedRoleUser.Arn != "arn:aws:sts::"+memberA+":assumed-role/auditor/cli" {
		t.Fatalf("assume-role answer: %v\n%s", err, out)
	}
	session := []string{"AWS_ACCESS_KEY_ID=" + assumed.Credentials.AccessKeyId, "AWS_SECRET_ACCESS_KEY=" + assumed.Credentials.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + assumed.Credentials.SessionToken}
	if out, err := aws(session, "sts", "get-caller-identity"); err != nil || !strings.Contains(out, `"Account": "`+memberA+`"`) {
		t.Fatalf("get-caller-identity with the session: %v\n%s", err, out)
	}

	for i := range 22 {
		if err := o.AddAccount("6000000000"+string(rune('0'+i/10))+string(rune('0'+i%10)), ""); err != nil {
			t.Fatal(err)
		}
	}
	// The CLI follows NextToken itself: every account comes back.
	out, err = aws(nil, "organizations", "list-accounts")
	if err != nil {
		t.Fatalf("list-accounts: %v\n%s", err, out)
	}
	var listed struct{ Accounts []struct{ Id string } }
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed.Accounts) != 4+22 {
		t.Fatalf("list-accounts: %d accounts, want 26: %v\n%s", len(listed.Accounts), err, out)
	}

	if out, err := run(nil, python, "-c", "import boto3"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("boto3: %v %s", err, out)
		}
		t.Skipf("boto3 is not installed: %s", out)
	}
	script := `
import boto3, sys
sts = boto3.client("sts", endpoint_url=sys.argv[1], region_name="us-east-1")
creds = sts.assume_role(RoleArn=sys.argv[2], RoleSessionName="boto", ExternalId="cli-test")["Credentials"]
me = boto3.client("sts", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
    aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"]).get_caller_identity()
orgs = boto3.client("organizations", endpoint_url=sys.argv[1], region_name="us-east-1")
n = sum(len(p["Accounts"]) for p in orgs.get_paginator("list_accounts").paginate())
print(me["Arn"], n, creds["Expiration"].year > 2000)
`
	if out, err := run(nil, python, "-c", script, o.URL(), role); err != nil || strings.TrimSpace(out) != "arn:aws:sts::"+memberA+":assumed-role/auditor/boto 26 True" {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
}
