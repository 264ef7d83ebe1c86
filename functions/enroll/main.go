// Command enroll is the Lambda function that sets up the buckets the
// policy selects (EventBridge notifications, inventory, default
// encryption, and a new bucket's backfill), on bucket creation and
// tag-change events and on a schedule.
// Logic lives in internal/enroll; this is wiring only.
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/enroll"
	"github.com/s3rekey/s3rekey/internal/lambdamain"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
)

func main() {
	lambdamain.StartResolvingKeys(func(awsCfg aws.Config, _ *policy.Policy, keys policy.Source, logger *slog.Logger) (any, error) {
		e, err := enroll.FromEnv(s3.NewFromConfig(awsCfg, awsconf.S3Options(awsCfg)), keys, awsCfg.Region, logger)
		if err != nil {
			return nil, err
		}
		e.Backfills = &queue.Sender{API: sqs.NewFromConfig(awsCfg)}
		return e.Handle, nil
	})
}
