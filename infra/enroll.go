package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/s3rekey/s3rekey/internal/enroll"
)

// enrollConfig is the enroll function's size: it makes a few S3 calls per
// bucket, and a sweep of 10,000 buckets fits its 15 minutes.
var enrollConfig = FunctionConfig{MemoryMB: 256, TimeoutSeconds: 900, EphemeralMB: 512}

// enrollFunction is the one mechanism that sets buckets up for every
// bucket the policy selects, however many: invoked by the CloudTrail
// management events of bucket creation and tag changes (EventBridge
// receives them from a trail that logs management events), and on a
// schedule that sweeps every bucket, catching missed events.
func (s *S3RekeyStack) enrollFunction(cfg *Config, code string, layer awslambda.ILayerVersion, inventory awss3.IBucket, shared map[string]*string) awslambda.Function {
	fn := s.function("Enroll", code, enrollConfig, layer, withEnv(shared, map[string]*string{
		enroll.EnvInventoryBucketARN: inventory.BucketArn(),
		enroll.EnvAccountID:          awscdk.Aws_ACCOUNT_ID(),
		// A new bucket's backfill goes here (permissions.Enroll grants the
		// send, queuePolicies lets the role through).
		enroll.EnvControlQueueURL: s.ControlQueue.QueueUrl(),
	}))
	// What EventBridge cannot deliver for a day lands in the enroll DLQ
	// (alarmed); the next sweep enrolls its bucket anyway.
	target := awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
		DeadLetterQueue: s.EnrollDLQ,
		RetryAttempts:   jsii.Number(185),
		MaxEventAge:     awscdk.Duration_Hours(jsii.Number(24)),
	})
	awsevents.NewRule(s.Stack, jsii.String("BucketChanges"), &awsevents.RuleProps{
		Description: jsii.String("s3rekey: a bucket created or retagged is enrolled (or let go) at once"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.s3"),
			DetailType: jsii.Strings("AWS API Call via CloudTrail"),
			Detail: &map[string]any{
				"eventSource": []string{"s3.amazonaws.com"},
				"eventName":   enroll.BucketEvents,
			},
		},
		Targets: &[]awsevents.IRuleTarget{target},
	})
	awsevents.NewRule(s.Stack, jsii.String("EnrollSweep"), &awsevents.RuleProps{
		Description: jsii.String(fmt.Sprintf("s3rekey: every %d minutes, every bucket is checked against the policy", cfg.Enroll.SweepMinutes)),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(float64(cfg.Enroll.SweepMinutes)))),
		Targets:     &[]awsevents.IRuleTarget{target},
	})
	return fn
}
