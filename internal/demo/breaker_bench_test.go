package demo

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// breakerObjects is the Breaker benchmark's backfill.
const breakerObjects = 5000

// breakerRun is what a backfill with its target key disabled midway did.
type breakerRun struct {
	duringPause, held int64
	afterEnable       time.Duration
}

// runKeyDisabledMidBackfill backfills n objects (four encrypt invocations
// in four environments sharing pauses through the jobs table), disables
// the target key a quarter of the way through, enables it again after
// disabledFor, and fails unless nothing is dead-lettered, every object ends
// on the target key, and the backfill's job is complete with every object
// counted once. The breaker's timings are scaled down from production's
// (held messages come back after 2 s instead of 900 s, a probe every
// 500 ms instead of 5 min, pauses read every 200 ms instead of 30 s).
func runKeyDisabledMidBackfill(tb testing.TB, n int, disabledFor time.Duration) breakerRun {
	tb.Helper()
	ctx := context.Background()
	d, emu := benchWorld(tb, n)
	parallel(n, 16, d.putData(tb))
	emu.SetLatency(emulator.Latency{Service: "s3", Operation: "UpdateObjectEncryption", Delay: 10 * time.Millisecond})
	emu.ResetCounts()
	cfg := clientConfig(emu.AWSConfig())
	cfg.Retryer = awsconf.NewRetryer
	p := pipeline.New(cfg, d.policy, d.queues, pipeline.Options{Concurrency: 4, Environments: 4, Jobs: d.jobs, MessageBytes: 8 << 10,
		PausedRetryDelay: 2 * time.Second, BreakerProbeInterval: 500 * time.Millisecond, BreakerRefresh: 200 * time.Millisecond})
	keys := kms.NewFromConfig(clientConfig(emu.AWSConfig()))
	var reEnabled atomic.Bool
	p.Runner.Busy = func() bool { return !reEnabled.Load() }
	var run breakerRun
	var enabledAt, doneAt time.Time
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		defer reEnabled.Store(true)
		deadline := time.After(5 * time.Minute) // bounded: the runner ends by then at the latest
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		// The emulator's count, not the batches' tally: a batch reports
		// when it ends, and a small backfill is a batch or two.
		for emu.CountOf("s3", "UpdateObjectEncryption", DataBucket) < int64(n)/4 {
			select {
			case <-deadline:
				return
			case <-tick.C:
			}
		}
		if _, err := keys.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(d.target)}); err != nil {
			tb.Error(err)
		}
		before := emu.CountOf("s3", "UpdateObjectEncryption", DataBucket)
		time.Sleep(disabledFor)
		run.duringPause = emu.CountOf("s3", "UpdateObjectEncryption", DataBucket) - before
		if _, err := keys.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(d.target)}); err != nil {
			tb.Error(err)
		}
		enabledAt = time.Now()
		reEnabled.Store(true)
		for p.Tally.Snapshot().Outcomes["updated"] < int64(n) {
			select {
			case <-deadline:
				return
			case <-tick.C:
			}
		}
		doneAt = time.Now()
	}()
	if _, err := emu.PublishInventory(emulator.InventoryOptions{SourceBucket: DataBucket, DestinationBucket: InventoryBucket, Format: "CSV", CurrentOnly: true}); err != nil {
		tb.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err := p.Runner.RunUntilIdle(runCtx, 500*time.Millisecond)
	cancel()
	<-watched
	if err != nil {
		tb.Fatal(err)
	}
	attrs, err := sqs.NewFromConfig(clientConfig(emu.AWSConfig())).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(d.queues.WorkDLQ),
		AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}})
	if err != nil {
		tb.Fatal(err)
	}
	dead := attrs.Attributes["ApproximateNumberOfMessages"]
	final := 0
	for _, v := range emu.Versions(DataBucket) {
		if v.KMSKeyARN == d.target {
			final++
		}
	}
	snap := p.Tally.Snapshot()
	outcomes := snap.Outcomes
	if dead != "0" || final != n || outcomes["updated"] != int64(n) || doneAt.IsZero() {
		tb.Fatalf("dead-lettered %s, %d of %d objects on the target key, outcomes %v", dead, final, n, outcomes)
	}
	// The backfill's job is complete and its counts are the truth: the held
	// messages were counted once, when they finally ran.
	jc, err := d.checkJobs(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range jc.Failures {
		tb.Error(f)
	}
	for _, j := range jc.Jobs {
		if j.Kind != jobs.KindUploads && (j.Done != int64(n) || j.Outcomes["updated"] != int64(n)) {
			tb.Errorf("job %s %s: done %d, outcomes %v; want all %d updated", j.ID, j.State, j.Done, j.Outcomes, n)
		}
	}
	// A held object is an attempt to be tried again, not an outcome: the
	// tally counts it among the retries.
	run.held, run.afterEnable = snap.Retries["retry: paused"], doneAt.Sub(enabledAt)
	return run
}

// TestKeyDisabledMidBackfill: the target key disabled during a backfill
// pauses it; nothing is dead-lettered or lost, and every object reaches its
// final state once the key is enabled again (issue #22).
func TestKeyDisabledMidBackfill(t *testing.T) {
	if run := runKeyDisabledMidBackfill(t, 1500, time.Second); run.held == 0 {
		t.Error("no object was held: the key was never seen disabled")
	}
}

// BenchmarkBreaker disables the target key a quarter of the way through a
// backfill of 5,000 objects and enables it again 3 s later (issue #22: 0
// objects dead-lettered, 0 lost, every object reaching its final state
// after the key is re-enabled). It reports the UpdateObjectEncryption
// requests sent while the key was disabled (those in flight when it was,
// then probes), the object deliveries held, and how long the backfill took
// to finish after the key was enabled again.
func BenchmarkBreaker(b *testing.B) {
	for range b.N {
		run := runKeyDisabledMidBackfill(b, breakerObjects, 3*time.Second)
		b.ReportMetric(0, "dead-lettered")
		b.ReportMetric(0, "lost")
		b.ReportMetric(float64(run.duringPause), "requests-while-disabled")
		b.ReportMetric(float64(run.held), "objects-held")
		b.ReportMetric(run.afterEnable.Seconds(), "s-to-finish-after-enable")
		b.ReportMetric(0, "ns/op")
	}
}
