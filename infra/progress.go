package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/jsii-runtime-go"
)

// A backfill's backlog is progress, not a fault: it is shown (the
// dashboard, s3rekey jobs), and alarms only when it stops moving.

// backfillMetrics are the work queue's backlog (messages visible) and its
// progress (messages deleted: each a task handled) over period.
func (s *S3RekeyStack) backfillMetrics(period awscdk.Duration) (backlog, progress awscloudwatch.Metric) {
	backlog = s.WorkQueue.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: period,
		Statistic: jsii.String("Maximum"), Label: jsii.String("backfill tasks waiting")})
	progress = s.WorkQueue.MetricNumberOfMessagesDeleted(&awscloudwatch.MetricOptions{Period: period,
		Statistic: jsii.String("Sum"), Label: jsii.String("backfill tasks done")})
	return backlog, progress
}

// backfillStalled alarms when the work queue holds messages and none was
// deleted for alarmBackfillStalledMinutes: a backfill that stopped moving
// (consumer stopped, every task failing back to the queue), and never one
// that is merely large. CloudWatch metric math: a comparison yields 1 or
// 0 per data point, AND combines them, and a missing data point compares
// as 0 (docs/AmazonCloudWatch/latest/monitoring/using-metric-math.md,
// "Comparison and logical operators").
func (s *S3RekeyStack) backfillStalled(cfg *Config) {
	period := awscdk.Duration_Minutes(jsii.Number(5))
	backlog, progress := s.backfillMetrics(period)
	stalled := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String("IF(backlog > 0 AND progress == 0, 1, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{"backlog": backlog, "progress": progress},
		Period:       period,
		Label:        jsii.String("backfill stalled"),
	})
	awscloudwatch.NewAlarm(s.Stack, jsii.String("BackfillStalledAlarm"), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String("s3rekey: the work queue holds tasks and none was handled for alarmBackfillStalledMinutes (encrypt stopped, or every task failing back to the queue)"),
		Metric:             stalled,
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(float64(cfg.AlarmBackfillStalledMinutes / 5)),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
}

// progressWidgets show a backfill as progress: its backlog and the tasks
// handled, and, apart, the enforcement lag of uploads.
func (s *S3RekeyStack) progressWidgets() *[]awscloudwatch.IWidget {
	backlog, progress := s.backfillMetrics(awscdk.Duration_Minutes(jsii.Number(5)))
	lag := s.UploadsQueue.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)),
		Statistic: jsii.String("Maximum"), Label: jsii.String("oldest upload not yet enforced (s)")})
	return &[]awscloudwatch.IWidget{
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Backfill progress"), Width: jsii.Number(12),
			Left: &[]awscloudwatch.IMetric{backlog}, Right: &[]awscloudwatch.IMetric{progress}}),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Enforcement lag"), Width: jsii.Number(12),
			Left: &[]awscloudwatch.IMetric{lag}}),
	}
}
