// Command encrypt is the Lambda function that consumes the work queue and
// brings each object onto its policy's KMS key. Logic lives in
// internal/encrypt; this is wiring only.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/policy"
)

func main() {
	logger := lambdacontext.NewLogger()
	pol, err := policy.FromEnv()
	if err != nil {
		logger.Error("cold start: invalid policy", "error", err)
		os.Exit(1)
	}
	cfg, err := encrypt.ConfigFromEnv()
	if err != nil {
		logger.Error("cold start: invalid configuration", "error", err)
		os.Exit(1)
	}
	awsCfg, err := awsconf.Load(context.Background(), "")
	if err != nil {
		logger.Error("cold start: AWS configuration", "error", err)
		os.Exit(1)
	}
	lambda.Start(encrypt.New(awsCfg, pol, cfg, logger, os.Stdout).Handle)
}
