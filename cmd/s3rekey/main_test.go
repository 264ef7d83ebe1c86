package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestEmulatorCommandServesTheSDK(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	policyFile := filepath.Join(t.TempDir(), "reader.json")
	if err := os.WriteFile(policyFile, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := startEmulatorCommand(t, ctx, "--addr", "127.0.0.1:0", "--eventbridge-rule", "photos=events", "--latency", "s3:*=1ms",
		"--iam", "AKIAREADERONLY000001="+policyFile)
	url, stdout := cmd.url, &cmd.stdout
	for _, want := range []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_REGION=us-east-1"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, stdout.String())
		}
	}
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDANY", "any-secret", "")}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("events")}); err != nil {
		t.Fatal(err)
	}
	// The key bound by --iam may read objects, and nothing else.
	reader := cfg.Copy()
	reader.Credentials = credentials.NewStaticCredentialsProvider("AKIAREADERONLY000001", "any-secret", "")
	reader.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	if _, err := s3.NewFromConfig(reader, func(o *s3.Options) { o.UsePathStyle = true }).CreateBucket(ctx,
		&s3.CreateBucketInput{Bucket: aws.String("not-allowed")}); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("a key bound by --iam created a bucket: %v", err)
	}
	cancel()
	cmd.waitStopped(t)
}

func TestDemoVerifies(t *testing.T) {
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"demo", "--objects", "200", "--format", "parquet"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"passed: every object is in the state the policy demands", "updated", "compliant", "skipped: not-encrypted", "skipped: sse-c", "skipped: dsse-kms",
		"skipped: object-lock", "skipped: excluded-prefix", "gone", "copied", "skipped: archived", "S3 Batch Operations fee, per object", "accounted for",
		"created s3://demo-new mid-run: rules[0] demo selects it", "and the first upload of s3://demo-new"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, exitUsage, "Usage: s3rekey"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"help", []string{"--help"}, exitOK, "Commands:"},
		{"command help", []string{"emulator", "--help"}, exitOK, "Examples:"},
		{"bad flag", []string{"emulator", "--nope"}, exitUsage, "flag provided but not defined"},
		{"bad fault", []string{"emulator", "--fault", "s3:X=Teapot:1"}, exitUsage, "is not one of"},
		{"negative rate", []string{"emulator", "--kms-rate", "-1"}, exitUsage, "must not be negative"},
		{"iam without a file", []string{"emulator", "--iam", "AKIAX"}, exitUsage, "want ACCESS_KEY=POLICY_FILE"},
		{"iam missing file", []string{"emulator", "--iam", "AKIAX=/nonexistent/policy.json"}, exitUsage, "--iam AKIAX"},
		{"non-loopback address", []string{"emulator", "--addr", "0.0.0.0:4566"}, exitUsage, "not a loopback address"},
		{"demo size out of range", []string{"demo", "--objects", "0"}, exitUsage, "--objects must be"},
		{"demo format", []string{"demo", "--format", "json"}, exitUsage, "want csv, parquet or orc"},
		{"stray argument", []string{"demo", "extra"}, exitUsage, `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String()+stdout.String(), tc.want) {
				t.Errorf("output lacks %q: %q", tc.want, stderr.String())
			}
		})
	}
}
