package demo

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/functionconf"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// BenchmarkCostPerMillion measures what s3rekey adds to the
// UpdateObjectEncryption requests every tool pays, per million objects,
// from the requests the emulator counted and the function time Lambda
// would bill:
//
//   - backfill: 20,000 SSE-S3 objects backfilled from a CSV inventory (the
//     inventory proves SSE-S3, so no HEAD is needed);
//   - event: 5,000 uploads enforced through EventBridge and the uploads
//     queue (one SQS message and one HEAD each).
//
// The emulator, and the uploads, run in a process of their own (this test
// binary started again, costWorld), so that this process's CPU time is the
// functions' own: it is shared over the invocations by their wall times,
// each rounded up to Lambda's 1 ms, and priced at the encrypt function's
// configured memory (billing_test.go, cost.BilledSeconds). The old figure, the handlers' wall time
// priced the same way, is reported beside it as $lambda-wall/M and
// $overhead-wall/M.
//
// Each runs with job records (the default) and without them, side by
// side, so that what jobs add is measured in one run; the event path's
// job records are its rolling uploads jobs.
func BenchmarkCostPerMillion(b *testing.B) {
	for _, tracked := range []bool{true, false} {
		suffix := ""
		if !tracked {
			suffix = "-untracked"
		}
		b.Run("backfill"+suffix, func(b *testing.B) { costRun(b, 20000, false, tracked, 0) })
		b.Run("event"+suffix, func(b *testing.B) { costRun(b, 5000, true, tracked, 0) })
	}
	// The events reach the uploads queue, batched by its mapping
	// (encrypt.uploadsBatchSize, 100); what they cost in batches of 10, as
	// when they shared the work queue's mapping, for comparison.
	b.Run("event-batch10", func(b *testing.B) { costRun(b, 5000, true, true, 10) })
}

// costRun runs one path; uploadsBatch overrides the stack's uploads-queue
// batch size when not 0.
func costRun(b *testing.B, n int, events, tracked bool, uploadsBatch int) {
	for range b.N {
		ctx := context.Background()
		w := startCostWorld(b, n, events)
		jc := w.info.Jobs
		if !tracked {
			jc = jobs.Config{}
		}
		pol, err := policy.Parse(w.info.PolicyJSON)
		if err != nil {
			b.Fatal(err)
		}
		p := pipeline.New(clientConfig(w.awsConfig()), pol, w.info.Queues, pipeline.Options{Concurrency: 4, Jobs: jc, UploadsBatchSize: uploadsBatch})
		walls := timeInvocations(p.Runner)
		b.StartTimer()
		began, cpuBefore := time.Now(), processCPU(b)
		p.Runner.Busy = w.send(b)
		if err := p.Runner.RunUntilIdle(ctx, 300*time.Millisecond); err != nil {
			b.Fatal(err)
		}
		cpu, wall := processCPU(b)-cpuBefore, time.Since(began)
		b.StopTimer()
		counts := w.counts(b)
		res := &Result{Expected: int64(n), Outcomes: p.Tally.Snapshot(), Counts: counts.Counts}
		if res.Outcomes.Outcomes["updated"] != int64(n) {
			b.Fatalf("outcomes %v", res.Outcomes.Outcomes)
		}
		u := usageOf(res, counts.BilledSQS, counts.Capacity)
		u.LambdaMemoryMB, u.BatchOpsJobs = functionconf.Encrypt.MemoryMB, 1
		byWall := cost.Price(u)
		u.LambdaSeconds = cost.BilledSeconds(cost.ShareByWall(cpu, walls.all()))
		c := cost.Price(u)
		pm := func(v float64) float64 { return cost.PerMillion(v, int64(n)) }
		b.ReportMetric(pm(c.Overhead), "$overhead/M")
		b.ReportMetric(pm(c.S3Requests), "$s3-reads/M")
		b.ReportMetric(pm(c.SQS), "$sqs/M")
		b.ReportMetric(pm(c.Lambda), "$lambda/M")
		b.ReportMetric(pm(c.Jobs), "$jobs/M")
		b.ReportMetric(pm(byWall.Lambda), "$lambda-wall/M")
		b.ReportMetric(pm(byWall.Overhead), "$overhead-wall/M")
		b.ReportMetric(float64(u.S3Get)/float64(n), "s3-get-head/object")
		b.ReportMetric(float64(u.SQS)/float64(n), "sqs-billed/object")
		b.ReportMetric(float64(n)/float64(res.Outcomes.Invocations), "objects/invocation")
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/object")
		b.ReportMetric(res.Outcomes.HandlerTime.Seconds()/float64(n)*1e6, "handler-µs/object")
		b.ReportMetric(float64(n)/wall.Seconds(), "objects/s")
		b.ReportMetric(0, "ns/op")
	}
}

// benchWorld starts an emulator with the demo's keys, buckets, queues and
// jobs, and inventories that start backfills through EventBridge.
func benchWorld(b testing.TB, n int) (*demo, *emulator.Emulator) {
	b.Helper()
	d, emu, err := newBenchWorld(n)
	if emu != nil {
		b.Cleanup(func() { _ = emu.Close() })
	}
	if err != nil {
		b.Fatal(err)
	}
	return d, emu
}

func newBenchWorld(n int) (*demo, *emulator.Emulator, error) {
	emu, err := emulator.Start(context.Background(), emulator.Options{})
	if err != nil {
		return nil, nil, err
	}
	d := &demo{opts: Options{Objects: n, Progress: bytes.NewBuffer(nil)}.withDefaults(), emu: emu,
		s3: s3.NewFromConfig(clientConfig(emu.AWSConfig()), emulator.PathStyle), before: map[string]fingerprint{}}
	d.progressW = d.opts.Progress
	emu.AddEventBridgeRule(emulator.EventBridgeRule{Bucket: InventoryBucket, KeySuffix: "manifest.checksum", Queue: ControlQueue})
	if err := d.setup(context.Background()); err != nil {
		return d, emu, err
	}
	return d, emu, enableEventBridge(d, InventoryBucket)
}

// putData uploads data/NNNNNNN.json objects (SSE-S3) to the data bucket,
// all in one partition.
func (d *demo) putData(b testing.TB) func(i int) {
	return func(i int) {
		if err := d.putObject(i); err != nil {
			b.Error(err)
		}
	}
}

func (d *demo) putObject(i int) error {
	_, err := d.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(DataBucket), Key: aws.String(fmt.Sprintf("data/%07d.json", i)),
		Body: bytes.NewReader([]byte("{}"))})
	return err
}

func enableEventBridge(d *demo, bucket string) error {
	_, err := d.s3.PutBucketNotificationConfiguration(context.Background(), &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String(bucket),
		NotificationConfiguration: &types.NotificationConfiguration{EventBridgeConfiguration: &types.EventBridgeConfiguration{}}})
	return err
}

// parallel runs f(0..n-1) on workers goroutines.
func parallel(n, workers int, f func(int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				f(i)
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}
