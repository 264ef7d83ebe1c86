package planner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/inventory"
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
}

func (c Config) withDefaults() Config {
	if c.MessageBytes <= 0 {
		c.MessageBytes = 64 << 10
	}
	if c.DeadlineMargin <= 0 {
		c.DeadlineMargin = 20 * time.Second
	}
	return c
}

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
	jobs, err := DecodeJobs(rec.Body)
	var rej *messages.RejectedError
	if errors.As(err, &rej) {
		p.logger().Warn("control message rejected", "messageId", rec.MessageId, "reason", rej.Reason)
		return p.deadLetter(ctx, cfg, rec, rej.Reason)
	}
	received, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	for _, job := range jobs {
		job.Redelivered = job.Redelivered || received > 1
		if err := p.Run(ctx, job); err != nil {
			var rej *messages.RejectedError
			if errors.As(err, &rej) {
				return p.deadLetter(ctx, cfg, rec, rej.Reason)
			}
			return err
		}
	}
	return nil
}

func (p *Planner) deadLetter(ctx context.Context, cfg Config, rec events.SQSMessage, reason string) error {
	if cfg.ControlDLQURL == "" {
		return errors.New("rejected message and no control DLQ configured: " + reason)
	}
	errs := p.Sender.Send(ctx, cfg.ControlDLQURL, []queue.Message{{Body: rec.Body, Attributes: map[string]string{
		"s3rekey.outcome": "rejected", "s3rekey.reason": reason, "s3rekey.source-message-id": rec.MessageId}}})
	return errs[0]
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
		return nil, "", err
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
	if _, ok := p.Policy.Lookup(m.SourceBucket); !ok {
		p.logger().Warn("inventory of a bucket the policy does not manage: nothing to do", "manifest", job.Manifest, "sourceBucket", m.SourceBucket)
		return nil
	}
	cols, err := m.Columns()
	if err != nil {
		return &messages.RejectedError{Reason: err.Error()}
	}
	var msgs []queue.Message
	for _, f := range m.Files {
		body, err := Job{Type: TypeFile, JobID: job.Manifest, Redelivered: job.Redelivered, File: &FileTask{Bucket: bucket, Key: f.Key,
			MD5: f.MD5Checksum, Size: f.Size, Format: m.FileFormat, Columns: cols, SourceBucket: m.SourceBucket}}.Encode()
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
	target, ok := p.Policy.Lookup(ft.SourceBucket)
	if !ok {
		p.logger().Warn("file task of a bucket the policy no longer manages: nothing to do", "sourceBucket", ft.SourceBucket, "key", ft.Key)
		return nil
	}
	f, err := inventory.Fetch(ctx, p.Get, ft.Bucket, ft.Key, ft.MD5, cfg.TempDir)
	if err != nil {
		return fmt.Errorf("file task %s: %w", ft.Key, err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	r, err := inventory.Open(ft.Format, f, ft.Columns)
	if err != nil {
		return fmt.Errorf("file task %s: %w", ft.Key, err)
	}
	defer r.Close()
	if ft.Offset > 0 {
		if err := r.Skip(ft.Offset); err != nil {
			return fmt.Errorf("file task %s: resume at row %d: %w", ft.Key, ft.Offset, err)
		}
	}
	filter := inventory.Filter{Bucket: target, Now: p.now()}
	b := p.newBatcher(cfg, job)
	stats := Stats{Skipped: map[string]int64{}}
	offset := ft.Offset
	for {
		// Check the clock every 256 rows, and only after some progress, so
		// that a late start cannot checkpoint forever without moving.
		if stats.Rows > 0 && stats.Rows%256 == 0 && p.nearDeadline(ctx, cfg.DeadlineMargin) {
			next := *ft
			next.Offset = offset
			return p.checkpoint(ctx, cfg, b, &stats, Job{Type: TypeFile, JobID: job.JobID, Redelivered: job.Redelivered, File: &next}, "file", ft.Key)
		}
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("file task %s at row %d: %w", ft.Key, offset, err)
		}
		offset++
		stats.Rows++
		if row.Bucket != ft.SourceBucket {
			stats.Skipped["other-bucket"]++
			continue
		}
		obj, skip := filter.Apply(row)
		if skip != "" {
			stats.Skipped[skip]++
			continue
		}
		if err := b.add(ctx, obj); err != nil {
			return fmt.Errorf("file task %s: %w", ft.Key, err)
		}
	}
	if err := b.flush(ctx); err != nil {
		return fmt.Errorf("file task %s: %w", ft.Key, err)
	}
	p.logFile("file done", ft.Key, offset, b, &stats)
	return nil
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
	if err := b.flush(ctx); err != nil {
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

// runListing pages through a bucket and enqueues what is in scope.
func (p *Planner) runListing(ctx context.Context, job Job) error {
	cfg := p.Config.withDefaults()
	target, ok := p.Policy.Lookup(job.Bucket)
	if !ok {
		return &messages.RejectedError{Reason: "listing of bucket " + job.Bucket + ", which the policy does not manage"}
	}
	if job.Versions && target.Versions != policy.VersionsAll {
		return &messages.RejectedError{Reason: "listing versions of " + job.Bucket + ", whose policy says versions: current"}
	}
	b := p.newBatcher(cfg, job)
	stats := Stats{Skipped: map[string]int64{}}
	for page := 0; ; page++ {
		if page > 0 && p.nearDeadline(ctx, cfg.DeadlineMargin) {
			return p.checkpoint(ctx, cfg, b, &stats, job, "listing", job.Bucket)
		}
		var objs []messages.Object
		var more bool
		var err error
		if job.Versions {
			objs, more, err = p.listVersionsPage(ctx, &job, target.ExpectedOwner, &stats)
		} else {
			objs, more, err = p.listPage(ctx, &job, target.ExpectedOwner)
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", job.Bucket, err)
		}
		for _, o := range objs {
			stats.Rows++
			if !target.InScope(o.Key) {
				stats.Skipped["excluded-prefix"]++
				continue
			}
			if err := b.add(ctx, o); err != nil {
				return fmt.Errorf("listing %s: %w", job.Bucket, err)
			}
		}
		if !more {
			break
		}
	}
	if err := b.flush(ctx); err != nil {
		return fmt.Errorf("listing %s: %w", job.Bucket, err)
	}
	p.logFile("listing done", job.Bucket, 0, b, &stats)
	return nil
}

// listPage reads one page of current objects and advances job past it.
func (p *Planner) listPage(ctx context.Context, job *Job, owner string) ([]messages.Object, bool, error) {
	out, err := p.List.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(job.Bucket), Prefix: nonEmpty(job.Prefix),
		ContinuationToken: nonEmpty(job.Token), ExpectedBucketOwner: aws.String(owner), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		return nil, false, err
	}
	objs := make([]messages.Object, len(out.Contents))
	for i, o := range out.Contents {
		key, err := listedKey(o.Key)
		if err != nil {
			return nil, false, err
		}
		objs[i] = messages.Object{Bucket: job.Bucket, Key: key}
	}
	job.Token = aws.ToString(out.NextContinuationToken)
	return objs, aws.ToBool(out.IsTruncated), nil
}

// listVersionsPage reads one page of versions and advances job past it;
// delete markers are counted as skipped.
func (p *Planner) listVersionsPage(ctx context.Context, job *Job, owner string, stats *Stats) ([]messages.Object, bool, error) {
	out, err := p.List.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(job.Bucket), Prefix: nonEmpty(job.Prefix),
		KeyMarker: nonEmpty(job.KeyMarker), VersionIdMarker: nonEmpty(job.VersionIDMarker), ExpectedBucketOwner: aws.String(owner),
		EncodingType: types.EncodingTypeUrl})
	if err != nil {
		return nil, false, err
	}
	stats.Rows += int64(len(out.DeleteMarkers))
	stats.Skipped["delete-marker"] += int64(len(out.DeleteMarkers))
	objs := make([]messages.Object, len(out.Versions))
	for i, v := range out.Versions {
		key, err := listedKey(v.Key)
		if err != nil {
			return nil, false, err
		}
		objs[i] = messages.Object{Bucket: job.Bucket, Key: key, VersionID: aws.ToString(v.VersionId)}
	}
	marker, err := listedKey(out.NextKeyMarker)
	if err != nil {
		return nil, false, err
	}
	job.KeyMarker, job.VersionIDMarker = marker, aws.ToString(out.NextVersionIdMarker)
	return objs, aws.ToBool(out.IsTruncated), nil
}

// listedKey decodes a key (or key marker) listed with encoding-type=url:
// without it, a key holding a character XML 1.0 forbids makes its whole
// page unreadable, and with it S3 URL-encodes every key in the answer.
func listedKey(s *string) (string, error) {
	raw := aws.ToString(s)
	if !strings.ContainsAny(raw, "%+") {
		return raw, nil
	}
	key, err := url.QueryUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("listed key %q is not URL-encoded: %w", raw, err)
	}
	return key, nil
}

// messagePacker draws the boundaries of object tasks: at most limit bytes
// each (overhead for the task's own fields, then every object's JSON and a
// comma). The batcher sends by it; the plan counts by it.
type messagePacker struct {
	limit, overhead  int
	size, n          int
	messages, chunks int64 // messages closed, and their billed SQS chunks
}

// add accounts for obj and reports whether it closed the previous, full
// message (obj then starts the next one).
func (p *messagePacker) add(obj messages.Object) (closedPrevious bool) {
	enc, _ := json.Marshal(obj)
	if p.n > 0 && p.size+len(enc)+1 > p.limit {
		p.close()
		closedPrevious = true
	}
	if p.n == 0 {
		p.size = p.overhead
	}
	p.n++
	p.size += len(enc) + 1
	return closedPrevious
}

func (p *messagePacker) close() {
	if p.n == 0 {
		return
	}
	p.messages++
	p.chunks += cost.SQSChunks(p.size)
	p.n, p.size = 0, 0
}

// batcher packs objects into object tasks (see messagePacker) and sends
// them forty messages at a time.
type batcher struct {
	p           *Planner
	cfg         Config
	jobID       string
	source      string // messages.SourceInventory or SourceListing
	redelivered bool
	pack        messagePacker
	cur         []messages.Object
	ready       []queue.Message
	objects     int64
	messages    int64
}

// taskOverhead is the encoded size of a task without its objects.
const taskOverhead = 128

func (p *Planner) newBatcher(cfg Config, job Job) *batcher {
	source := messages.SourceInventory
	if job.Type == TypeListing {
		source = messages.SourceListing
	}
	return &batcher{p: p, cfg: cfg, jobID: job.JobID, source: source, redelivered: job.Redelivered,
		pack: messagePacker{limit: cfg.MessageBytes, overhead: taskOverhead + len(job.JobID)}}
}

func (b *batcher) add(ctx context.Context, obj messages.Object) error {
	if b.pack.add(obj) {
		if err := b.seal(ctx); err != nil {
			return err
		}
	}
	b.cur = append(b.cur, obj)
	return nil
}

// seal closes the current task; forty sealed tasks are sent at once.
func (b *batcher) seal(ctx context.Context) error {
	if len(b.cur) == 0 {
		return nil
	}
	body, err := messages.Task{Source: b.source, JobID: b.jobID, Redelivered: b.redelivered, Objects: b.cur}.Encode()
	if err != nil {
		return err
	}
	b.ready = append(b.ready, queue.Message{Body: body})
	b.objects += int64(len(b.cur))
	b.cur = nil
	if len(b.ready) >= queue.MaxBatchEntries*4 {
		return b.send(ctx)
	}
	return nil
}

func (b *batcher) send(ctx context.Context) error {
	if len(b.ready) == 0 {
		return nil
	}
	if err := firstError(b.p.Sender.Send(ctx, b.cfg.WorkQueueURL, b.ready)); err != nil {
		return fmt.Errorf("enqueue object tasks: %w", err)
	}
	b.messages += int64(len(b.ready))
	b.ready = b.ready[:0]
	return nil
}

func (b *batcher) flush(ctx context.Context) error {
	b.pack.close()
	if err := b.seal(ctx); err != nil {
		return err
	}
	return b.send(ctx)
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
)

// ConfigFromEnv reads the planner function's configuration.
func ConfigFromEnv() (Config, error) {
	c := Config{WorkQueueURL: os.Getenv(EnvWorkQueueURL), ControlQueueURL: os.Getenv(EnvControlQueueURL), ControlDLQURL: os.Getenv(EnvControlDLQURL)}
	if c.WorkQueueURL == "" || c.ControlQueueURL == "" || c.ControlDLQURL == "" {
		return c, errors.New(EnvWorkQueueURL + ", " + EnvControlQueueURL + " and " + EnvControlDLQURL + " are required")
	}
	return c.withDefaults(), nil
}

// New wires a planner to AWS.
func New(awsCfg aws.Config, pol *policy.Policy, cfg Config, logger *slog.Logger) *Planner {
	s3c := s3.NewFromConfig(awsCfg, awsconf.S3Options(awsCfg))
	return &Planner{Get: s3c, List: s3c, Sender: &queue.Sender{API: sqs.NewFromConfig(awsCfg)}, Policy: pol, Config: cfg.withDefaults(), Logger: logger}
}
