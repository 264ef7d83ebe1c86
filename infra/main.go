// Command infra is the CDK app that deploys s3rekey: "cdk synth" and
// "cdk deploy" run it (see cdk.json). Its configuration is the cdk.json
// context entry "s3rekey"; the Lambda binaries come from make build.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	code := run()
	jsii.Close()
	os.Exit(code)
}

func run() int {
	app := awscdk.NewApp(nil)
	cfg, err := ParseConfig(app.Node().TryGetContext(jsii.String(ContextKey)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3rekey:", err)
		return 1
	}
	for _, fn := range []string{"encrypt", "planner", "enroll"} {
		if _, err := os.Stat(filepath.Join("build", fn, "bootstrap")); err != nil {
			fmt.Fprintf(os.Stderr, "s3rekey: build/%s/bootstrap is missing: run 'make build' first\n", fn)
			return 1
		}
	}
	props := S3RekeyStackProps{
		StackProps: awscdk.StackProps{Env: env(), Description: jsii.String("s3rekey: every object onto the right KMS key")},
		Config:     cfg, EncryptCode: filepath.Join("build", "encrypt"), PlannerCode: filepath.Join("build", "planner"),
		EnrollCode: filepath.Join("build", "enroll"),
	}
	if cfg.Organization != nil {
		// The organization's stacks, pinned to the central account and
		// region of the config: no credentials needed to synthesize.
		if err := organizationApp(app, props); err != nil {
			fmt.Fprintln(os.Stderr, "s3rekey: organization:", err)
			return 1
		}
	} else {
		NewS3RekeyStack(app, "S3Rekey", &props)
	}
	app.Synth(nil)
	return 0
}

// env pins the stack to the account and region of the deploying
// credentials when the CLI provides them, and stays environment-agnostic
// otherwise (so synth needs no credentials).
func env() *awscdk.Environment {
	account, region := os.Getenv("CDK_DEFAULT_ACCOUNT"), os.Getenv("CDK_DEFAULT_REGION")
	if account == "" || region == "" {
		return nil
	}
	return &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
}
