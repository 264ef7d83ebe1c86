package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/jsii-runtime-go"
)

// keySafety adds what makes a change to the target keys visible: an
// EventBridge rule on the KMS calls that repoint, delete or create the
// policy's aliases (CloudTrail "AWS API Call via CloudTrail" events, which
// need a trail logging management events) with an alarm on its matches,
// and an alarm on the circuit breaker's Paused metric.
func (s *S3RekeyStack) keySafety(aliases []string) {
	alarm := func(id, description string, metric awscloudwatch.IMetric) {
		awscloudwatch.NewAlarm(s.Stack, jsii.String(id+"Alarm"), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(1),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
	}
	fiveMinutes := awscdk.Duration_Minutes(jsii.Number(5))
	alarm("Paused", "s3rekey: the circuit breaker paused a key, a bucket or everything (s3rekey status --table; fix the cause, then s3rekey resume)",
		awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String("s3rekey"), MetricName: jsii.String("Paused"),
			Statistic: jsii.String("Maximum"), Period: fiveMinutes}))
	if len(aliases) == 0 {
		return
	}
	names := make([]any, len(aliases))
	for i, a := range aliases {
		names[i] = a
	}
	// KMS logs the alias as requestParameters.aliasName in its CloudTrail
	// events for UpdateAlias, DeleteAlias and CreateAlias.
	rule := awsevents.NewRule(s.Stack, jsii.String("TargetAliasChanged"), &awsevents.RuleProps{
		Description: jsii.String("s3rekey: a KMS alias the policy names its target keys by was repointed, deleted or created"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.kms"),
			DetailType: jsii.Strings("AWS API Call via CloudTrail"),
			Detail: &map[string]any{
				"eventSource":       []any{"kms.amazonaws.com"},
				"eventName":         []any{"UpdateAlias", "DeleteAlias", "CreateAlias"},
				"requestParameters": map[string]any{"aliasName": names},
			},
		},
	})
	alarm("TargetAliasChanged", "s3rekey: a target key alias changed; check that it names the key you mean (s3rekey refuses keys outside trustedKeys)",
		awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String("AWS/Events"), MetricName: jsii.String("MatchedEvents"),
			DimensionsMap: &map[string]*string{"RuleName": rule.RuleName()}, Statistic: jsii.String("Sum"), Period: fiveMinutes}))
}
