package encrypt

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/budget"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// Environment variables of the encrypt function.
const (
	EnvWorkQueueURL       = "S3REKEY_WORK_QUEUE_URL"
	EnvDeadLetterQueueURL = "S3REKEY_WORK_DLQ_URL"
	EnvMaxAttempts        = "S3REKEY_MAX_ATTEMPTS"
	EnvConcurrency        = "S3REKEY_CONCURRENCY"
	EnvHeadBeforeUpdate   = "S3REKEY_HEAD_BEFORE_UPDATE"
	// EnvUploadsQueueURL and EnvUploadsDLQURL are the uploads queue and
	// its DLQ: set both, or neither for uploads sharing the work queue.
	EnvUploadsQueueURL = "S3REKEY_UPLOADS_QUEUE_URL"
	EnvUploadsDLQURL   = "S3REKEY_UPLOADS_DLQ_URL"
)

// Config tunes the handler; zero fields take the defaults.
type Config struct {
	WorkQueueURL       string
	DeadLetterQueueURL string
	// UploadsQueueURL and UploadsDLQURL are the uploads path (paths.go);
	// empty: uploads share the work queue's.
	UploadsQueueURL, UploadsDLQURL string
	// MultipartCopyThreshold and CopyPartSize tune copies in place: objects
	// larger than the threshold (default 5 GB, the most one CopyObject
	// copies) are copied in parts of CopyPartSize (default 512 MiB).
	MultipartCopyThreshold, CopyPartSize int64
	// MaxAttempts is how many times an object is tried before a retryable
	// failure goes to the DLQ (default 8); throttling never does.
	MaxAttempts int
	// Concurrency is the most objects in flight per invocation (default
	// 256: each object is at most three S3 requests, one at a time);
	// throttling lowers the window below it for a while (see aimd).
	Concurrency int
	// DeadlineMargin is how long before the invocation deadline no new
	// object starts (default 5s).
	DeadlineMargin time.Duration
	// RetryBaseDelay is the first retry's delay, doubled per attempt and
	// capped at 900s (default 2s).
	RetryBaseDelay time.Duration
	// HeadBeforeUpdate: see rekey.Rekeyer.HeadBeforeUpdate.
	HeadBeforeUpdate bool
	// PausedRetryDelay is the delay of objects the circuit breaker holds
	// (default 900 s, SQS's longest).
	PausedRetryDelay time.Duration
	// Jobs is where job records and reports go (off when its Table is
	// empty).
	Jobs jobs.Config
	// MaxReceives is the work queue's maxReceiveCount (default
	// DefaultMaxReceives): a message failing on its last delivery is
	// dead-lettered here, with its reason (lastreceive.go).
	MaxReceives int
}

func (c Config) withDefaults() Config {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 256
	}
	if c.DeadlineMargin <= 0 {
		c.DeadlineMargin = 5 * time.Second
	}
	if c.RetryBaseDelay <= 0 {
		c.RetryBaseDelay = 2 * time.Second
	}
	if c.PausedRetryDelay <= 0 || c.PausedRetryDelay > DefaultPausedRetryDelay {
		c.PausedRetryDelay = DefaultPausedRetryDelay
	}
	return c
}

// ConfigFromEnv reads the configuration of the Lambda function.
func ConfigFromEnv() (Config, error) {
	c := Config{WorkQueueURL: os.Getenv(EnvWorkQueueURL), DeadLetterQueueURL: os.Getenv(EnvDeadLetterQueueURL)}
	if c.WorkQueueURL == "" || c.DeadLetterQueueURL == "" {
		return c, errors.New(EnvWorkQueueURL + " and " + EnvDeadLetterQueueURL + " are required")
	}
	c.UploadsQueueURL, c.UploadsDLQURL = os.Getenv(EnvUploadsQueueURL), os.Getenv(EnvUploadsDLQURL)
	if (c.UploadsQueueURL == "") != (c.UploadsDLQURL == "") {
		return c, errors.New(EnvUploadsQueueURL + " and " + EnvUploadsDLQURL + " go together: set both, or neither")
	}
	for name, dst := range map[string]*int{EnvMaxAttempts: &c.MaxAttempts, EnvConcurrency: &c.Concurrency} {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return c, fmt.Errorf("%s=%q: want a whole number from 1 to 10000", name, v)
		}
		*dst = n
	}
	jc, err := jobs.ConfigFromEnv()
	if err != nil {
		return c, err
	}
	c.Jobs = jc
	switch v := os.Getenv(EnvHeadBeforeUpdate); v {
	case "", "false":
	case "true":
		c.HeadBeforeUpdate = true
	default:
		return c, fmt.Errorf("%s=%q: want true or false", EnvHeadBeforeUpdate, v)
	}
	return c.withDefaults(), nil
}

// Check reports a policy the configuration cannot carry out: budgets hold
// across invocations through the jobs table, so they need it.
func (c Config) Check(pol *policy.Policy) error {
	if pol.HasBudgets() && c.Jobs.Table == "" {
		return errors.New("the policy sets budgets (maxObjectsPerSecond, maxKmsRequestsPerSecond), which are shared across invocations through the jobs table: set " + jobs.EnvTable)
	}
	return nil
}

// New wires a handler to AWS: S3 for HEAD and UpdateObjectEncryption, SQS
// for follow-ups.
func New(awsCfg aws.Config, pol policy.Source, cfg Config, logger *slog.Logger, metrics io.Writer) *Handler {
	s3c := s3.NewFromConfig(awsCfg, awsconf.S3Options(awsCfg), awsconf.ThrottlesToCaller, DetectNotS3)
	rekeyer := &rekey.Rekeyer{Head: s3c, Update: s3c, Source: pol, HeadBeforeUpdate: cfg.HeadBeforeUpdate,
		Copier: &rekey.Copier{API: s3c, MultipartThreshold: cfg.MultipartCopyThreshold, PartSize: cfg.CopyPartSize}}
	breaker := &Breaker{Logger: logger, Metrics: metrics}
	h := &Handler{
		Rekeyer: breaker.Guard(rekeyer, pol),
		Breaker: breaker,
		Sender:  &queue.Sender{API: sqs.NewFromConfig(awsCfg)},
		Config:  cfg.withDefaults(),
		Logger:  logger,
		Metrics: metrics,
	}
	if store, committer := cfg.Jobs.Wire(awsCfg); committer != nil {
		h.Jobs = committer
		// Budgets are shared through the same table and client (see Check).
		rekeyer.Budget = &budget.Pacer{Members: &budget.Table{Put: store.API, Query: store.API, Name: store.Table}}
		// Pauses are shared through it too.
		breaker.Store = &PauseTable{API: store.API, Name: store.Table}
	}
	return h
}
