// Command planner is the Lambda function that consumes the control queue
// and turns backfill jobs (inventory reports, listings) into object tasks.
// Logic lives in internal/planner; this is wiring only.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
)

func main() {
	logger := lambdacontext.NewLogger()
	pol, err := policy.FromEnv()
	if err != nil {
		logger.Error("cold start: invalid policy", "error", err)
		os.Exit(1)
	}
	cfg, err := planner.ConfigFromEnv()
	if err != nil {
		logger.Error("cold start: invalid configuration", "error", err)
		os.Exit(1)
	}
	awsCfg, err := awsconf.Load(context.Background(), "")
	if err != nil {
		logger.Error("cold start: AWS configuration", "error", err)
		os.Exit(1)
	}
	lambda.Start(planner.New(awsCfg, pol, cfg, logger).Handle)
}
