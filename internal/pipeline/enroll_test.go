package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/enroll"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
)

// A bucket created after the pipeline starts is enrolled from its
// CreateBucket event and its first upload is enforced; a bucket whose tags
// change into a tag rule follows at its PutBucketTagging event; an excluded
// bucket is never touched. Bucket events reach the enroll function through
// EventBridge (a management-event rule), uploads through one rule for every
// bucket.
func TestBucketsEnrolledWhenTheyAppear(t *testing.T) {
	env, q, events := enrollWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := env.Key(t)
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"exclude":[{"names":["*-tfstate"]}],"rules":[
		{"name":"confidential","select":{"tags":{"data-classification":"confidential"}},"settings":{"kmsKeyArn":%q,"bucketKeyEnabled":true}},
		{"name":"fresh","select":{"names":["fresh-*"]},"settings":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"setDefaultEncryption":true}}]}`, key, key)))
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(env.Cfg, pol, q, pipeline.Options{Enroll: pipeline.EnrollOptions{Queue: events, InventoryBucketARN: "arn:aws:s3:::inventory",
		AccountID: env.Emu.Account()}})
	done := make(chan error, 1)
	go func() { done <- p.Runner.Run(ctx) }()

	for _, b := range []string{"fresh-one", "fresh-tfstate", "hr-files"} {
		env.Bucket(t, b, false)
	}
	if _, err := env.S3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("hr-files"), Tagging: &types.Tagging{TagSet: []types.Tag{
		{Key: aws.String("data-classification"), Value: aws.String("confidential")}}}}); err != nil {
		t.Fatal(err)
	}
	eventBridgeOn := func(b string) bool {
		out, err := env.S3.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(b)})
		return err == nil && out.EventBridgeConfiguration != nil
	}
	waitFor(t, "fresh-one and hr-files enrolled", func() bool { return eventBridgeOn("fresh-one") && eventBridgeOn("hr-files") })
	for _, b := range []string{"fresh-one", "fresh-tfstate", "hr-files"} {
		env.Put(t, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("first upload.txt")}, "hello")
	}
	onKey := func(b string) bool {
		st, ok := env.Emu.Inspect(b, "first upload.txt", "")
		return ok && st.Encryption == "SSE-KMS" && st.KMSKeyARN == key && st.BucketKey
	}
	waitFor(t, "the first uploads enforced", func() bool { return onKey("fresh-one") && onKey("hr-files") })
	if eventBridgeOn("fresh-tfstate") || onKey("fresh-tfstate") {
		t.Error("the excluded bucket was touched")
	}
	enc, err := env.S3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("fresh-one")})
	if err != nil || aws.ToString(enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.KMSMasterKeyID) != key {
		t.Errorf("fresh-one's default encryption %+v %v", enc, err)
	}
	cancel()
	<-done
}

// enrollWorld is an emulator whose bucket events (management events)
// reach the queue events and whose uploads, from any bucket, the work
// queue; and the pipeline's queues.
func enrollWorld(t *testing.T) (env *emutest.Env, q pipeline.Queues, events string) {
	env = emutest.Start(t, emulator.Options{EventBridgeRules: []emulator.EventBridgeRule{
		{Management: true, Queue: "bucket-events"}, {Bucket: "*", Queue: "work"}}})
	_, workDLQ := env.Queue(t, "work-dlq", nil)
	_, controlDLQ := env.Queue(t, "control-dlq", nil)
	q.Work, _ = env.Queue(t, "work", map[string]string{"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":5}`, workDLQ)})
	q.Control, _ = env.Queue(t, "control", map[string]string{"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":5}`, controlDLQ)})
	q.WorkDLQ, q.ControlDLQ = workDLQ, controlDLQ
	events, _ = env.Queue(t, "bucket-events", nil)
	return env, q, events
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A bucket created after the pipeline starts, with an object uploaded
// before its enrollment turns EventBridge notifications on (so that the
// object raises no event), gets that object onto its key through the
// backfill enrollment starts, counted in the backfill's job; a second
// enrollment (the hourly sweep) starts none.
//
// S3 sends events to EventBridge only once the bucket's notification
// configuration turns it on (AmazonS3/latest/userguide/EventBridge.md,
// enable-event-notifications-eventbridge.md).
func TestFirstUploadsBeforeEnrollmentAreBackfilled(t *testing.T) {
	env, q, events := enrollWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := env.Key(t)
	jc, err := demo.SetupJobs(ctx, env.Emu, "jobs", "reports")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"rules":[{"name":"fresh","select":{"names":["fresh-*"]},"settings":{"kmsKeyArn":%q,"bucketKeyEnabled":true}}]}`, key)))
	if err != nil {
		t.Fatal(err)
	}
	// Made after the emulator started, and written to before enrollment
	// runs: the pipeline (and its enroll function) starts after the upload.
	env.Bucket(t, "fresh-early", false)
	env.Put(t, &s3.PutObjectInput{Bucket: aws.String("fresh-early"), Key: aws.String("before enrollment.txt")}, "early")
	p := pipeline.New(env.Cfg, pol, q, pipeline.Options{Jobs: jc, Enroll: pipeline.EnrollOptions{Queue: events, InventoryBucketARN: "arn:aws:s3:::inventory",
		AccountID: env.Emu.Account(), BackfillDelaySeconds: 1}})
	done := make(chan error, 1)
	go func() { done <- p.Runner.Run(ctx) }()

	onKey := func() bool {
		st, ok := env.Emu.Inspect("fresh-early", "before enrollment.txt", "")
		return ok && st.Encryption == "SSE-KMS" && st.KMSKeyARN == key && st.BucketKey
	}
	waitFor(t, "the upload from before enrollment on its key", onKey)
	store := &jobs.Store{API: dynamodb.NewFromConfig(env.Cfg), Table: "jobs"}
	var listing *jobs.Job
	waitFor(t, "the backfill's job complete", func() bool {
		list, err := store.List(ctx, 20)
		if err != nil {
			t.Fatal(err)
		}
		var listings []*jobs.Job
		for _, j := range list {
			if j.Kind == jobs.KindListing {
				listings = append(listings, j)
			}
		}
		if len(listings) > 1 {
			t.Fatalf("%d listing jobs, want the one backfill", len(listings))
		}
		if len(listings) == 1 && listings[0].State == jobs.StateComplete {
			listing = listings[0]
		}
		return listing != nil
	})
	if listing.Source != "s3://fresh-early/" || listing.Outcomes["updated"] != 1 || listing.Done != 1 {
		t.Errorf("backfill job %s of %s: %d done, outcomes %v; want the one object updated", listing.ID, listing.Source, listing.Done, listing.Outcomes)
	}
	// The sweep enrolls the bucket again: its notifications are on, so no
	// second backfill is sent.
	sum, err := (&enroll.Enroller{S3: env.S3, Keys: policy.Static(pol), InventoryBucketARN: "arn:aws:s3:::inventory", AccountID: env.Emu.Account(),
		ControlQueueURL: q.Control, Backfills: &queue.Sender{API: env.SQS}}).Sweep(ctx)
	if err != nil || sum.Managed != 1 || sum.Changed != 0 {
		t.Fatalf("the second enrollment: %+v, %v; want the bucket managed, nothing changed", sum, err)
	}
	cancel()
	<-done
}
