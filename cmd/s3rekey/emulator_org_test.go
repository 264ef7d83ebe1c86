package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// `s3rekey emulator --org 3` serves three accounts: the management account
// lists them, each member's printed root key signs as that member, and
// their buckets are their own.
func TestEmulatorCommandServesAnOrganization(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := startEmulatorCommand(t, ctx, "--addr", "127.0.0.1:0", "--org", "3", "--latency", "s3:*=1ms")
	url, stdout := cmd.url, &cmd.stdout
	member := orgMember(2)
	if !strings.Contains(stdout.String(), member+"  "+emulator.RootAccessKey(member)) {
		t.Fatalf("the member's root key is not printed:\n%s", stdout.String())
	}
	as := func(key string) aws.Config {
		return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), Retryer: func() aws.Retryer { return aws.NopRetryer{} },
			Credentials: credentials.NewStaticCredentialsProvider(key, emulator.SecretAccessKey, "")}
	}
	accounts, err := organizations.NewFromConfig(as(emulator.AccessKeyID)).ListAccounts(ctx, &organizations.ListAccountsInput{})
	if err != nil || len(accounts.Accounts) != 3 {
		t.Fatalf("ListAccounts = %+v, %v", accounts, err)
	}
	id, err := sts.NewFromConfig(as(emulator.RootAccessKey(member))).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != member {
		t.Fatalf("GetCallerIdentity as the member = %+v, %v", id, err)
	}
	memberS3 := s3.NewFromConfig(as(emulator.RootAccessKey(member)), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := memberS3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("member-bucket")}); err != nil {
		t.Fatal(err)
	}
	mgmtS3 := s3.NewFromConfig(as(emulator.AccessKeyID), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := mgmtS3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("member-bucket")}); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("the management account listed a member's bucket with no bucket policy: %v", err)
	}
	cancel()
	cmd.waitStopped(t)
}

// emulatorCommand is `s3rekey emulator` running in this process.
type emulatorCommand struct {
	url            string
	stdout, stderr syncBuffer
	done           chan int
}

// startEmulatorCommand runs `s3rekey emulator ARGS` until ctx ends and
// waits for it to print its endpoint.
func startEmulatorCommand(t *testing.T, ctx context.Context, args ...string) *emulatorCommand {
	t.Helper()
	c := &emulatorCommand{done: make(chan int)}
	go func() { c.done <- run(ctx, append([]string{"emulator"}, args...), &c.stdout, &c.stderr) }()
	endpoint := regexp.MustCompile(`AWS_ENDPOINT_URL=(http://127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := endpoint.FindStringSubmatch(c.stdout.String()); m != nil {
			c.url = m[1]
			return c
		}
	}
	t.Fatalf("no endpoint printed; stdout %q stderr %q", c.stdout.String(), c.stderr.String())
	return nil
}

// waitStopped checks that the command ends, with exit 0, once its context
// has.
func (c *emulatorCommand) waitStopped(t *testing.T) {
	t.Helper()
	select {
	case code := <-c.done:
		if code != exitOK {
			t.Errorf("exit code %d after interrupt, stderr %q", code, c.stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("emulator command did not stop when its context ended")
	}
}

func TestEmulatorOrgFlagErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"one account", []string{"emulator", "--org", "1"}},
		{"too many accounts", []string{"emulator", "--org", "1001"}},
		{"with --seed", []string{"emulator", "--org", "3", "--seed", "10"}},
		{"with --iam", []string{"emulator", "--org", "3", "--iam", "AKIAX=p.json"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "--org must be from 2 to 1000") {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
		})
	}
}
