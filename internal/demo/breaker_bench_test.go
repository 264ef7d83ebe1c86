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

// BenchmarkBreaker disables the target key a quarter of the way through a
// backfill of 5,000 objects (four encrypt invocations in four environments
// sharing the pause through the jobs table), keeps it disabled for three
// seconds, then enables it again. Issue #22: 0 objects dead-lettered, 0
// lost, every object reaching its final state (updated onto the target)
// after the key is re-enabled, and the backfill's job complete with every
// object counted once. It also reports the UpdateObjectEncryption
// requests sent while the key was disabled (the in-flight ones when it was
// disabled, then probes) and how long the backfill took to finish after
// the key was enabled again. The breaker's timings are scaled down from
// production's (held messages come back after 2 s instead of 900 s, a
// probe every 500 ms instead of 5 min, pauses read every 200 ms instead of
// 30 s) so that the run takes seconds.
func BenchmarkBreaker(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		d, emu := benchWorld(b, breakerObjects)
		parallel(breakerObjects, 16, d.putData(b))
		emu.SetLatency(emulator.Latency{Service: "s3", Operation: "UpdateObjectEncryption", Delay: 10 * time.Millisecond})
		emu.ResetCounts()
		cfg := clientConfig(emu.AWSConfig())
		cfg.Retryer = awsconf.NewRetryer
		p := pipeline.New(cfg, d.policy, d.queues, pipeline.Options{Concurrency: 4, Environments: 4, Jobs: d.jobs, MessageBytes: 8 << 10,
			PausedRetryDelay: 2 * time.Second, BreakerProbeInterval: 500 * time.Millisecond, BreakerRefresh: 200 * time.Millisecond})
		keys := kms.NewFromConfig(clientConfig(emu.AWSConfig()))
		var reEnabled atomic.Bool
		p.Runner.Busy = func() bool { return !reEnabled.Load() }
		var duringPause int64
		var enabledAt, doneAt time.Time
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			deadline := time.After(5 * time.Minute) // bounded: the runner ends by then at the latest
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for p.Tally.Snapshot().Outcomes["updated"] < breakerObjects/4 {
				select {
				case <-deadline:
					reEnabled.Store(true)
					return
				case <-tick.C:
				}
			}
			if _, err := keys.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(d.target)}); err != nil {
				b.Error(err)
			}
			before := emu.CountOf("s3", "UpdateObjectEncryption", DataBucket)
			time.Sleep(3 * time.Second)
			duringPause = emu.CountOf("s3", "UpdateObjectEncryption", DataBucket) - before
			if _, err := keys.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(d.target)}); err != nil {
				b.Error(err)
			}
			enabledAt = time.Now()
			reEnabled.Store(true)
			for p.Tally.Snapshot().Outcomes["updated"] < breakerObjects {
				select {
				case <-deadline:
					return
				case <-tick.C:
				}
			}
			doneAt = time.Now()
		}()
		b.StartTimer()
		if _, err := emu.PublishInventory(emulator.InventoryOptions{SourceBucket: DataBucket, DestinationBucket: InventoryBucket, Format: "CSV", CurrentOnly: true}); err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err := p.Runner.RunUntilIdle(runCtx, 500*time.Millisecond)
		cancel()
		b.StopTimer()
		<-watched
		if err != nil {
			b.Fatal(err)
		}
		attrs, err := sqs.NewFromConfig(clientConfig(emu.AWSConfig())).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(d.queues.WorkDLQ),
			AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}})
		if err != nil {
			b.Fatal(err)
		}
		dead := attrs.Attributes["ApproximateNumberOfMessages"]
		final := 0
		for _, v := range emu.Versions(DataBucket) {
			if v.KMSKeyARN == d.target {
				final++
			}
		}
		outcomes := p.Tally.Snapshot().Outcomes
		if dead != "0" || final != breakerObjects || outcomes["updated"] != breakerObjects || doneAt.IsZero() {
			b.Fatalf("dead-lettered %s, %d of %d objects on the target key, outcomes %v", dead, final, breakerObjects, outcomes)
		}
		// The backfill's job is complete and its counts are the truth: the
		// held messages were counted once, when they finally ran.
		jc, err := d.checkJobs(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range jc.Failures {
			b.Error(f)
		}
		for _, j := range jc.Jobs {
			if j.Kind != jobs.KindUploads && (j.Done != breakerObjects || j.Outcomes["updated"] != breakerObjects) {
				b.Errorf("job %s %s: done %d, outcomes %v; want all %d updated", j.ID, j.State, j.Done, j.Outcomes, breakerObjects)
			}
		}
		b.ReportMetric(0, "dead-lettered")
		b.ReportMetric(float64(breakerObjects-final), "lost")
		b.ReportMetric(float64(duringPause), "requests-while-disabled")
		b.ReportMetric(float64(outcomes["retry: paused"]), "objects-held")
		b.ReportMetric(doneAt.Sub(enabledAt).Seconds(), "s-to-finish-after-enable")
		b.ReportMetric(0, "ns/op")
	}
}
