package main

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// S3RekeyStackProps configure the stack.
type S3RekeyStackProps struct {
	awscdk.StackProps
	Config *Config
	// EncryptCode, PlannerCode and EnrollCode are directories holding each
	// function's bootstrap binary (make build writes build/<fn>/bootstrap).
	EncryptCode, PlannerCode, EnrollCode string
	// Member makes it an organization member's stack (member.go).
	Member *MemberProps
}

// S3RekeyStack is the whole pipeline: queues, functions, event sources,
// EventBridge rules, the enroll function that sets buckets up, alarms and
// a dashboard. Its size does not depend on the number of buckets: the
// policy reaches the functions as a file of a layer, and buckets are set
// up by the enroll function, not by a resource each.
type S3RekeyStack struct {
	awscdk.Stack
	WorkQueue, WorkDLQ, ControlQueue, ControlDLQ awssqs.Queue
	// UploadsQueue carries the upload events (and their retries) apart
	// from the backfill's work queue, consumed by its own event source
	// mapping on the encrypt function, so that no upload waits behind a
	// backlog; UploadsDLQ holds what it dead-letters.
	UploadsQueue, UploadsDLQ awssqs.Queue
	// EnrollDLQ holds bucket events EventBridge could not deliver to the
	// enroll function.
	EnrollDLQ                awssqs.Queue
	Encrypt, Planner, Enroll awslambda.Function

	config *Config
	// logs encrypts every log group of the stack.
	logs awskms.Key
	// inventoryKey encrypts the inventory bucket the stack creates (nil
	// for a configured one).
	inventoryKey awskms.Key
	// policyDir holds the policy layer's content (policyLayerPath).
	policyDir string
	// member is the organization member's state; nil for one account.
	member *member
}

// NewS3RekeyStack builds the stack.
func NewS3RekeyStack(scope constructs.Construct, id string, props *S3RekeyStackProps) *S3RekeyStack {
	stack := awscdk.NewStack(scope, &id, &props.StackProps)
	s := &S3RekeyStack{Stack: stack}
	cfg := s.asMember(props)
	s.config = cfg

	s.buildQueues(cfg)
	s.logs = s.logsKey()
	jr := s.buildJobs(cfg)
	s.memberJobs(&jr)
	s.createdKeys(cfg)
	inventory := s.inventoryBucket()
	layer := s.policyLayer(cfg)
	shared := withEnv(jr.env, map[string]*string{
		policy.EnvPolicyFile:     jsii.String(policyLayerPath),
		policy.EnvExcludeBuckets: awscdk.Fn_Join(jsii.String(","), &[]*string{inventory.BucketName(), jr.reportBucketName}),
		bucketowner.EnvAccountID: awscdk.Aws_ACCOUNT_ID(),
	})
	s.Encrypt = s.function("Encrypt", props.EncryptCode, cfg.Encrypt, layer, withEnv(shared, map[string]*string{
		"S3REKEY_WORK_QUEUE_URL":     s.WorkQueue.QueueUrl(),
		"S3REKEY_WORK_DLQ_URL":       s.WorkDLQ.QueueUrl(),
		"S3REKEY_UPLOADS_QUEUE_URL":  s.UploadsQueue.QueueUrl(),
		"S3REKEY_UPLOADS_DLQ_URL":    s.UploadsDLQ.QueueUrl(),
		"S3REKEY_MAX_ATTEMPTS":       jsii.String(strconv.Itoa(cfg.Encrypt.MaxAttempts)),
		"S3REKEY_CONCURRENCY":        jsii.String(strconv.Itoa(cfg.Encrypt.ObjectsInFlight)),
		"S3REKEY_HEAD_BEFORE_UPDATE": jsii.String(strconv.FormatBool(cfg.Encrypt.HeadBeforeUpdate)),
	}))
	s.Planner = s.function("Planner", props.PlannerCode, cfg.Planner, layer, withEnv(shared, map[string]*string{
		"S3REKEY_WORK_QUEUE_URL":    s.WorkQueue.QueueUrl(),
		"S3REKEY_CONTROL_QUEUE_URL": s.ControlQueue.QueueUrl(),
		"S3REKEY_CONTROL_DLQ_URL":   s.ControlDLQ.QueueUrl(),
		"S3REKEY_LISTING_RANGES":    jsii.String(strconv.Itoa(cfg.Planner.ListingRanges)),
	}))
	s.eventSource(s.Encrypt, s.WorkQueue, cfg.Encrypt)
	// A second mapping on the same function: Lambda polls each mapping's
	// queue with its own pollers and scales each up to its own
	// maxConcurrency, so uploads are received whatever the work queue holds.
	uploads := cfg.Encrypt
	uploads.BatchSize = cfg.Encrypt.UploadsBatchSize
	s.eventSource(s.Encrypt, s.UploadsQueue, uploads)
	s.eventSource(s.Planner, s.ControlQueue, cfg.Planner)
	s.Enroll = s.enrollFunction(cfg, props.EnrollCode, layer, inventory, shared)
	s.keyUsers()

	res := s.resources(cfg, inventory, jr)
	s.memberResources(&res)
	grant(s.Encrypt, permissions.Encrypt(res))
	grant(s.Planner, permissions.Planner(res))
	grant(s.Enroll, permissions.Enroll(res))
	s.eventRules(inventory, jr.reportBucketName)
	s.queuePolicies(cfg)
	s.monitoring(cfg)
	s.keySafety(res.TargetKeyAliases)
	s.publishDeployment(jr, res)

	out := func(name string, v *string) {
		awscdk.NewCfnOutput(stack, jsii.String(name), &awscdk.CfnOutputProps{Value: v})
	}
	out("WorkQueueUrl", s.WorkQueue.QueueUrl())
	out("WorkDeadLetterQueueUrl", s.WorkDLQ.QueueUrl())
	out("UploadsQueueUrl", s.UploadsQueue.QueueUrl())
	out("UploadsDeadLetterQueueUrl", s.UploadsDLQ.QueueUrl())
	out("ControlQueueUrl", s.ControlQueue.QueueUrl())
	out("ControlDeadLetterQueueUrl", s.ControlDLQ.QueueUrl())
	out("EnrollDeadLetterQueueUrl", s.EnrollDLQ.QueueUrl())
	out("EncryptFunctionName", s.Encrypt.FunctionName())
	out("PlannerFunctionName", s.Planner.FunctionName())
	out("EnrollFunctionName", s.Enroll.FunctionName())
	out("InventoryBucketName", inventory.BucketName())
	out("JobsTableName", jr.table.TableName())
	out("ReportLocation", jr.reportLocationOutput)
	return s
}

// resources are the ARNs the roles' statements are about, derived from
// the policy: bucket names and patterns while they are few, the account's
// buckets otherwise; target keys by ARN, or by alias (created keys too).
func (s *S3RekeyStack) resources(cfg *Config, inventory awss3.IBucket, jr jobResources) permissions.Resources {
	res := permissions.Resources{
		Partition: *awscdk.Aws_PARTITION(), Region: *awscdk.Aws_REGION(), Account: *awscdk.Aws_ACCOUNT_ID(),
		InventoryBucketARN: *inventory.BucketArn(), SourceKeyARNs: cfg.SourceKeyArns,
		WorkQueueARN: *s.WorkQueue.QueueArn(), WorkDLQARN: *s.WorkDLQ.QueueArn(),
		UploadsQueueARN: *s.UploadsQueue.QueueArn(), UploadsDLQARN: *s.UploadsDLQ.QueueArn(),
		ControlQueueARN: *s.ControlQueue.QueueArn(), ControlDLQARN: *s.ControlDLQ.QueueArn(),
		JobsTableARN: *jr.table.TableArn(), ReportObjectsARN: jr.reportObjectsARN, ReportKeyARN: *jr.reportKeyARN,
	}
	res.FromPolicy(cfg.Policy)
	res.TrustByTag = cfg.Policy.TrustedKeys != nil && cfg.Policy.TrustedKeys.Tag != nil
	return res
}

// withEnv is a function's own environment with the shared settings added.
func withEnv(shared, own map[string]*string) map[string]*string {
	for k, v := range shared {
		own[k] = v
	}
	return own
}

// buildQueues makes the work, uploads and control queues with their DLQs: SSE on,
// TLS only, redrive after 5 receives, DLQs keeping messages 14 days, and
// visibility at least six times the consumer's timeout plus its window, as
// Lambda advises for SQS sources.
func (s *S3RekeyStack) buildQueues(cfg *Config) {
	queue := func(id string, props *awssqs.QueueProps) awssqs.Queue {
		props.Encryption = awssqs.QueueEncryption_SQS_MANAGED
		props.EnforceSSL = jsii.Bool(true)
		return awssqs.NewQueue(s.Stack, jsii.String(id), props)
	}
	dlq := func(id string) awssqs.Queue {
		return queue(id, &awssqs.QueueProps{RetentionPeriod: awscdk.Duration_Days(jsii.Number(14))})
	}
	visibility := func(f FunctionConfig) awscdk.Duration {
		return awscdk.Duration_Seconds(jsii.Number(float64(6*f.TimeoutSeconds + f.BatchingWindowSeconds)))
	}
	s.WorkDLQ = dlq("WorkDeadLetterQueue")
	s.ControlDLQ = dlq("ControlDeadLetterQueue")
	s.EnrollDLQ = dlq("EnrollDeadLetterQueue")
	s.UploadsDLQ = dlq("UploadsDeadLetterQueue")
	s.UploadsQueue = queue("UploadsQueue", &awssqs.QueueProps{VisibilityTimeout: visibility(cfg.Encrypt), RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{Queue: s.UploadsDLQ, MaxReceiveCount: jsii.Number(5)}})
	s.WorkQueue = queue("WorkQueue", &awssqs.QueueProps{VisibilityTimeout: visibility(cfg.Encrypt), RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{Queue: s.WorkDLQ, MaxReceiveCount: jsii.Number(5)}})
	s.ControlQueue = queue("ControlQueue", &awssqs.QueueProps{VisibilityTimeout: visibility(cfg.Planner), RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{Queue: s.ControlDLQ, MaxReceiveCount: jsii.Number(5)}})
}

// createdKeys creates the keys configured as "create" (rotation on,
// retained on delete, administration apart from use, used through S3
// only), each with the alias the policy names it by.
func (s *S3RekeyStack) createdKeys(cfg *Config) {
	for i, k := range cfg.CreatedKeys {
		s.stackKey(fmt.Sprintf("TargetKey%d", i), "s3rekey target key for "+k.Where, "s3", jsii.String(k.Alias))
	}
}

func (s *S3RekeyStack) function(id, code string, f FunctionConfig, layer awslambda.ILayerVersion, env map[string]*string) awslambda.Function {
	logs := s.logGroup(id)
	return awslambda.NewFunction(s.Stack, jsii.String(id), &awslambda.FunctionProps{
		Runtime:              awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:         awslambda.Architecture_ARM_64(),
		Handler:              jsii.String("bootstrap"),
		Code:                 s.code(id, code),
		MemorySize:           jsii.Number(float64(f.MemoryMB)),
		Timeout:              awscdk.Duration_Seconds(jsii.Number(float64(f.TimeoutSeconds))),
		EphemeralStorageSize: awscdk.Size_Mebibytes(jsii.Number(float64(f.EphemeralMB))),
		Environment:          &env,
		Layers:               &[]awslambda.ILayerVersion{layer},
		LoggingFormat:        awslambda.LoggingFormat_JSON,
		LogGroup:             logs,
		Description:          jsii.String("s3rekey " + id),
	})
}

// retention maps days to the nearest CloudWatch Logs retention not below.
func retention(days int) awslogs.RetentionDays {
	steps := []struct {
		days int
		r    awslogs.RetentionDays
	}{{1, awslogs.RetentionDays_ONE_DAY}, {3, awslogs.RetentionDays_THREE_DAYS}, {5, awslogs.RetentionDays_FIVE_DAYS},
		{7, awslogs.RetentionDays_ONE_WEEK}, {14, awslogs.RetentionDays_TWO_WEEKS}, {30, awslogs.RetentionDays_ONE_MONTH},
		{60, awslogs.RetentionDays_TWO_MONTHS}, {90, awslogs.RetentionDays_THREE_MONTHS}, {180, awslogs.RetentionDays_SIX_MONTHS},
		{365, awslogs.RetentionDays_ONE_YEAR}}
	for _, st := range steps {
		if days <= st.days {
			return st.r
		}
	}
	return awslogs.RetentionDays_TEN_YEARS
}

func (s *S3RekeyStack) eventSource(fn awslambda.Function, q awssqs.Queue, f FunctionConfig) {
	props := &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(float64(f.BatchSize)),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(float64(f.MaxConcurrency)),
	}
	if f.BatchingWindowSeconds > 0 {
		props.MaxBatchingWindow = awscdk.Duration_Seconds(jsii.Number(float64(f.BatchingWindowSeconds)))
	}
	fn.AddEventSource(awslambdaeventsources.NewSqsEventSource(q, props))
}

// ruleTarget sends a rule's events to a queue, retrying for a day, and
// puts what still cannot be delivered on the queue's own DLQ, where the
// alarm fires and s3rekey redrive moves it back (both handlers read raw
// EventBridge events). Without a DLQ, EventBridge drops such events.
func (s *S3RekeyStack) ruleTarget(q, dlq awssqs.Queue) awsevents.IRuleTarget {
	return awseventstargets.NewSqsQueue(q, &awseventstargets.SqsQueueProps{
		DeadLetterQueue: dlq,
		RetryAttempts:   jsii.Number(185),
		MaxEventAge:     awscdk.Duration_Hours(jsii.Number(24)),
	})
}

// outcomes are the statuses the encrypt function counts (EMF metric
// "Objects", dimension "Outcome").
var outcomes = []string{"updated", "copied", "compliant", "gone", "skipped", "would-update", "would-copy", "retry", "failed", "rejected"}

// monitoring adds alarms (a DLQ holds messages; a queue's oldest message
// is too old) and a dashboard of outcomes and queue depths.
func (s *S3RekeyStack) monitoring(cfg *Config) {
	every5min := &awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Maximum")}
	alarm := func(id, description string, metric awscloudwatch.Metric, threshold float64, periods int) {
		awscloudwatch.NewAlarm(s.Stack, jsii.String(id+"Alarm"), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(float64(periods)),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
	}
	const deadLetters = "s3rekey: messages in a dead-letter queue need a person (s3rekey status, s3rekey redrive)"
	const backlog = "s3rekey: the oldest message waits too long (consumer stopped or throttled)"
	alarm("WorkDeadLetters", deadLetters, s.WorkDLQ.MetricApproximateNumberOfMessagesVisible(every5min), 1, 1)
	alarm("UploadsDeadLetters", deadLetters, s.UploadsDLQ.MetricApproximateNumberOfMessagesVisible(every5min), 1, 1)
	alarm("ControlDeadLetters", deadLetters, s.ControlDLQ.MetricApproximateNumberOfMessagesVisible(every5min), 1, 1)
	alarm("EnrollDeadLetters", "s3rekey: bucket events the enroll function did not receive (the next sweep enrolls their buckets; see docs/operations.md)",
		s.EnrollDLQ.MetricApproximateNumberOfMessagesVisible(every5min), 1, 1)
	// Enforcement lag: the age of the oldest upload not yet handled. The
	// uploads queue holds nothing but uploads, so the alarm means one
	// thing, whatever backfill runs.
	everyMinute := &awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum")}
	alarm("EnforcementLag", "s3rekey: uploads wait longer than alarmEnforcementLagSeconds to be enforced (encrypt not consuming the uploads queue, or throttled)",
		s.UploadsQueue.MetricApproximateAgeOfOldestMessage(everyMinute), float64(cfg.AlarmEnforcementLagSeconds), 3)
	alarm("ControlBacklog", backlog, s.ControlQueue.MetricApproximateAgeOfOldestMessage(every5min), float64(cfg.AlarmOldestMessageSeconds), 3)
	s.backfillStalled(cfg)
	var outcomeMetrics []awscloudwatch.IMetric
	for _, o := range outcomes {
		outcomeMetrics = append(outcomeMetrics, awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("s3rekey"), MetricName: jsii.String("Objects"), DimensionsMap: &map[string]*string{"Outcome": jsii.String(o)},
			Statistic: jsii.String("Sum"), Period: awscdk.Duration_Minutes(jsii.Number(5)), Label: jsii.String(o),
		}))
	}
	depth := func(q awssqs.Queue, label string) awscloudwatch.IMetric {
		return q.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Label: jsii.String(label), Statistic: jsii.String("Maximum")})
	}
	awscloudwatch.NewDashboard(s.Stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		Widgets: &[]*[]awscloudwatch.IWidget{{
			awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Objects by outcome"), Left: &outcomeMetrics, Width: jsii.Number(12)}),
			awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Queue depth"), Width: jsii.Number(12), Left: &[]awscloudwatch.IMetric{
				depth(s.WorkQueue, "work"), depth(s.UploadsQueue, "uploads"), depth(s.ControlQueue, "control"),
				depth(s.WorkDLQ, "work DLQ"), depth(s.UploadsDLQ, "uploads DLQ"), depth(s.ControlDLQ, "control DLQ")}}),
		}, s.progressWidgets()},
	})
}
