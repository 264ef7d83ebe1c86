package emutest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/emulator"
)

// serveEnv marks a test binary started by StartProcess to serve an
// emulator; its value lists the latencies, comma-separated.
const serveEnv = "EMUTEST_SERVE"

// ServeIfChild serves an emulator, and exits when the parent closes its
// input, if this test binary was started by StartProcess. Call it first in
// the TestMain of a package that uses StartProcess.
func ServeIfChild() {
	spec, ok := os.LookupEnv(serveEnv)
	if !ok {
		return
	}
	emu, err := emulator.Start(context.Background(), emulator.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, l := range strings.Split(spec, ",") {
		if l == "" {
			continue
		}
		lat, err := emulator.ParseLatency(l)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		emu.SetLatency(lat)
	}
	fmt.Println(emu.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// StartProcess runs an emulator in a process of its own (this test binary,
// run again) until the test ends, with the given latencies
// (SERVICE:OPERATION=DURATION). The code under test then has its heap and
// its garbage collector to itself, as it has against AWS, rather than
// sharing them with the emulator's store. The Env has no Emu.
func StartProcess(t testing.TB, latencies ...string) *Env {
	t.Helper()
	_, stdout := StartChild(t, serveEnv+"="+strings.Join(latencies, ","))
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the emulator process printed no address (does TestMain call emutest.ServeIfChild?): %v", err)
	}
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(strings.TrimSpace(url)),
		Credentials: credentials.NewStaticCredentialsProvider(emulator.AccessKeyID, emulator.SecretAccessKey, ""),
		HTTPClient:  awsconf.NewHTTPClient(), Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	return &Env{Cfg: cfg, S3: s3.NewFromConfig(cfg, emulator.PathStyle), SQS: sqs.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg)}
}

// StartChild runs this test binary again, with env (NAME=VALUE) added to
// its environment and no test selected, until the test ends: its TestMain
// is to see env and serve on stdin and stdout, and to end when stdin
// closes (it is killed if it has not ended 10 s after).
func StartChild(t testing.TB, env string) (stdin io.WriteCloser, stdout io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return stdin, stdout
}
