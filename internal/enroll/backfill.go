package enroll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
)

// MessageSender sends messages to a queue (queue.Sender in production).
type MessageSender interface {
	Send(ctx context.Context, queueURL string, msgs []queue.Message) []error
}

var _ MessageSender = (*queue.Sender)(nil)

// NewBucketWindow is how recently a bucket must have been created for its
// first enrollment to start a backfill: a sweep that catches a missed
// CreateBucket event finds it within the hour (the sweep's default
// period), and a bucket that was there before s3rekey was deployed is
// not backfilled unasked (that is the operator's s3rekey backfill, at a
// time and budget they choose).
const NewBucketWindow = 24 * time.Hour

// DefaultBackfillDelaySeconds delays a new bucket's backfill: it is sent
// just before the bucket's EventBridge notifications are turned on, and
// listed only once they are, so that every object is either listed or
// raises an event.
const DefaultBackfillDelaySeconds = 60

// backfillNew starts the listing backfill of a bucket whose EventBridge
// notifications this enrollment is about to turn on, if the bucket is new:
// objects uploaded between its CreateBucket and now raised no event. The
// job is the one s3rekey backfill --bucket sends (planner.ListingJob),
// named by the bucket and its creation date, so that two enrollments that
// both turn notifications on (the CreateBucket event and a sweep, at
// once) send one job twice, which the planner runs as one; a bucket
// deleted and made again under its name is a new job.
func (e *Enroller) backfillNew(ctx context.Context, bucket string, b policy.Bucket) (string, error) {
	if e.ControlQueueURL == "" || e.Backfills == nil {
		return "", nil
	}
	created, err := e.creationDate(ctx, bucket)
	if err != nil || created.IsZero() || e.now().Sub(created) > NewBucketWindow {
		return "", err
	}
	job := planner.ListingJob(bucket, "", b.Versions == policy.VersionsAll, created)
	body, err := job.Encode()
	if err != nil {
		return "", err
	}
	if err := e.Backfills.Send(ctx, e.ControlQueueURL, []queue.Message{{Body: body, DelaySeconds: e.backfillDelay()}})[0]; err != nil {
		return "", fmt.Errorf("send job %s: %w", job.JobID, err)
	}
	e.logger().Info("new bucket: backfill started", "bucket", bucket, "created", created, "job", job.JobID)
	return job.JobID, nil
}

// creationDate is the bucket's CreationDate as ListBuckets gives it (its
// prefix filter names the bucket).
func (e *Enroller) creationDate(ctx context.Context, bucket string) (time.Time, error) {
	in := &s3.ListBucketsInput{Prefix: aws.String(bucket), MaxBuckets: aws.Int32(1000)}
	if e.Region != "" {
		in.BucketRegion = aws.String(e.Region)
	}
	for range 100 {
		out, err := e.S3.ListBuckets(ctx, in)
		if err != nil {
			return time.Time{}, fmt.Errorf("ListBuckets: %w", err)
		}
		for _, x := range out.Buckets {
			if aws.ToString(x.Name) == bucket {
				return aws.ToTime(x.CreationDate), nil
			}
		}
		if aws.ToString(out.ContinuationToken) == "" {
			return time.Time{}, errors.New("ListBuckets does not list the bucket")
		}
		in.ContinuationToken = out.ContinuationToken
	}
	return time.Time{}, errors.New("ListBuckets: too many pages")
}

func (e *Enroller) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Enroller) backfillDelay() int32 {
	if e.BackfillDelaySeconds <= 0 {
		return DefaultBackfillDelaySeconds
	}
	return e.BackfillDelaySeconds
}
