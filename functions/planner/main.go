// Command planner is the Lambda function that consumes the control queue
// and turns backfill jobs (inventory reports, listings) into object tasks.
// Logic lives in internal/planner; this is wiring only.
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/s3rekey/s3rekey/internal/lambdamain"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
)

func main() {
	lambdamain.Start(func(awsCfg aws.Config, pol *policy.Policy, _ policy.Source, logger *slog.Logger) (any, error) {
		cfg, err := planner.ConfigFromEnv()
		if err != nil {
			return nil, err
		}
		return planner.New(awsCfg, pol, cfg, logger).Handle, nil
	})
}
