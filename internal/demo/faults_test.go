package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// TestFaultMatrix runs a backfill plus concurrent uploads through injected
// faults — 5% S3 SlowDown, 1% InternalError, 0.5% AccessDenied on
// UpdateObjectEncryption, every message delivered twice, SQS throttling on
// sends, the consumer killed mid-batch, and an inventory file with a bad
// checksum that is fixed while the planner reads it again — and checks the accounting: every object
// version ends in exactly one final state (on the target key, skipped with
// its reason, gone, or in the DLQ with a reason), none is lost or rewritten,
// no update is sent to an object already compliant, and no object data is
// ever read. S3REKEY_FAULT_OBJECTS sets the size (make test-faults: 100000).
func TestFaultMatrix(t *testing.T) {
	objects := 1200
	if v := os.Getenv("S3REKEY_FAULT_OBJECTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 20 {
			t.Fatalf("S3REKEY_FAULT_OBJECTS=%q: want a whole number of at least 20", v)
		}
		objects = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	emu, err := emulator.Start(ctx, emulator.Options{FaultSeed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	prep, err := Prepare(ctx, emu, Options{Objects: objects, Format: "CSV", Uploads: max(objects/20, 10)})
	if err != nil {
		t.Fatal(err)
	}
	d := prep.d
	// The functions' clients retry with the SDK's standard retryer and the
	// deployed attempt bound (the adaptive retryer deployments use also
	// limits its own rate, which a constant injected 5% SlowDown would
	// only slow down); the faults get past the retries anyway.
	cfg := clientConfig(emu.AWSConfig())
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = awsconf.MaxAttempts
			o.MaxBackoff = 100 * time.Millisecond
		})
	}
	patient := clientConfig(emu.AWSConfig())
	patient.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 20; o.MaxBackoff = 50 * time.Millisecond })
	}
	d.s3 = s3.NewFromConfig(patient, emulator.PathStyle) // the uploader and the verification

	// Visibility timeouts short enough that kills come back within the
	// test, yet longer than any invocation (as 6× the function timeout is
	// in a deployment), and receive limits high enough for the duplicates.
	sqsc := sqs.NewFromConfig(patient)
	for _, q := range []struct{ url, dlq string }{{prep.Queues.Work, "s3rekey-work-dlq"}, {prep.Queues.Control, "s3rekey-control-dlq"},
		{prep.Queues.Uploads, "s3rekey-uploads-dlq"}} {
		if _, err := sqsc.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(q.url), Attributes: map[string]string{
			"VisibilityTimeout": "15",
			"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:111122223333:%s","maxReceiveCount":25}`, q.dlq),
		}}); err != nil {
			t.Fatal(err)
		}
	}

	// One data file of the inventory goes bad before the planner reads it,
	// and is fixed after the planner has failed on it.
	badKey, goodBytes := corruptOneDataFile(t, ctx, d)

	for _, f := range []emulator.Fault{
		{Service: "s3", Operation: "*", Code: "SlowDown", Rate: 0.05},
		{Service: "s3", Operation: "*", Code: "InternalError", Rate: 0.01},
		{Service: "s3", Operation: "UpdateObjectEncryption", Code: "AccessDenied", Rate: 0.005},
		{Service: "sqs", Operation: "SendMessageBatch", Code: "ThrottlingException", Rate: 0.05},
		{Service: "sqs", Operation: "SendMessage", Code: "ThrottlingException", Rate: 0.05},
	} {
		if err := emu.SetFault(f); err != nil {
			t.Fatal(err)
		}
	}
	emu.SetDuplicateDelivery(1)
	emu.ResetCounts()

	// Every message is delivered twice, in any order: only reading each
	// object before updating it keeps updates off objects already done.
	// Under the permissions the stack deploys, with the retryer above.
	popts, err := d.pipelineOptions(pipeline.Options{HeadBeforeUpdate: true})
	if err != nil {
		t.Fatal(err)
	}
	popts.EncryptAWS.Retryer, popts.PlannerAWS.Retryer = cfg.Retryer, cfg.Retryer
	p := pipeline.New(cfg, d.policy, d.queues, popts)
	kills := killMidBatch(p, cfg, d, 2)
	var plannerFailures atomic.Int64
	planner := p.Runner.Sources[0].Handler
	p.Runner.Sources[0].Handler = func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := planner(ctx, ev)
		plannerFailures.Add(int64(len(resp.BatchItemFailures)))
		return resp, err
	}
	// The bad file is put right once the planner has read it bad: a data
	// file that does not match its MD5 is read again for a while before
	// its job fails (one that stays wrong fails it: the planner's tests).
	bad := &fixAfterBadRead{GetObjectAPI: p.Planner.Get, key: badKey, fix: func() error {
		_, err := d.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(InventoryBucket), Key: aws.String(badKey), Body: strings.NewReader(goodBytes)})
		return err
	}}
	p.Planner.Get = bad
	began := time.Now()
	if err := d.runPipeline(ctx, p, prep.Rows+int64(d.opts.Uploads)+prep.Copies); err != nil {
		t.Fatal(err)
	}
	t.Logf("pipeline idle after %s: %d invocations, %d killed, planner failures %d",
		time.Since(began).Round(time.Millisecond), p.Tally.Snapshot().Invocations, kills.Load(), plannerFailures.Load())
	counts := emu.Counts()
	emu.ClearFaults()

	if kills.Load() == 0 {
		t.Error("the consumer was never killed mid-batch")
	}
	if bad.before.Load() == 0 || bad.after.Load() == 0 || bad.fixErr != nil {
		t.Errorf("the corrupt inventory file was read %d times bad and %d times fixed (fix: %v): want both", bad.before.Load(), bad.after.Load(), bad.fixErr)
	}
	dead := deadLetters(t, ctx, sqsc, prep.Queues.WorkDLQ)
	// Uploads dead-letter on their own path.
	maps.Copy(dead, deadLetters(t, ctx, sqsc, prep.Queues.UploadsDLQ))
	if cdl := deadLetters(t, ctx, sqsc, prep.Queues.ControlDLQ); len(cdl) != 0 {
		t.Errorf("control DLQ holds %d messages: the fixed file was not retried to success (%v)", len(cdl), cdl)
	}

	v, err := d.verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range v.rewritten {
		t.Error(r)
	}
	inDLQ := 0
	for id, why := range v.notUpdated {
		reason, ok := dead[strings.SplitN(id, "@", 2)[0]]
		if !ok {
			t.Errorf("lost: %s %s, and it is not in the DLQ", id, why)
			continue
		}
		if reason == "" {
			t.Errorf("%s is in the DLQ without a reason", id)
		}
		inDLQ++
	}
	stale := 0
	for key := range dead {
		found := false
		for id := range v.notUpdated {
			if strings.HasPrefix(id, key+"@") {
				found = true
			}
		}
		if !found {
			stale++ // its duplicate delivery updated it; a redrive would find it compliant
		}
	}
	var total int64
	for _, n := range v.states {
		total += n
	}
	t.Logf("final states: %v; %d in the DLQ with a reason, %d stale dead letters", v.states, inDLQ, stale)
	// Each copy in place adds a version: the copy beside the kept original.
	if want := int64(prep.Versions+d.opts.Uploads) + prep.Copies; total != want {
		t.Errorf("%d object versions classified, want %d (%d seeded, %d uploaded, %d copies)", total, want, prep.Versions, d.opts.Uploads, prep.Copies)
	}
	// Every backfill job is complete, its outcomes account for every row
	// exactly, and its report lists exactly the objects its counts say,
	// each in the state its row says: under duplicate delivery, kills and
	// faults, the counts are the truth.
	jc, err := d.checkJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range jc.Failures {
		t.Error(f)
	}
	backfills := 0
	for _, j := range jc.Jobs {
		if j.Kind != jobs.KindUploads {
			backfills++
			t.Logf("job %s %s: rows %d, planned %d, done %d, outcomes %v, report %d rows", j.ID, j.State, j.Rows, j.Planned, j.Done, j.Outcomes, jc.Rows[j.ID])
		}
	}
	if backfills != 3 {
		t.Errorf("%d backfill jobs, want one per inventory (3)", backfills)
	}
	// And the other way: every version of the inventories left not updated
	// is listed, as failed, in its job's report (a current-only bucket's
	// rows name no version). Uploads during the run are no backfill's.
	for id := range v.notUpdated {
		bucketKey, _, _ := strings.Cut(id, "@")
		if strings.Contains(id, "/incoming/") {
			continue
		}
		r, ok := jc.Reported[id]
		if !ok {
			r, ok = jc.Reported[bucketKey+"@"]
		}
		if !ok || r.Outcome.Status != rekey.Failed {
			t.Errorf("%s is not updated, and its job's report says %v (listed: %v)", id, r.Outcome, ok)
		}
	}
	for _, c := range counts {
		switch {
		case c.Operation == emulator.UOEOnCompliant:
			t.Errorf("%d UpdateObjectEncryption calls on objects already compliant (s3://%s)", c.N, c.Bucket)
		case c.Service == "s3" && c.Operation == "GetObject" && c.Bucket != InventoryBucket:
			t.Errorf("%d GetObject calls on the data bucket %s", c.N, c.Bucket)
		}
	}
}

// fixAfterBadRead puts a corrupt file right once it has been read to its
// end, and counts the reads before and after.
type fixAfterBadRead struct {
	inventory.GetObjectAPI
	key           string
	fix           func() error
	fixed         atomic.Bool
	fixErr        error
	before, after atomic.Int64
}

func (f *fixAfterBadRead) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := f.GetObjectAPI.GetObject(ctx, in, optFns...)
	if err != nil || aws.ToString(in.Key) != f.key {
		return out, err
	}
	if f.fixed.Load() {
		f.after.Add(1)
		return out, nil
	}
	f.before.Add(1)
	body, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		return nil, err
	}
	if f.fixed.CompareAndSwap(false, true) {
		f.fixErr = f.fix()
	}
	out.Body = io.NopCloser(bytes.NewReader(body))
	return out, nil
}

// corruptOneDataFile overwrites the first data file of the data bucket's
// inventory and returns its key and true content.
func corruptOneDataFile(t *testing.T, ctx context.Context, d *demo) (string, string) {
	t.Helper()
	out, err := d.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(InventoryBucket), Prefix: aws.String("inventory/" + DataBucket + "/s3rekey/data/")})
	if err != nil || len(out.Contents) == 0 {
		t.Fatalf("inventory data files: %v", err)
	}
	key := aws.ToString(out.Contents[0].Key)
	got, err := d.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(InventoryBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	good, err := io.ReadAll(got.Body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(InventoryBucket), Key: aws.String(key),
		Body: bytes.NewReader(good[:len(good)/2])}); err != nil {
		t.Fatal(err)
	}
	return key, string(good)
}

// killMidBatch replaces every few encrypt invocations with one that dies
// part-way: its handler is cancelled after a few milliseconds, sends
// nothing (a dead process sends no retries) and reports an error, so SQS
// redelivers the whole batch. It returns the number of kills.
func killMidBatch(p *pipeline.Pipeline, cfg aws.Config, d *demo, every int64) *atomic.Int64 {
	var n, kills atomic.Int64
	live := p.Runner.Sources[1].Handler
	s3c := s3.NewFromConfig(cfg, emulator.PathStyle)
	dying := &encrypt.Handler{Rekeyer: &rekey.Rekeyer{Head: s3c, Update: s3c, Policy: d.policy, HeadBeforeUpdate: true}, Sender: blackHole{},
		Config: encrypt.Config{WorkQueueURL: d.queues.Work, DeadLetterQueueURL: d.queues.WorkDLQ}}
	p.Runner.Sources[1].Handler = func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		if n.Add(1)%every != 0 || kills.Load() >= 5 {
			return live(ctx, ev)
		}
		kills.Add(1)
		killCtx, cancel := context.WithTimeout(ctx, 15*time.Millisecond)
		defer cancel()
		_, _ = dying.Handle(killCtx, ev)
		return events.SQSEventResponse{}, errors.New("killed mid-batch")
	}
	return &kills
}

type blackHole struct{}

func (blackHole) Send(_ context.Context, _ string, msgs []queue.Message) []error {
	errs := make([]error, len(msgs))
	for i := range errs {
		errs[i] = errors.New("the process is dead")
	}
	return errs
}

// deadLetters drains a DLQ into bucket/key → reason.
func deadLetters(t *testing.T, ctx context.Context, api *sqs.Client, url string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for {
		res, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			reason := ""
			if a, ok := m.MessageAttributes[encrypt.AttrReason]; ok {
				reason = aws.ToString(a.StringValue)
			}
			task, err := messages.Decode(aws.ToString(m.Body))
			if err != nil {
				out["undecodable:"+aws.ToString(m.MessageId)] = reason
			}
			for _, o := range task.Objects {
				out[o.Bucket+"/"+o.Key] = reason
			}
			if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
