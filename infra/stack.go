package main

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// S3RekeyStackProps configure the stack.
type S3RekeyStackProps struct {
	awscdk.StackProps
	Config *Config
	// EncryptCode and PlannerCode are directories holding each function's
	// bootstrap binary (make build writes build/<fn>/bootstrap).
	EncryptCode, PlannerCode string
}

// S3RekeyStack is the whole pipeline: queues, functions, event sources,
// EventBridge rules, inventory and encryption settings, alarms and a
// dashboard.
type S3RekeyStack struct {
	awscdk.Stack
	WorkQueue, WorkDLQ, ControlQueue, ControlDLQ awssqs.Queue
	Encrypt, Planner                             awslambda.Function
}

// NewS3RekeyStack builds the stack.
func NewS3RekeyStack(scope constructs.Construct, id string, props *S3RekeyStackProps) *S3RekeyStack {
	stack := awscdk.NewStack(scope, &id, &props.StackProps)
	s := &S3RekeyStack{Stack: stack}
	cfg := props.Config

	s.buildQueues(cfg)
	jr := s.buildJobs(cfg)
	keys := s.targetKeys(cfg)
	pol := cfg.Policy(func(bucket string) string { return *keys[bucket].KeyArn() }, *awscdk.Aws_ACCOUNT_ID())
	s.Encrypt = s.function("Encrypt", props.EncryptCode, cfg.Encrypt, cfg.LogRetentionDays, withEnv(jr.env, map[string]*string{
		"S3REKEY_POLICY":             jsii.String(string(pol)),
		"S3REKEY_WORK_QUEUE_URL":     s.WorkQueue.QueueUrl(),
		"S3REKEY_WORK_DLQ_URL":       s.WorkDLQ.QueueUrl(),
		"S3REKEY_MAX_ATTEMPTS":       jsii.String(strconv.Itoa(cfg.Encrypt.MaxAttempts)),
		"S3REKEY_CONCURRENCY":        jsii.String(strconv.Itoa(cfg.Encrypt.ObjectsInFlight)),
		"S3REKEY_HEAD_BEFORE_UPDATE": jsii.String(strconv.FormatBool(cfg.Encrypt.HeadBeforeUpdate)),
	}))
	s.Planner = s.function("Planner", props.PlannerCode, cfg.Planner, cfg.LogRetentionDays, withEnv(jr.env, map[string]*string{
		"S3REKEY_POLICY":            jsii.String(string(pol)),
		"S3REKEY_WORK_QUEUE_URL":    s.WorkQueue.QueueUrl(),
		"S3REKEY_CONTROL_QUEUE_URL": s.ControlQueue.QueueUrl(),
		"S3REKEY_CONTROL_DLQ_URL":   s.ControlDLQ.QueueUrl(),
		"S3REKEY_LISTING_RANGES":    jsii.String(strconv.Itoa(cfg.Planner.ListingRanges)),
	}))
	s.eventSource(s.Encrypt, s.WorkQueue, cfg.Encrypt)
	s.eventSource(s.Planner, s.ControlQueue, cfg.Planner)

	inventory := s.inventoryBucket(cfg)
	res := permissions.Resources{
		Partition: *awscdk.Aws_PARTITION(), Region: *awscdk.Aws_REGION(), Account: *awscdk.Aws_ACCOUNT_ID(),
		ManagedBuckets: cfg.bucketNames(), InventoryBucketARN: *inventory.BucketArn(), SourceKeyARNs: cfg.SourceKeyArns,
		WorkQueueARN: *s.WorkQueue.QueueArn(), WorkDLQARN: *s.WorkDLQ.QueueArn(),
		ControlQueueARN: *s.ControlQueue.QueueArn(), ControlDLQARN: *s.ControlDLQ.QueueArn(),
		JobsTableARN: *jr.table.TableArn(), ReportObjectsARN: jr.reportObjectsARN, ReportKeyARN: *jr.reportKeyARN,
	}
	for _, arn := range distinctKeyARNs(cfg, keys) {
		res.TargetKeyARNs = append(res.TargetKeyARNs, *arn)
	}
	for _, name := range cfg.bucketNames() {
		if u := cfg.Buckets[name].UnsupportedSources; u != nil && (u.NotEncrypted == policy.SourceCopy || u.DSSEKMS == policy.SourceCopy) {
			res.CopyBuckets = append(res.CopyBuckets, name)
		}
		if ref := cfg.Buckets[name].KMSKeyArn; policy.IsAlias(ref) && !slices.Contains(res.TargetKeyAliases, aliasName(ref)) {
			res.TargetKeyAliases = append(res.TargetKeyAliases, aliasName(ref))
		}
	}
	res.TrustByTag = cfg.TrustedKeys != nil && cfg.TrustedKeys.Tag != nil
	grant(s.Encrypt, permissions.Encrypt(res))
	grant(s.Planner, permissions.Planner(res))
	s.bucketSetup(cfg, keys, inventory)
	s.monitoring(cfg)
	s.keySafety(res.TargetKeyAliases)

	out := func(name string, v *string) {
		awscdk.NewCfnOutput(stack, jsii.String(name), &awscdk.CfnOutputProps{Value: v})
	}
	out("WorkQueueUrl", s.WorkQueue.QueueUrl())
	out("WorkDeadLetterQueueUrl", s.WorkDLQ.QueueUrl())
	out("ControlQueueUrl", s.ControlQueue.QueueUrl())
	out("ControlDeadLetterQueueUrl", s.ControlDLQ.QueueUrl())
	out("EncryptFunctionName", s.Encrypt.FunctionName())
	out("PlannerFunctionName", s.Planner.FunctionName())
	out("InventoryBucketName", inventory.BucketName())
	out("JobsTableName", jr.table.TableName())
	out("ReportLocation", jr.reportLocationOutput)
	return s
}

// withEnv is a function's own environment with the shared settings added.
func withEnv(shared, own map[string]*string) map[string]*string {
	for k, v := range shared {
		own[k] = v
	}
	return own
}

// buildQueues makes the work and control queues with their DLQs: SSE on,
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
	s.WorkQueue = queue("WorkQueue", &awssqs.QueueProps{VisibilityTimeout: visibility(cfg.Encrypt), RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{Queue: s.WorkDLQ, MaxReceiveCount: jsii.Number(5)}})
	s.ControlQueue = queue("ControlQueue", &awssqs.QueueProps{VisibilityTimeout: visibility(cfg.Planner), RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{Queue: s.ControlDLQ, MaxReceiveCount: jsii.Number(5)}})
}

// targetKeys creates the keys configured as "create" (one per bucket,
// rotation on) and returns every bucket's target key.
func (s *S3RekeyStack) targetKeys(cfg *Config) map[string]awskms.IKey {
	keys := map[string]awskms.IKey{}
	imported := map[string]awskms.IKey{}
	for i, name := range cfg.bucketNames() {
		b := cfg.Buckets[name]
		if b.KMSKeyArn == CreateKey {
			keys[name] = awskms.NewKey(s.Stack, jsii.String(fmt.Sprintf("TargetKey%d", i)), &awskms.KeyProps{
				Description:       jsii.String("s3rekey target key for s3://" + name),
				EnableKeyRotation: jsii.Bool(true),
				RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
			})
			continue
		}
		if k, ok := imported[b.KMSKeyArn]; ok {
			keys[name] = k
			continue
		}
		if policy.IsAlias(b.KMSKeyArn) {
			// Named by alias: the functions resolve it (and follow it when it
			// is repointed); bucket default encryption may name it too.
			k := awskms.Alias_FromAliasName(s.Stack, jsii.String(fmt.Sprintf("ImportedAlias%d", len(imported))), jsii.String(aliasName(b.KMSKeyArn)))
			imported[b.KMSKeyArn], keys[name] = k, k
			continue
		}
		k := awskms.Key_FromKeyArn(s.Stack, jsii.String(fmt.Sprintf("ImportedKey%d", len(imported))), jsii.String(b.KMSKeyArn))
		imported[b.KMSKeyArn], keys[name] = k, k
	}
	return keys
}

func (s *S3RekeyStack) function(id, code string, f FunctionConfig, retentionDays int, env map[string]*string) awslambda.Function {
	logs := awslogs.NewLogGroup(s.Stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     retention(retentionDays),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	return awslambda.NewFunction(s.Stack, jsii.String(id), &awslambda.FunctionProps{
		Runtime:              awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:         awslambda.Architecture_ARM_64(),
		Handler:              jsii.String("bootstrap"),
		Code:                 awslambda.Code_FromAsset(jsii.String(code), nil),
		MemorySize:           jsii.Number(float64(f.MemoryMB)),
		Timeout:              awscdk.Duration_Seconds(jsii.Number(float64(f.TimeoutSeconds))),
		EphemeralStorageSize: awscdk.Size_Mebibytes(jsii.Number(float64(f.EphemeralMB))),
		Environment:          &env,
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

// inventoryBucket is the inventory destination: the configured bucket, or
// one the stack creates (private, TLS only, reports expire after 30 days)
// with the policy that lets S3 Inventory deliver from the managed buckets.
func (s *S3RekeyStack) inventoryBucket(cfg *Config) awss3.IBucket {
	if cfg.InventoryBucket != "" {
		b := awss3.Bucket_FromBucketName(s.Stack, jsii.String("InventoryBucket"), jsii.String(cfg.InventoryBucket))
		b.EnableEventBridgeNotification()
		return b
	}
	b := awss3.NewBucket(s.Stack, jsii.String("InventoryBucket"), &awss3.BucketProps{
		Encryption:         awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess:  awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:         jsii.Bool(true),
		EventBridgeEnabled: jsii.Bool(true),
		ObjectOwnership:    awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules:     &[]*awss3.LifecycleRule{{Expiration: awscdk.Duration_Days(jsii.Number(30))}},
		RemovalPolicy:      awscdk.RemovalPolicy_RETAIN,
	})
	var sources []*string
	for _, name := range cfg.bucketNames() {
		if cfg.Buckets[name].Inventory != nil {
			sources = append(sources, jsii.String(bucketARN(name)))
		}
	}
	if len(sources) > 0 {
		b.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("S3InventoryDelivery"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("s3.amazonaws.com"), nil)},
			Actions:    jsii.Strings("s3:PutObject"),
			Resources:  jsii.Strings(*b.ArnForObjects(jsii.String("*"))),
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()},
				"ArnLike":      map[string]any{"aws:SourceArn": sources},
			},
		}))
	}
	return b
}

func bucketARN(name string) string { return "arn:" + *awscdk.Aws_PARTITION() + ":s3:::" + name }

// aliasName is alias/NAME of an alias name or alias ARN.
func aliasName(ref string) string { return ref[strings.Index(ref, "alias/"):] }

// distinctKeyARNs lists each target key ARN once (keys named by alias are
// granted by alias instead).
func distinctKeyARNs(cfg *Config, keys map[string]awskms.IKey) []*string {
	seen := map[string]bool{}
	var out []*string
	names := make([]string, 0, len(keys))
	for n := range keys {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if policy.IsAlias(cfg.Buckets[n].KMSKeyArn) {
			continue
		}
		arn := keys[n].KeyArn()
		if !seen[*arn] {
			seen[*arn] = true
			out = append(out, arn)
		}
	}
	return out
}

// grant renders the statements of internal/permissions, the one source of
// the functions' permissions that the tests bind in the emulator too, into
// a function's role.
func grant(fn awslambda.Function, stmts []permissions.Statement) {
	for _, st := range stmts {
		props := &awsiam.PolicyStatementProps{Sid: jsii.String(st.Sid), Actions: jsii.Strings(st.Actions...), Resources: jsii.Strings(st.Resources...)}
		if len(st.Condition) > 0 {
			conds := map[string]any{}
			for op, kv := range st.Condition {
				conds[op] = kv
			}
			props.Conditions = &conds
		}
		fn.AddToRolePolicy(awsiam.NewPolicyStatement(props))
	}
}

// bucketSetup turns on what each managed bucket asks for: EventBridge
// delivery with a rule to the work queue, the bucket default encryption,
// and an S3 Inventory report; and routes manifest.checksum arrivals in the
// inventory bucket to the control queue.
func (s *S3RekeyStack) bucketSetup(cfg *Config, keys map[string]awskms.IKey, inventory awss3.IBucket) {
	for i, name := range cfg.bucketNames() {
		b := cfg.Buckets[name]
		bucket := awss3.Bucket_FromBucketName(s.Stack, jsii.String(fmt.Sprintf("Managed%d", i)), jsii.String(name))
		if b.EnableEventBridge == nil || *b.EnableEventBridge {
			bucket.EnableEventBridgeNotification()
			awsevents.NewRule(s.Stack, jsii.String(fmt.Sprintf("ObjectCreated%d", i)), &awsevents.RuleProps{
				Description: jsii.String("s3rekey: new objects in s3://" + name),
				EventPattern: &awsevents.EventPattern{
					Source:     jsii.Strings("aws.s3"),
					DetailType: jsii.Strings("Object Created"),
					Detail:     &map[string]any{"bucket": map[string]any{"name": []string{name}}},
				},
				Targets: &[]awsevents.IRuleTarget{s.ruleTarget(s.WorkQueue, s.WorkDLQ)},
			})
		}
		if b.SetDefaultEncryption {
			s.sdkCall(fmt.Sprintf("DefaultEncryption%d", i), s3Call("putBucketEncryption", map[string]any{
				"Bucket": name,
				"ServerSideEncryptionConfiguration": map[string]any{"Rules": []any{map[string]any{
					"ApplyServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": keys[name].KeyArn()},
					"BucketKeyEnabled":                   b.BucketKeyEnabled,
				}}},
			}), nil, "s3:PutEncryptionConfiguration", bucketARN(name))
		}
		if b.Inventory != nil {
			format, frequency, versions := b.Inventory.Format, b.Inventory.Frequency, "Current"
			if format == "" {
				format = "Parquet"
			}
			if frequency == "" {
				frequency = "Daily"
			}
			if b.Versions == "all" {
				versions = "All"
			}
			id := "s3rekey"
			s.sdkCall(fmt.Sprintf("Inventory%d", i), s3Call("putBucketInventoryConfiguration", map[string]any{
				"Bucket": name, "Id": id,
				"InventoryConfiguration": map[string]any{
					"Id": id, "IsEnabled": true, "IncludedObjectVersions": versions,
					"Schedule": map[string]any{"Frequency": frequency},
					"Destination": map[string]any{"S3BucketDestination": map[string]any{
						"Bucket": inventory.BucketArn(), "Format": format, "Prefix": "s3rekey", "AccountId": awscdk.Aws_ACCOUNT_ID()}},
					"OptionalFields": []string{"Size", "LastModifiedDate", "ETag", "StorageClass", "EncryptionStatus", "BucketKeyStatus",
						"ObjectLockRetainUntilDate", "ObjectLockMode", "ObjectLockLegalHoldStatus"},
				},
			}), s3Call("deleteBucketInventoryConfiguration", map[string]any{"Bucket": name, "Id": id}), "s3:PutInventoryConfiguration", bucketARN(name))
		}
	}
	awsevents.NewRule(s.Stack, jsii.String("InventoryManifest"), &awsevents.RuleProps{
		Description: jsii.String("s3rekey: a finished S3 Inventory report starts a backfill"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.s3"),
			DetailType: jsii.Strings("Object Created"),
			Detail: &map[string]any{
				"bucket": map[string]any{"name": []*string{inventory.BucketName()}},
				"object": map[string]any{"key": []any{map[string]string{"suffix": "manifest.checksum"}}},
			},
		},
		Targets: &[]awsevents.IRuleTarget{s.ruleTarget(s.ControlQueue, s.ControlDLQ)},
	})
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

func s3Call(action string, params map[string]any) *customresources.AwsSdkCall {
	return &customresources.AwsSdkCall{Service: jsii.String("S3"), Action: jsii.String(action), Parameters: params}
}

// sdkCall applies an S3 setting through an AwsCustomResource whose role may
// do exactly one action on one bucket; undo, when set, runs on stack
// deletion (covered by the same IAM action).
func (s *S3RekeyStack) sdkCall(id string, call, undo *customresources.AwsSdkCall, iamAction, resource string) {
	call.PhysicalResourceId = customresources.PhysicalResourceId_Of(jsii.String(id))
	customresources.NewAwsCustomResource(s.Stack, jsii.String(id), &customresources.AwsCustomResourceProps{
		OnCreate: call, OnUpdate: call, OnDelete: undo,
		Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings(iamAction), Resources: jsii.Strings(resource)}),
		}),
		InstallLatestAwsSdk: jsii.Bool(false),
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
	alarm("ControlDeadLetters", deadLetters, s.ControlDLQ.MetricApproximateNumberOfMessagesVisible(every5min), 1, 1)
	oldest := float64(cfg.AlarmOldestMessageSeconds)
	alarm("WorkBacklog", backlog, s.WorkQueue.MetricApproximateAgeOfOldestMessage(every5min), oldest, 3)
	alarm("ControlBacklog", backlog, s.ControlQueue.MetricApproximateAgeOfOldestMessage(every5min), oldest, 3)
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
				depth(s.WorkQueue, "work"), depth(s.ControlQueue, "control"), depth(s.WorkDLQ, "work DLQ"), depth(s.ControlDLQ, "control DLQ")}}),
		}},
	})
}
