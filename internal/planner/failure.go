package planner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/queue"
)

// JobFailer records that a job cannot proceed (jobs.Store in production).
type JobFailer interface {
	FailSource(ctx context.Context, jobID, source, reason string) error
}

var _ JobFailer = (*jobs.Store)(nil)

// DefaultMaxReceives is how often the control queue delivers a message
// before SQS moves it to the dead-letter queue: the stack's
// maxReceiveCount. On its last delivery the planner dead-letters a message
// itself, with the reason, rather than leave SQS to move it without one.
const DefaultMaxReceives = 5

// Attributes of a control dead letter.
const (
	AttrOutcome = "s3rekey.outcome" // "rejected" (unreadable) or "failed"
	AttrReason  = "s3rekey.reason"
	AttrJob     = "s3rekey.job"
	AttrSource  = "s3rekey.source-message-id"
)

// maxReasonBytes keeps a reason readable in a job record and a message
// attribute.
const maxReasonBytes = 512

// permanentError marks an error that no retry can mend: an inventory file
// that is not what it claims to be.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// corrupt marks err, met reading a downloaded and verified data file, as
// permanent: the file's bytes are wrong, and they stay wrong.
func corrupt(err error) error { return &permanentError{err} }

// Permanent reports whether err is one that retrying cannot mend, and
// says why in words for the job record and the dead letter: a bucket or
// an inventory file that does not exist, a file or manifest whose checksum
// does not match, a corrupt file, a job the policy refuses. Throttling,
// 5xx answers and network errors are not permanent: SQS delivers the
// message again.
func Permanent(err error) (reason string, ok bool) {
	var rej *messages.RejectedError
	var perm *permanentError
	var api smithy.APIError
	switch {
	case errors.As(err, &rej):
		return truncateReason(rej.Reason), true
	case errors.As(err, &perm), errors.Is(err, inventory.ErrChecksum):
		return Reason(err), true
	case errors.As(err, &api):
		switch api.ErrorCode() {
		case "NoSuchBucket", "NoSuchKey":
			return Reason(err), true
		}
	}
	return "", false
}

// Reason is err in words: an SDK operation error without its request ids
// ("S3 ListObjectsV2: NoSuchBucket: The specified bucket does not exist").
func Reason(err error) string {
	s := err.Error()
	var op *smithy.OperationError
	var api smithy.APIError
	if errors.As(err, &op) && errors.As(err, &api) {
		short := fmt.Sprintf("%s %s: %s: %s", op.Service(), op.Operation(), api.ErrorCode(), api.ErrorMessage())
		s = strings.Replace(s, op.Error(), short, 1)
	}
	return truncateReason(s)
}

func truncateReason(s string) string {
	if len(s) <= maxReasonBytes {
		return s
	}
	return strings.ToValidUTF8(s[:maxReasonBytes-3], "") + "..."
}

// settle decides what becomes of a control message whose job returned err:
// a permanent error fails the job, with its reason, and dead-letters the
// message with it; a retryable one is retried by SQS, until its last
// delivery, which is dead-lettered here so that it carries its reason (the
// job stays open: a redrive, once the cause is fixed, can finish it).
func (p *Planner) settle(ctx context.Context, cfg Config, rec events.SQSMessage, job Job, err error) error {
	reason, permanent := Permanent(err)
	if !permanent {
		received, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
		if received < cfg.maxReceives() {
			return err
		}
		reason = truncateReason(fmt.Sprintf("gave up after %d deliveries: %s", received, Reason(err)))
		p.logger().Error("control message failed on its last delivery: dead-lettered", "messageId", rec.MessageId, "job", job.JobID, "reason", reason)
		return p.sendDeadLetter(ctx, cfg, rec, job.JobID, "failed", reason)
	}
	p.logger().Error("job failed", "messageId", rec.MessageId, "job", job.JobID, "reason", reason)
	if job.JobID != "" && p.Failer != nil {
		if ferr := p.Failer.FailSource(ctx, job.JobID, job.source(), reason); ferr != nil {
			return ferr // retried: the failure is recorded on a later delivery
		}
	}
	if err := p.sendDeadLetter(ctx, cfg, rec, job.JobID, "failed", reason); err != nil {
		return err
	}
	if p.OnFailed != nil && job.JobID != "" {
		p.OnFailed(job.JobID, reason)
	}
	return nil
}

// source is what a job reads, as its record names it.
func (j Job) source() string {
	switch j.Type {
	case TypeInventory:
		return j.Manifest
	case TypeListing:
		return "s3://" + j.Bucket + "/" + j.Prefix
	}
	return "" // a file task's job began with its manifest
}

// sendDeadLetter moves a control message to the control DLQ with why.
func (p *Planner) sendDeadLetter(ctx context.Context, cfg Config, rec events.SQSMessage, jobID, outcome, reason string) error {
	if cfg.ControlDLQURL == "" {
		return errors.New("no control DLQ configured for a message that cannot be run: " + reason)
	}
	attrs := map[string]string{AttrOutcome: outcome, AttrReason: reason, AttrSource: rec.MessageId}
	if jobID != "" {
		attrs[AttrJob] = jobID
	}
	return p.Sender.Send(ctx, cfg.ControlDLQURL, []queue.Message{{Body: rec.Body, Attributes: attrs}})[0]
}

// DefaultChecksumRereadFor is how long a data file whose bytes do not
// match the MD5 its manifest pins is read again: long enough for a
// download spoilt on the way, or a file being put back, to come right;
// short enough that a file that stays wrong fails its job in seconds.
const DefaultChecksumRereadFor = 20 * time.Second

// fetch downloads a file task's data file, verified against its MD5. A
// mismatch is read again, with growing pauses, for ChecksumRereadFor; a
// file still wrong then is an error no retry mends.
func (p *Planner) fetch(ctx context.Context, cfg Config, ft *FileTask) (*os.File, error) {
	window := cfg.ChecksumRereadFor
	if window <= 0 {
		window = DefaultChecksumRereadFor
	}
	deadline := time.Now().Add(window)
	pause := window / 16
	for {
		f, err := inventory.Fetch(ctx, p.Get, ft.Bucket, ft.Key, ft.MD5, cfg.TempDir)
		if !errors.Is(err, inventory.ErrChecksum) || !time.Now().Add(pause).Before(deadline) {
			return f, err
		}
		p.logger().Warn("data file does not match its manifest's MD5; reading it again", "key", ft.Key, "in", pause, "error", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
		pause *= 2
	}
}

func (c Config) maxReceives() int {
	if c.MaxReceives <= 0 {
		return DefaultMaxReceives
	}
	return c.MaxReceives
}
