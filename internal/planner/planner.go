package planner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
)

// ListAPI lists a bucket's objects or versions.
type ListAPI interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, optFns ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
}

// MessageSender sends messages to a queue (queue.Sender in production).
type MessageSender interface {
	Send(ctx context.Context, queueURL string, msgs []queue.Message) []error
}

var (
	_ ListAPI       = (*s3.Client)(nil)
	_ MessageSender = (*queue.Sender)(nil)
)

// Config tunes the planner; zero fields take the defaults.
type Config struct {
	WorkQueueURL    string
	ControlQueueURL string
	ControlDLQURL   string
	// MessageBytes bounds an object task's body (default 64 KiB: SQS bills
	// every 64 KiB as one request, so a full chunk is the cheapest unit).
	MessageBytes int
	// DeadlineMargin is how long before the invocation deadline a task
	// checkpoints (default 20s).
	DeadlineMargin time.Duration
	// TempDir holds downloaded data files (default: the system's).
	TempDir string
	// Jobs is where job records and reports go (off when its Table is
	// empty).
	Jobs jobs.Config
	// ListingRanges is how many ranges a listing is split into, to be
	// listed at once (default 8; 1 lists in one run). The split follows
	// the bucket's top-level prefixes (under the job's prefix).
	ListingRanges int
	// BlockRows is how many rows of a data file make a block (default
	// 10,000): a task never spans two blocks, and a checkpoint waits for a
	// block's end, so that a replayed file task makes the same tasks.
	BlockRows int64
	// MaxReceives is the control queue's maxReceiveCount (default
	// DefaultMaxReceives): a message failing on its last delivery is
	// dead-lettered here, with its reason.
	MaxReceives int
	// ChecksumRereadFor is how long a data file that does not match its
	// manifest's MD5 is read again before its job fails (default
	// DefaultChecksumRereadFor; failure.go).
	ChecksumRereadFor time.Duration
}

func (c Config) withDefaults() Config {
	if c.MessageBytes <= 0 {
		c.MessageBytes = 64 << 10
	}
	if c.DeadlineMargin <= 0 {
		c.DeadlineMargin = 20 * time.Second
	}
	if c.BlockRows <= 0 {
		c.BlockRows = 10000
	}
	if c.ListingRanges <= 0 {
		c.ListingRanges = 8
	}
	return c
}

// JobStarter records a job when its planning starts (jobs.Store in
// production).
type JobStarter interface {
	Begin(ctx context.Context, id, kind, source string, units int64, report string) (time.Time, error)
	// Pin records a choice of the job's planning the first time it is
	// made and returns the recorded one (see jobs.Store.Pin).
	Pin(ctx context.Context, jobID, name, value string) (string, error)
	// Sign signs a tracked task (see jobs.Store.Sign).
	Sign(ctx context.Context, t *messages.Task) error
	// Terminal reports a job failed or cancelled, with its reason (see
	// jobs.Store.Terminal).
	Terminal(ctx context.Context, jobID string) (state, reason string, err error)
}

var _ JobStarter = (*jobs.Store)(nil)

// Planner handles control-queue batches.
type Planner struct {
	Get    inventory.GetObjectAPI
	List   ListAPI
	Sender MessageSender
	Policy *policy.Policy
	Config Config
	Logger *slog.Logger
	// Now is the clock for deadlines and Object Lock dates; nil means
	// time.Now.
	Now func() time.Time
	// OnStats, when set, receives the counts of every file task or listing
	// when it ends or checkpoints (the CLI's run and demo add them up).
	OnStats func(Stats)
	// Jobs records each job; nil plans without job records.
	Jobs JobStarter
	// Failer records a job that cannot proceed (failure.go).
	Failer JobFailer
	// OnFailed, when set, hears of every job failed (the CLI's local runs
	// stop on it).
	OnFailed func(jobID, reason string)
	// Reports is where job reports go; with it, the rows the planner skips
	// ride along in the tasks to be listed in the report.
	Reports *jobs.Reports

	dropped atomic.Int64
}

// Stats are the counts of one task, logged when it ends.
type Stats struct {
	Rows     int64            `json:"rows"`
	Enqueued int64            `json:"enqueued"`
	Messages int64            `json:"messages"`
	Skipped  map[string]int64 `json:"skipped"`
}

func (p *Planner) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Planner) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// Handle runs each message's jobs in turn. A message whose job fails is
// reported in BatchItemFailures (SQS retries it, then dead-letters it); an
// undecodable one goes to the control DLQ with its reason.
func (p *Planner) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	cfg := p.Config.withDefaults()
	var resp events.SQSEventResponse
	for _, rec := range ev.Records {
		if err := p.handleMessage(ctx, cfg, rec); err != nil {
			p.logger().Error("control message failed; SQS will retry it", "messageId", rec.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp, nil
}

func (p *Planner) handleMessage(ctx context.Context, cfg Config, rec events.SQSMessage) error {
	decoded, err := DecodeJobs(rec.Body)
	var rej *messages.RejectedError
	if errors.As(err, &rej) {
		p.logger().Warn("control message rejected", "messageId", rec.MessageId, "reason", rej.Reason)
		return p.deadLetter(ctx, cfg, rec, rej.Reason)
	}
	received, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	for _, job := range decoded {
		job.Redelivered = job.Redelivered || received > 1
		job.named = job.JobID != ""
		if job.JobID == "" {
			job.JobID = defaultJobID(job, rec.MessageId)
		}
		if closed, err := p.closed(ctx, job, rec.MessageId); err != nil {
			return p.settle(ctx, cfg, rec, job, err)
		} else if closed {
			continue
		}
		if err := p.Run(ctx, job); err != nil {
			return p.settle(ctx, cfg, rec, job, err)
		}
	}
	return nil
}

// closed reports a job that is failed or cancelled: its remaining control
// messages (file tasks, listing ranges and continuations, replays) are
// acknowledged and dropped, sending no work, so that a closed job's counts
// and report stay as they were when it closed (docs/jobs.md).
func (p *Planner) closed(ctx context.Context, job Job, messageID string) (bool, error) {
	if p.Jobs == nil || job.JobID == "" {
		return false, nil
	}
	state, reason, err := p.Jobs.Terminal(ctx, job.JobID)
	if err != nil || state == "" {
		return false, err
	}
	p.dropped.Add(1)
	p.logger().Info("control message of a closed job dropped", "messageId", messageID, "job", job.JobID, "type", job.Type,
		"state", state, "reason", reason)
	return true, nil
}

// Dropped is how many control messages of failed or cancelled jobs the
// planner has dropped.
func (p *Planner) Dropped() int64 { return p.dropped.Load() }

func (p *Planner) deadLetter(ctx context.Context, cfg Config, rec events.SQSMessage, reason string) error {
	return p.sendDeadLetter(ctx, cfg, rec, "", "rejected", reason)
}

// Run executes one job (the CLI calls it for local backfills).
func (p *Planner) Run(ctx context.Context, job Job) error {
	switch job.Type {
	case TypeInventory:
		return p.runInventory(ctx, job)
	case TypeFile:
		return p.runFile(ctx, job)
	case TypeListing:
		return p.runListing(ctx, job)
	}
	return &messages.RejectedError{Reason: "unknown job type " + job.Type}
}

// maxManifestBytes bounds manifest.json (a few thousand file entries).
const maxManifestBytes = 16 << 20

// ReadManifest fetches and verifies an inventory's manifest.
func ReadManifest(ctx context.Context, api inventory.GetObjectAPI, manifestURL string) (*inventory.Manifest, string, error) {
	bucket, key, err := ParseS3URL(manifestURL)
	if err != nil {
		return nil, "", &messages.RejectedError{Reason: err.Error()}
	}
	dir, ok := strings.CutSuffix(key, "manifest.json")
	if !ok {
		return nil, "", &messages.RejectedError{Reason: manifestURL + " does not name a manifest.json"}
	}
	body, err := inventory.ReadSmall(ctx, api, bucket, key, maxManifestBytes)
	if err != nil {
		return nil, "", err
	}
	sumKey := dir + ManifestChecksumSuffix
	sum, err := inventory.ReadSmall(ctx, api, bucket, sumKey, 1024)
	if err != nil {
		return nil, "", err
	}
	m, err := inventory.ParseManifest(body, sum)
	if err != nil {
		return nil, "", corrupt(err)
	}
	return m, bucket, nil
}

// runInventory reads the manifest and fans out one file task per data file.
func (p *Planner) runInventory(ctx context.Context, job Job) error {
	cfg := p.Config.withDefaults()
	m, bucket, err := ReadManifest(ctx, p.Get, job.Manifest)
	if err != nil {
		return fmt.Errorf("inventory %s: %w", job.Manifest, err)
	}
	if sel, err := p.Policy.Resolve(ctx, m.SourceBucket); err != nil {
		return err
	} else if !sel.Managed {
		if job.named {
			// Asked for by name (s3rekey backfill): the job fails, loudly.
			return &messages.RejectedError{Reason: "inventory of bucket " + m.SourceBucket + ", which the policy does not manage"}
		}
		p.logger().Warn("inventory of a bucket the policy does not manage: nothing to do", "manifest", job.Manifest, "sourceBucket", m.SourceBucket)
		return nil
	}
	cols, err := m.Columns()
	if err != nil {
		return &messages.RejectedError{Reason: err.Error()}
	}
	jobID := job.JobID
	if jobID == "" {
		jobID = jobs.InventoryID(job.Manifest)
	}
	asOf, err := p.begin(ctx, jobID, jobs.KindInventory, job.Manifest, max(1, len(m.Files)))
	if err != nil {
		return err
	}
	if len(m.Files) == 0 {
		// Nothing to read: the job's one unit ends here.
		b := p.newBatcher(cfg, Job{Type: TypeFile, JobID: jobID, Redelivered: job.Redelivered}, job.Manifest)
		return b.final(ctx, 0)
	}
	var msgs []queue.Message
	for _, f := range m.Files {
		body, err := Job{Type: TypeFile, JobID: jobID, Redelivered: job.Redelivered, File: &FileTask{Bucket: bucket, Key: f.Key,
			MD5: f.MD5Checksum, Size: f.Size, Format: m.FileFormat, Columns: cols, SourceBucket: m.SourceBucket, AsOf: asOf}}.Encode()
		if err != nil {
			return err
		}
		msgs = append(msgs, queue.Message{Body: body})
	}
	if err := firstError(p.Sender.Send(ctx, cfg.ControlQueueURL, msgs)); err != nil {
		return fmt.Errorf("inventory %s: fan out file tasks: %w", job.Manifest, err)
	}
	p.logger().Info("inventory fanned out", "manifest", job.Manifest, "sourceBucket", m.SourceBucket, "format", m.FileFormat, "files", len(m.Files))
	return nil
}

// nearDeadline reports whether ctx's deadline is within the margin.
func (p *Planner) nearDeadline(ctx context.Context, margin time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ok && !p.now().Before(deadline.Add(-margin))
}

// runFile streams one data file from its offset, enqueueing what passes the
// filter, and checkpoints near the deadline.
func (p *Planner) runFile(ctx context.Context, job Job) error {
	cfg := p.Config.withDefaults()
	ft := job.File
	sel, err := p.Policy.Resolve(ctx, ft.SourceBucket)
	if err != nil {
		return err
	}
	target := sel.Bucket
	if !sel.Managed {
		p.logger().Warn("file task of a bucket the policy no longer manages: nothing to do", "sourceBucket", ft.SourceBucket, "key", ft.Key)
		return nil
	}
	f, err := p.fetch(ctx, cfg, ft)
	if err != nil {
		return fmt.Errorf("file task %s: %w", ft.Key, err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	r, err := inventory.Open(ft.Format, f, ft.Columns)
	if err != nil {
		return corrupt(fmt.Errorf("file task %s: %w", ft.Key, err))
	}
	defer r.Close()
	if ft.Offset > 0 {
		if err := r.Skip(ft.Offset); err != nil {
			return corrupt(fmt.Errorf("file task %s: resume at row %d: %w", ft.Key, ft.Offset, err))
		}
	}
	now := p.now()
	if ft.AsOf > 0 {
		// Lock dates are read as of the job's start, so that a replayed
		// task makes the same tasks.
		now = time.UnixMilli(ft.AsOf)
	}
	filter := inventory.Filter{Bucket: target, Now: now}
	b := p.newBatcher(cfg, job, ft.Bucket+"/"+ft.Key)
	stats := Stats{Skipped: map[string]int64{}}
	offset := ft.Offset
	for {
		if offset > ft.Offset && offset%cfg.BlockRows == 0 {
			if err := b.endBlock(ctx); err != nil {
				return fmt.Errorf("file task %s: %w", ft.Key, err)
			}
			if p.nearDeadline(ctx, cfg.DeadlineMargin) {
				next := *ft
				next.Offset = offset
				return p.checkpoint(ctx, cfg, b, &stats, Job{Type: TypeFile, JobID: job.JobID, Redelivered: job.Redelivered, File: &next}, "file", ft.Key)
			}
		}
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return corrupt(fmt.Errorf("file task %s at row %d: %w", ft.Key, offset, err))
		}
		pos := strconv.FormatInt(offset, 10)
		offset++
		stats.Rows++
		if row.Bucket != ft.SourceBucket {
			stats.Skipped["other-bucket"]++
			if err := b.skip(ctx, "other-bucket", pos, nil); err != nil {
				return fmt.Errorf("file task %s: %w", ft.Key, err)
			}
			continue
		}
		obj, skip := filter.Apply(row)
		if skip != "" {
			stats.Skipped[skip]++
			if err := b.skip(ctx, skip, pos, &messages.Object{Bucket: row.Bucket, Key: row.Key, VersionID: reportVersion(row)}); err != nil {
				return fmt.Errorf("file task %s: %w", ft.Key, err)
			}
			continue
		}
		if err := b.add(ctx, pos, obj); err != nil {
			return fmt.Errorf("file task %s: %w", ft.Key, err)
		}
	}
	if err := b.final(ctx, offset); err != nil {
		return fmt.Errorf("file task %s: %w", ft.Key, err)
	}
	p.logFile("file done", ft.Key, offset, b, &stats)
	return nil
}

// reportVersion is the version a skipped row names in a report: the
// row's (null for the null version) where the report lists versions.
func reportVersion(row inventory.Row) string {
	if !row.HasIsLatest {
		return ""
	}
	if row.VersionID == "" {
		return inventory.NullVersion
	}
	return row.VersionID
}

// begin records a job, when jobs are recorded, and returns the time its
// planning reads Object Lock dates by (0: now).
func (p *Planner) begin(ctx context.Context, id, kind, source string, units int) (int64, error) {
	if p.Jobs == nil {
		return 0, nil
	}
	report := ""
	if p.Reports != nil {
		report = p.Reports.Location(id)
	}
	created, err := p.Jobs.Begin(ctx, id, kind, source, int64(units), report)
	if err != nil {
		return 0, err
	}
	return created.UnixMilli(), nil
}

// defaultJobID names a job sent without one: an inventory's from its
// manifest, a listing's from the control message that carried it (one
// send, whatever SQS redelivers).
func defaultJobID(j Job, messageID string) string {
	if j.Type == TypeListing {
		return jobs.ID(jobs.KindListing, fmt.Sprintf("%s/%s|%t|%s", j.Bucket, j.Prefix, j.Versions, messageID))
	}
	if j.Manifest != "" {
		return jobs.InventoryID(j.Manifest)
	}
	return ""
}

func (p *Planner) logFile(msg, key string, offset int64, b *batcher, stats *Stats) {
	stats.Enqueued, stats.Messages = b.objects, b.messages
	p.logger().Info(msg, "key", key, "offset", offset, "rows", stats.Rows, "enqueued", stats.Enqueued,
		"messages", stats.Messages, "skipped", stats.Skipped)
	if p.OnStats != nil {
		p.OnStats(*stats)
	}
}

// checkpoint sends what is pending, then the continuation. Only after both
// are sent does the current task succeed; if either fails, SQS redelivers
// the task from its old position (duplicates, never loss).
func (p *Planner) checkpoint(ctx context.Context, cfg Config, b *batcher, stats *Stats, next Job, kind, name string) error {
	if err := b.endBlock(ctx); err != nil {
		return fmt.Errorf("%s %s: %w", kind, name, err)
	}
	body, err := next.Encode()
	if err != nil {
		return err
	}
	if err := firstError(p.Sender.Send(ctx, cfg.ControlQueueURL, []queue.Message{{Body: body}})); err != nil {
		return fmt.Errorf("%s %s: send continuation: %w", kind, name, err)
	}
	offset := int64(0)
	if next.File != nil {
		offset = next.File.Offset
	}
	p.logFile("deadline near: checkpointed", name, offset, b, stats)
	return nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Environment variables of the planner function.
const (
	EnvWorkQueueURL    = "S3REKEY_WORK_QUEUE_URL"
	EnvControlQueueURL = "S3REKEY_CONTROL_QUEUE_URL"
	EnvControlDLQURL   = "S3REKEY_CONTROL_DLQ_URL"
	// EnvListingRanges is how many ranges a listing is split into.
	EnvListingRanges = "S3REKEY_LISTING_RANGES"
)

// ConfigFromEnv reads the planner function's configuration.
func ConfigFromEnv() (Config, error) {
	c := Config{WorkQueueURL: os.Getenv(EnvWorkQueueURL), ControlQueueURL: os.Getenv(EnvControlQueueURL), ControlDLQURL: os.Getenv(EnvControlDLQURL)}
	if c.WorkQueueURL == "" || c.ControlQueueURL == "" || c.ControlDLQURL == "" {
		return c, errors.New(EnvWorkQueueURL + ", " + EnvControlQueueURL + " and " + EnvControlDLQURL + " are required")
	}
	jc, err := jobs.ConfigFromEnv()
	if err != nil {
		return c, err
	}
	c.Jobs = jc
	if v := os.Getenv(EnvListingRanges); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return c, fmt.Errorf("%s=%q: want a whole number from 1 to 100", EnvListingRanges, v)
		}
		c.ListingRanges = n
	}
	return c.withDefaults(), nil
}

// New wires a planner to AWS.
func New(awsCfg aws.Config, pol *policy.Policy, cfg Config, logger *slog.Logger) *Planner {
	s3c := s3.NewFromConfig(awsCfg, awsconf.S3Options(awsCfg))
	// The planner reads inventory reports from the deployment's inventory
	// bucket only; its listings name each managed bucket's owner.
	reports := bucketowner.Client{Client: s3c, Owner: os.Getenv(bucketowner.EnvAccountID)}
	p := &Planner{Get: reports, List: s3c, Sender: &queue.Sender{API: sqs.NewFromConfig(awsCfg)}, Policy: pol, Config: cfg.withDefaults(), Logger: logger}
	if store, committer := cfg.Jobs.Wire(awsCfg); store != nil {
		p.Jobs, p.Failer, p.Reports = store, store, committer.Reports
	}
	return p
}
