package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/s3rekey/s3rekey/internal/jobs"
)

// JobsConfig is where job records and completion reports go.
type JobsConfig struct {
	// RetentionDays is how long job records live before the table's TTL
	// removes them (default 90).
	RetentionDays int `json:"retentionDays,omitempty"`
	// Reports: the report location. An empty Bucket makes one.
	Reports ReportsConfig `json:"reports"`
	// CountUploads counts the new-upload path into a rolling job per
	// bucket and day (default true): one DynamoDB write per bucket per
	// batch of events (see BENCHMARKS.md for what it adds).
	CountUploads *bool `json:"countUploads,omitempty"`
}

// ReportsConfig is the completion reports' location and encryption.
type ReportsConfig struct {
	Bucket string `json:"bucket,omitempty"` // an existing bucket; empty: the stack creates one
	Prefix string `json:"prefix,omitempty"` // default "s3rekey-reports"
	// KMSKeyArn encrypts every report file (SSE-KMS): a key ARN, or
	// "create" (the default) for a key of the stack's own.
	KMSKeyArn string `json:"kmsKeyArn,omitempty"`
	// ExpectedOwner is the account that owns Bucket (default: the
	// deployment's): every report request names it, and S3 refuses the
	// request when the bucket is another account's.
	ExpectedOwner string `json:"expectedOwner,omitempty"`
	// All lists every object; by default only those not updated.
	All bool `json:"all,omitempty"`
}

func (j *JobsConfig) validate() error {
	if j.RetentionDays == 0 {
		j.RetentionDays = 90
	}
	if j.RetentionDays < 1 || j.RetentionDays > 3650 {
		return fmt.Errorf("jobs.retentionDays: %d must be from 1 to 3650", j.RetentionDays)
	}
	r := &j.Reports
	if r.Prefix == "" {
		r.Prefix = defaultReportPrefix
	}
	r.Prefix = strings.Trim(r.Prefix, "/")
	if r.KMSKeyArn == "" {
		r.KMSKeyArn = CreateKey
	}
	if r.KMSKeyArn != CreateKey && (!strings.HasPrefix(r.KMSKeyArn, "arn:aws") || !strings.Contains(r.KMSKeyArn, ":key/")) {
		return fmt.Errorf("jobs.reports.kmsKeyArn: %q is not a KMS key ARN or %q (reports are SSE-KMS under a key, not an alias)", r.KMSKeyArn, CreateKey)
	}
	if r.ExpectedOwner != "" && (r.Bucket == "" || !accountID.MatchString(r.ExpectedOwner)) {
		return fmt.Errorf("jobs.reports.expectedOwner: %q must be the 12-digit account ID of jobs.reports.bucket (the bucket the stack creates is the deployment's)", r.ExpectedOwner)
	}
	if r.Bucket != "" && r.KMSKeyArn == CreateKey {
		return fmt.Errorf("jobs.reports.kmsKeyArn: name the key of the existing bucket %s (its policy must let the encrypt function use it)", r.Bucket)
	}
	return nil
}

// defaultReportPrefix is the reports' prefix unless configured.
const defaultReportPrefix = "s3rekey-reports"

// jobResources are what job records and reports live in.
type jobResources struct {
	table                awsdynamodb.Table
	reportBucketName     *string
	reportObjectsARN     string
	reportKeyARN         *string
	env                  map[string]*string
	reportLocationOutput *string
}

// buildJobs makes the job table (on demand, encrypted, point-in-time
// recovery on, records expiring by TTL, kept when the stack goes) and the
// report location (a private bucket encrypted under the report key, or
// the configured one).
func (s *S3RekeyStack) buildJobs(cfg *Config) jobResources {
	j := cfg.Jobs
	table := awsdynamodb.NewTable(s.Stack, jsii.String("JobsTable"), &awsdynamodb.TableProps{
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		Encryption:          awsdynamodb.TableEncryption_AWS_MANAGED,
		TimeToLiveAttribute: jsii.String("expires"),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true)},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	var key awskms.IKey
	if j.Reports.KMSKeyArn == CreateKey {
		key = s.stackKey("ReportKey", "s3rekey completion reports", "s3", nil)
	} else {
		key = awskms.Key_FromKeyArn(s.Stack, jsii.String("ReportKey"), jsii.String(j.Reports.KMSKeyArn))
	}
	var bucketName, bucketArn *string
	if j.Reports.Bucket == "" {
		b := awss3.NewBucket(s.Stack, jsii.String("ReportBucket"), &awss3.BucketProps{
			Encryption: awss3.BucketEncryption_KMS, EncryptionKey: key, BucketKeyEnabled: jsii.Bool(true),
			BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(), EnforceSSL: jsii.Bool(true),
			ObjectOwnership: awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED, RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
			// A report overwritten (the encrypt role writes reports) stays
			// recoverable as a noncurrent version for as long as job
			// records live.
			Versioned: jsii.Bool(true),
			LifecycleRules: &[]*awss3.LifecycleRule{{
				NoncurrentVersionExpiration:         awscdk.Duration_Days(jsii.Number(float64(j.RetentionDays))),
				AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(7)),
				ExpiredObjectDeleteMarker:           jsii.Bool(true),
			}},
		})
		bucketName, bucketArn = b.BucketName(), b.BucketArn()
	} else {
		bucketName, bucketArn = jsii.String(j.Reports.Bucket), jsii.String(bucketARN(j.Reports.Bucket))
	}
	env := map[string]*string{
		jobs.EnvTable:         table.TableName(),
		jobs.EnvRetentionDays: jsii.String(strconv.Itoa(j.RetentionDays)),
		jobs.EnvReportBucket:  bucketName,
		jobs.EnvReportPrefix:  jsii.String(j.Reports.Prefix),
		jobs.EnvReportKey:     key.KeyArn(),
		jobs.EnvReportAll:     jsii.String(strconv.FormatBool(j.Reports.All)),
		jobs.EnvReportOwner:   reportOwner(j.Reports),
		jobs.EnvCountUploads:  jsii.String(strconv.FormatBool(j.CountUploads == nil || *j.CountUploads)),
	}
	return jobResources{table: table, reportBucketName: bucketName, reportObjectsARN: *bucketArn + "/" + j.Reports.Prefix + "/*",
		reportKeyARN: key.KeyArn(), env: env,
		reportLocationOutput: awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("s3://"), bucketName, jsii.String("/" + j.Reports.Prefix + "/")})}
}

// accountID is an AWS account ID.
var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// reportOwner is the account expected to own the report bucket.
func reportOwner(r ReportsConfig) *string {
	if r.ExpectedOwner != "" {
		return jsii.String(r.ExpectedOwner)
	}
	return awscdk.Aws_ACCOUNT_ID()
}
