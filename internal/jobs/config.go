package jobs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/bucketowner"
)

// Environment variables both functions read.
const (
	EnvTable        = "S3REKEY_JOBS_TABLE"
	EnvReportBucket = "S3REKEY_REPORT_BUCKET"
	EnvReportPrefix = "S3REKEY_REPORT_PREFIX"
	EnvReportKey    = "S3REKEY_REPORT_KMS_KEY_ARN"
	EnvReportAll    = "S3REKEY_REPORT_ALL"
	// EnvReportOwner is the account that owns the report bucket (default
	// the deployment's, bucketowner.EnvAccountID): every report request
	// names it as the expected bucket owner.
	EnvReportOwner = "S3REKEY_REPORT_BUCKET_OWNER"
	// EnvReportRegion is the report bucket's region (default the
	// function's): an organization's central report bucket is in one
	// region, and S3 answers a request sent to another region with a
	// redirect the SDK does not follow.
	EnvReportRegion = "S3REKEY_REPORT_REGION"
	// EnvRetentionDays is how long records live (default 90 days).
	EnvRetentionDays = "S3REKEY_JOBS_RETENTION_DAYS"
	// EnvCountUploads turns the new-upload path's rolling jobs on or off
	// (default on).
	EnvCountUploads = "S3REKEY_JOBS_COUNT_UPLOADS"
)

// Config says where job records and reports go. An empty Table turns job
// records off.
type Config struct {
	Table                                       string
	ReportBucket, ReportPrefix, ReportKMSKeyARN string
	ReportAll                                   bool
	// ReportOwner is the report bucket's account (EnvReportOwner).
	ReportOwner string
	// ReportRegion is the report bucket's region (EnvReportRegion); empty
	// is the function's.
	ReportRegion string
	// Retention is how long records live (default DefaultRetention).
	Retention time.Duration
	// SkipUploads leaves the new-upload path uncounted: the rolling jobs
	// cost a DynamoDB write per bucket per batch of events.
	SkipUploads bool
}

// ConfigFromEnv reads the jobs configuration.
func ConfigFromEnv() (Config, error) {
	c := Config{Table: os.Getenv(EnvTable), ReportBucket: os.Getenv(EnvReportBucket), ReportPrefix: os.Getenv(EnvReportPrefix),
		ReportKMSKeyARN: os.Getenv(EnvReportKey), ReportOwner: os.Getenv(EnvReportOwner),
		ReportRegion: os.Getenv(EnvReportRegion)}
	if c.ReportOwner == "" {
		c.ReportOwner = os.Getenv(bucketowner.EnvAccountID)
	}
	var err error
	if c.ReportAll, err = envBool(EnvReportAll, false); err != nil {
		return c, err
	}
	countUploads, err := envBool(EnvCountUploads, true)
	if err != nil {
		return c, err
	}
	c.SkipUploads = !countUploads
	if v := os.Getenv(EnvRetentionDays); v != "" {
		days, err := strconv.Atoi(v)
		if err != nil || days < 1 || days > 3650 {
			return c, fmt.Errorf("%s=%q: want a whole number of days from 1 to 3650", EnvRetentionDays, v)
		}
		c.Retention = time.Duration(days) * 24 * time.Hour
	}
	if c.ReportBucket != "" && (c.Table == "" || c.ReportKMSKeyARN == "") {
		return c, errors.New(EnvReportBucket + " needs " + EnvTable + " and " + EnvReportKey + " (reports are SSE-KMS)")
	}
	return c, nil
}

// envBool reads true or false, def when unset.
func envBool(name string, def bool) (bool, error) {
	switch v := os.Getenv(name); v {
	case "":
		return def, nil
	case "true", "false":
		return v == "true", nil
	default:
		return def, errors.New(name + "=" + v + ": want true or false")
	}
}

// Wire builds the store and committer of a configuration on AWS; nil
// when job records are off.
func (c Config) Wire(awsCfg aws.Config) (*Store, *Committer) {
	if c.Table == "" {
		return nil, nil
	}
	store := &Store{API: dynamodb.NewFromConfig(awsCfg), Table: c.Table, Retention: c.Retention}
	committer := &Committer{Store: store, SkipUploads: c.SkipUploads}
	if c.ReportBucket != "" {
		s3c := bucketowner.Client{Client: s3.NewFromConfig(awsCfg, awsconf.S3Options(awsCfg), c.reportRegion), Owner: c.ReportOwner}
		committer.Reports = c.Reports(s3c)
		committer.Get = s3c
	}
	return store, committer
}

// reportRegion sends report requests to the report bucket's region.
func (c Config) reportRegion(o *s3.Options) {
	if c.ReportRegion != "" {
		o.Region = c.ReportRegion
	}
}

// Reports is the configuration's report writer (nil without reports).
func (c Config) Reports(api PutObjectAPI) *Reports {
	if c.ReportBucket == "" {
		return nil
	}
	return &Reports{API: api, Bucket: c.ReportBucket, Prefix: c.ReportPrefix, KMSKeyARN: c.ReportKMSKeyARN, All: c.ReportAll}
}
