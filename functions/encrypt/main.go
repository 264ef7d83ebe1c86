// Command encrypt is the Lambda function that consumes the work queue and
// brings each object onto its policy's KMS key. Logic lives in
// internal/encrypt; this is wiring only.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/lambdamain"
	"github.com/s3rekey/s3rekey/internal/policy"
)

func main() {
	lambdamain.StartResolvingKeys(func(awsCfg aws.Config, pol *policy.Policy, keys policy.Source, logger *slog.Logger) (any, error) {
		cfg, err := encrypt.ConfigFromEnv()
		if err != nil {
			return nil, err
		}
		if err := cfg.Check(pol); err != nil {
			return nil, err
		}
		return encrypt.New(awsCfg, keys, cfg, logger, os.Stdout).Handle, nil
	})
}
