package demo

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/jobs"
)

// NewBucketKey is the first object uploaded to the bucket created mid-run.
const NewBucketKey = "first upload.txt"

// newBucketMidRun creates a bucket the policy's rule selects while the
// pipeline runs, waits until the enroll function has turned on its
// EventBridge notifications (from the CreateBucket event), and uploads its
// first object, which the pipeline then brings onto the target key.
func (d *demo) newBucketMidRun(ctx context.Context) error {
	created := time.Now()
	if _, err := d.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(NewBucket)}); err != nil {
		return fmt.Errorf("create %s: %w", NewBucket, err)
	}
	m, _ := d.policy.Resolve(ctx, NewBucket)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := d.s3.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(NewBucket)})
		if err == nil && out.EventBridgeConfiguration != nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("s3://%s was not enrolled within 30 s of its creation", NewBucket)
		}
	}
	d.say("created s3://%s mid-run: %s selects it, enrolled in %v (EventBridge on); uploading its first object",
		NewBucket, m.By, time.Since(created).Round(time.Millisecond))
	_, err := d.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(NewBucket), Key: aws.String(NewBucketKey),
		Body: bytes.NewReader([]byte("the first object of a bucket created after the deploy"))})
	return err
}

// newBucketBackfilled is how many objects the backfill that enrollment
// started for NewBucket counted.
func newBucketBackfilled(js []*jobs.Job) int64 {
	var n int64
	for _, j := range js {
		if j.Kind == jobs.KindListing && j.Source == "s3://"+NewBucket+"/" {
			n += j.Done
		}
	}
	return n
}
