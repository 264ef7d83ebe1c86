package planner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
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
		if err := p.Run(ctx, job); err != nil {
			return p.settle(ctx, cfg, rec, job, err)
		}
	}
	return nil
}

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

// runListing pages through a bucket and enqueues what is in scope.
func (p *Planner) runListing(ctx context.Context, job Job) error {
	cfg := p.Config.withDefaults()
	sel, err := p.Policy.Resolve(ctx, job.Bucket)
	if err != nil {
		return err
	}
	target := sel.Bucket
	if !sel.Managed {
		return &messages.RejectedError{Reason: "listing of bucket " + job.Bucket + ", which the policy does not manage"}
	}
	if job.Versions && target.Versions != policy.VersionsAll {
		return &messages.RejectedError{Reason: "listing versions of " + job.Bucket + ", whose policy says versions: current"}
	}
	if job.Range == nil && job.Token == "" && job.KeyMarker == "" && job.Listed == 0 {
		ranges, err := p.splitListing(ctx, cfg, job, target.ExpectedOwner)
		if err != nil {
			return fmt.Errorf("listing %s: split: %w", job.Bucket, err)
		}
		if _, err := p.begin(ctx, job.JobID, jobs.KindListing, "s3://"+job.Bucket+"/"+job.Prefix, max(1, len(ranges))); err != nil {
			return err
		}
		if len(ranges) > 1 {
			return p.sendRanges(ctx, cfg, job, ranges)
		}
	}
	unit := fmt.Sprintf("s3://%s/%s|versions=%t", job.Bucket, job.Prefix, job.Versions)
	if job.Range != nil {
		unit += "|range=" + strconv.Itoa(job.Range.Index)
		if job.Token == "" && job.KeyMarker == "" && job.Listed == 0 && job.Range.After != "" {
			// The range starts after its lower bound: S3's StartAfter and
			// KeyMarker are exclusive too.
			job.StartAfter, job.KeyMarker = job.Range.After, job.Range.After
		}
	}
	b := p.newBatcher(cfg, job, unit)
	stats := Stats{Skipped: map[string]int64{}}
	// The next page is read while this one is enqueued, so that a lister
	// waits for S3's answer or for its own work, not for the sum. job
	// stays the cursor of the pages enqueued: a checkpoint resumes after
	// them, and a page read ahead is read again.
	next := p.readPage(ctx, job, target.ExpectedOwner)
	for page := 0; ; page++ {
		if page > 0 && p.nearDeadline(ctx, cfg.DeadlineMargin) {
			return p.checkpoint(ctx, cfg, b, &stats, job, "listing", job.Bucket)
		}
		read := <-next
		if read.err != nil {
			return fmt.Errorf("listing %s: %w", job.Bucket, read.err)
		}
		job.Token, job.KeyMarker, job.VersionIDMarker = read.after.Token, read.after.KeyMarker, read.after.VersionIDMarker
		// Entries past the range's end end the range.
		objs, markers, past := job.Range.clip(read.objs, read.markers)
		more := read.more && !past
		if more {
			next = p.readPage(ctx, job, target.ExpectedOwner)
		}
		// A page is a block: its tasks are named by its first entry, which a
		// replay from the same place lists first again.
		first := ""
		for _, o := range append(slices.Clip(objs), markers...) {
			if k := o.Key + "\x00" + o.VersionID; first == "" || k < first {
				first = k
			}
		}
		i := 0
		pos := func() string { i++; return first + "#" + strconv.Itoa(i-1) }
		for _, m := range markers {
			stats.Rows++
			stats.Skipped[inventory.SkipDeleteMarker]++
			if err := b.skip(ctx, inventory.SkipDeleteMarker, pos(), &m); err != nil {
				return fmt.Errorf("listing %s: %w", job.Bucket, err)
			}
		}
		for _, o := range objs {
			stats.Rows++
			if !target.InScope(o.Key) {
				stats.Skipped[rekey.ReasonExcludedPrefix]++
				if err := b.skip(ctx, rekey.ReasonExcludedPrefix, pos(), &o); err != nil {
					return fmt.Errorf("listing %s: %w", job.Bucket, err)
				}
				continue
			}
			if err := b.add(ctx, pos(), o); err != nil {
				return fmt.Errorf("listing %s: %w", job.Bucket, err)
			}
		}
		job.Listed += int64(len(objs) + len(markers))
		if err := b.endBlock(ctx); err != nil {
			return fmt.Errorf("listing %s: %w", job.Bucket, err)
		}
		if !more {
			break
		}
	}
	if err := b.final(ctx, job.Listed); err != nil {
		return fmt.Errorf("listing %s: %w", job.Bucket, err)
	}
	p.logFile("listing done", job.Bucket, 0, b, &stats)
	return nil
}

// splitListing chooses the ranges a listing is split into: bounds at
// evenly spaced top-level prefixes under the job's prefix (a listing with
// a delimiter, at most ten pages of prefixes). Fewer than two prefixes, or
// ListingRanges 1: one range, listed as before.
func (p *Planner) splitListing(ctx context.Context, cfg Config, job Job, owner string) ([]KeyRange, error) {
	if cfg.ListingRanges < 2 {
		return nil, nil
	}
	var prefixes []string
	var token *string
	for range 10 {
		out, err := p.List.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(job.Bucket), Prefix: nonEmpty(job.Prefix), Delimiter: aws.String("/"),
			ContinuationToken: token, ExpectedBucketOwner: aws.String(owner), EncodingType: types.EncodingTypeUrl})
		if err != nil {
			return nil, err
		}
		for _, cp := range out.CommonPrefixes {
			prefix, err := listedKey(cp.Prefix, out.EncodingType)
			if err != nil {
				return nil, err
			}
			prefixes = append(prefixes, prefix)
		}
		if token = out.NextContinuationToken; !aws.ToBool(out.IsTruncated) || token == nil {
			break
		}
	}
	n := min(cfg.ListingRanges, len(prefixes))
	if n < 2 {
		return nil, nil
	}
	// Range i covers (bound i, bound i+1]: contiguous and disjoint, so every
	// key is in exactly one, whatever the bounds; prefixes make ranges of
	// similar size where the bucket's top level is balanced.
	ranges := make([]KeyRange, n)
	for i := range n {
		ranges[i].Index = i
		if i > 0 {
			ranges[i].After = prefixes[i*len(prefixes)/n]
			ranges[i-1].Until = ranges[i].After
		}
	}
	return ranges, nil
}

// sendRanges sends a listing's ranges to the control queue, to be listed
// at once by as many planner invocations.
func (p *Planner) sendRanges(ctx context.Context, cfg Config, job Job, ranges []KeyRange) error {
	var msgs []queue.Message
	for i := range ranges {
		r := job
		r.Range = &ranges[i]
		body, err := r.Encode()
		if err != nil {
			return err
		}
		msgs = append(msgs, queue.Message{Body: body})
	}
	if err := firstError(p.Sender.Send(ctx, cfg.ControlQueueURL, msgs)); err != nil {
		return fmt.Errorf("listing %s: send its ranges: %w", job.Bucket, err)
	}
	p.logger().Info("listing split into ranges", "bucket", job.Bucket, "prefix", job.Prefix, "ranges", len(ranges))
	return nil
}

// clip keeps the entries of a page that lie in the range, and reports
// whether the page reached past its end (listings are in key order).
func (r *KeyRange) clip(objs, markers []messages.Object) (inObjs, inMarkers []messages.Object, past bool) {
	if r == nil {
		return objs, markers, false
	}
	keep := func(list []messages.Object) []messages.Object {
		var out []messages.Object
		for _, o := range list {
			if r.contains(o.Key) {
				out = append(out, o)
			} else if r.Until != "" && o.Key > r.Until {
				past = true
			}
		}
		return out
	}
	return keep(objs), keep(markers), past
}

// pageRead is one page of a listing, and the cursor after it.
type pageRead struct {
	objs, markers []messages.Object
	more          bool
	after         Job
	err           error
}

// readPage reads the page at job's cursor in the background.
func (p *Planner) readPage(ctx context.Context, job Job, owner string) <-chan pageRead {
	out := make(chan pageRead, 1) // a page read ahead and not used is dropped
	go func() {
		var r pageRead
		if job.Versions {
			r.objs, r.markers, r.more, r.err = p.listVersionsPage(ctx, &job, owner)
		} else {
			r.objs, r.more, r.err = p.listPage(ctx, &job, owner)
		}
		r.after = job
		out <- r
	}()
	return out
}

// listPage reads one page of current objects and advances job past it.
func (p *Planner) listPage(ctx context.Context, job *Job, owner string) ([]messages.Object, bool, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(job.Bucket), Prefix: nonEmpty(job.Prefix),
		ContinuationToken: nonEmpty(job.Token), ExpectedBucketOwner: aws.String(owner), EncodingType: types.EncodingTypeUrl}
	if job.Token == "" {
		in.StartAfter = nonEmpty(job.StartAfter)
	}
	out, err := p.List.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, false, err
	}
	objs := make([]messages.Object, len(out.Contents))
	for i, o := range out.Contents {
		key, err := listedKey(o.Key, out.EncodingType)
		if err != nil {
			return nil, false, err
		}
		objs[i] = messages.Object{Bucket: job.Bucket, Key: key}
	}
	job.Token = aws.ToString(out.NextContinuationToken)
	return objs, aws.ToBool(out.IsTruncated), nil
}

// listVersionsPage reads one page of versions and advances job past it;
// it returns the versions and the delete markers apart.
func (p *Planner) listVersionsPage(ctx context.Context, job *Job, owner string) (objs, markers []messages.Object, more bool, err error) {
	out, err := p.List.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(job.Bucket), Prefix: nonEmpty(job.Prefix),
		KeyMarker: nonEmpty(job.KeyMarker), VersionIdMarker: nonEmpty(job.VersionIDMarker), ExpectedBucketOwner: aws.String(owner),
		EncodingType: types.EncodingTypeUrl})
	if err != nil {
		return nil, nil, false, err
	}
	for _, v := range out.Versions {
		key, err := listedKey(v.Key, out.EncodingType)
		if err != nil {
			return nil, nil, false, err
		}
		objs = append(objs, messages.Object{Bucket: job.Bucket, Key: key, VersionID: aws.ToString(v.VersionId)})
	}
	for _, d := range out.DeleteMarkers {
		key, err := listedKey(d.Key, out.EncodingType)
		if err != nil {
			return nil, nil, false, err
		}
		markers = append(markers, messages.Object{Bucket: job.Bucket, Key: key, VersionID: aws.ToString(d.VersionId)})
	}
	marker, err := listedKey(out.NextKeyMarker, out.EncodingType)
	if err != nil {
		return nil, nil, false, err
	}
	job.KeyMarker, job.VersionIDMarker = marker, aws.ToString(out.NextVersionIdMarker)
	return objs, markers, aws.ToBool(out.IsTruncated), nil
}

// listedKey decodes a key (or key marker) listed with encoding-type=url:
// without it, a key holding a character XML 1.0 forbids makes its whole
// page unreadable, and with it S3 URL-encodes every key in the answer.
// Only an answer that says it is encoded is decoded (API_ListObjectsV2
// and API_ListObjectVersions, EncodingType: "If you specify the
// encoding-type request parameter, Amazon S3 includes this element in the
// response, and returns encoded key name values"): a server that ignores
// the parameter sends keys as they are, and decoding them would turn
// "a+b" into "a b".
func listedKey(s *string, encoding types.EncodingType) (string, error) {
	raw := aws.ToString(s)
	if encoding != types.EncodingTypeUrl || !strings.ContainsAny(raw, "%+") {
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

// batcher packs a unit's rows (a data file's, a listing's) into object
// tasks (see messagePacker) and sends them forty messages at a time. A
// task covers consecutive rows within one block; it carries the objects
// to update, the planner's counts for its rows, and, when reports are
// written, the skipped rows to list. Its id is its unit and first row.
type batcher struct {
	p           *Planner
	cfg         Config
	jobID       string
	unit        string
	source      string // messages.SourceInventory or SourceListing
	redelivered bool
	pack        messagePacker
	// The open task: its first row's position, its rows, its skips.
	start    string
	rows     int64
	skipped  map[string]int64
	cur      []messages.Object
	ready    []queue.Message
	objects  int64
	messages int64
}

// taskOverhead is the encoded size of a task without its objects: its
// fields, id and the planner's counts.
const taskOverhead = 384

func (p *Planner) newBatcher(cfg Config, job Job, unit string) *batcher {
	source := messages.SourceInventory
	if job.Type == TypeListing {
		source = messages.SourceListing
	}
	return &batcher{p: p, cfg: cfg, jobID: job.JobID, unit: unit, source: source, redelivered: job.Redelivered,
		pack: messagePacker{limit: cfg.MessageBytes, overhead: taskOverhead + len(job.JobID)}, skipped: map[string]int64{}}
}

func (b *batcher) tracked() bool { return b.p.Jobs != nil && b.jobID != "" }

// add puts an object to update, at row pos, into the open task.
func (b *batcher) add(ctx context.Context, pos string, obj messages.Object) error {
	if b.pack.add(obj) {
		if err := b.seal(ctx); err != nil {
			return err
		}
	}
	if b.rows == 0 {
		b.start = pos
	}
	b.rows++
	b.cur = append(b.cur, obj)
	return nil
}

// skip counts a row not sent for an update; with reports, the object
// rides along to be listed.
func (b *batcher) skip(ctx context.Context, reason, pos string, obj *messages.Object) error {
	if obj != nil && b.p.Reports != nil && b.tracked() {
		o := messages.Object{Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, Skip: reason}
		if b.pack.add(o) {
			if err := b.seal(ctx); err != nil {
				return err
			}
		}
		b.cur = append(b.cur, o)
	}
	if b.rows == 0 {
		b.start = pos
	}
	b.rows++
	b.skipped[reason]++
	return nil
}

// seal closes the open task; forty sealed tasks are sent at once. An open
// task of skipped rows alone is sent only to carry its counts.
func (b *batcher) seal(ctx context.Context) error {
	if b.rows == 0 || (len(b.cur) == 0 && !b.tracked()) {
		b.rows, b.cur = 0, nil
		clear(b.skipped)
		return nil
	}
	t := messages.Task{Source: b.source, JobID: b.jobID, Redelivered: b.redelivered, Objects: b.cur}
	if b.tracked() {
		t.ID = jobs.MessageID(b.unit, b.start)
		t.Plan = &messages.Plan{Rows: b.rows, Skipped: maps.Clone(b.skipped)}
	}
	if err := b.queue(ctx, t); err != nil {
		return err
	}
	for _, o := range b.cur {
		if o.Skip == "" {
			b.objects++
		}
	}
	b.rows, b.cur = 0, nil
	clear(b.skipped)
	return nil
}

func (b *batcher) queue(ctx context.Context, t messages.Task) error {
	body, err := t.Encode()
	if err != nil {
		return err
	}
	b.ready = append(b.ready, queue.Message{Body: body})
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

// endBlock closes the open task and sends what is ready.
func (b *batcher) endBlock(ctx context.Context) error {
	b.pack.close()
	if err := b.seal(ctx); err != nil {
		return err
	}
	return b.send(ctx)
}

// final ends the unit: its last block, then, for a job, the task that says
// how many rows the unit had.
func (b *batcher) final(ctx context.Context, unitRows int64) error {
	b.pack.close()
	if err := b.seal(ctx); err != nil {
		return err
	}
	if b.tracked() {
		t := messages.Task{Source: b.source, JobID: b.jobID, Redelivered: b.redelivered, ID: jobs.MessageID(b.unit, "final"),
			Plan: &messages.Plan{Final: true, UnitRows: unitRows}}
		if err := b.queue(ctx, t); err != nil {
			return err
		}
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
