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
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// BenchmarkCostPerMillion measures what s3rekey adds to the
// UpdateObjectEncryption requests every tool pays, per million objects,
// from the requests the emulator counted and the handlers' measured time:
//
//   - backfill: 20,000 SSE-S3 objects backfilled from a CSV inventory (the
//     inventory proves SSE-S3, so no HEAD is needed);
//   - event: 5,000 uploads enforced through EventBridge (one SQS message and
//     one HEAD each).
//
// Function time is measured here with the emulator sharing the two cores,
// and priced at 1,769 MB (one vCPU).
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
		b.Run("backfill"+suffix, func(b *testing.B) { costRun(b, 20000, false, tracked) })
		b.Run("event"+suffix, func(b *testing.B) { costRun(b, 5000, true, tracked) })
	}
}

func costRun(b *testing.B, n int, events, tracked bool) {
	for range b.N {
		ctx := context.Background()
		d, emu := benchWorld(b, n)
		if events {
			emu.AddEventBridgeRule(emulator.EventBridgeRule{Bucket: DataBucket, Queue: WorkQueue})
			eventBridgeOn(b, d, DataBucket)
		}
		put := d.putData(b)
		jc := d.jobs
		if !tracked {
			jc = jobs.Config{}
		}
		p := pipeline.New(clientConfig(emu.AWSConfig()), d.policy, d.queues, pipeline.Options{Concurrency: 4, Jobs: jc})
		b.StartTimer()
		began := time.Now()
		if events {
			emu.ResetCounts()
			parallel(n, 8, put)
		} else {
			parallel(n, 16, put)
			emu.ResetCounts()
			if _, err := emu.PublishInventory(emulator.InventoryOptions{SourceBucket: DataBucket, DestinationBucket: InventoryBucket, Format: "CSV", CurrentOnly: true}); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Runner.RunUntilIdle(ctx, 300*time.Millisecond); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(began)
		b.StopTimer()
		res := &Result{Expected: int64(n), Outcomes: p.Tally.Snapshot(), Counts: emu.Counts()}
		if res.Outcomes.Outcomes["updated"] != int64(n) {
			b.Fatalf("outcomes %v", res.Outcomes.Outcomes)
		}
		u := d.usage(res)
		u.LambdaMemoryMB, u.BatchOpsJobs = 1769, 1
		c := cost.Price(u)
		pm := func(v float64) float64 { return cost.PerMillion(v, int64(n)) }
		b.ReportMetric(pm(c.Overhead), "$overhead/M")
		b.ReportMetric(pm(c.S3Requests), "$s3-reads/M")
		b.ReportMetric(pm(c.SQS), "$sqs/M")
		b.ReportMetric(pm(c.Lambda), "$lambda/M")
		b.ReportMetric(pm(c.Jobs), "$jobs/M")
		b.ReportMetric(float64(u.S3Get)/float64(n), "s3-get-head/object")
		b.ReportMetric(float64(u.SQS)/float64(n), "sqs-billed/object")
		b.ReportMetric(u.LambdaSeconds/float64(n)*1e6, "handler-µs/object")
		b.ReportMetric(float64(n)/wall.Seconds(), "objects/s")
		b.ReportMetric(0, "ns/op")
		_ = emu.Close()
	}
}

// benchWorld starts an emulator with the demo's keys, buckets, queues and
// jobs, and inventories that start backfills through EventBridge.
func benchWorld(b testing.TB, n int) (*demo, *emulator.Emulator) {
	b.Helper()
	emu, err := emulator.Start(context.Background(), emulator.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = emu.Close() })
	d := &demo{opts: Options{Objects: n, Progress: bytes.NewBuffer(nil)}.withDefaults(), emu: emu,
		s3: s3.NewFromConfig(clientConfig(emu.AWSConfig()), emulator.PathStyle), before: map[string]fingerprint{}}
	d.progressW = d.opts.Progress
	emu.AddEventBridgeRule(emulator.EventBridgeRule{Bucket: InventoryBucket, KeySuffix: "manifest.checksum", Queue: ControlQueue})
	if err := d.setup(context.Background()); err != nil {
		b.Fatal(err)
	}
	eventBridgeOn(b, d, InventoryBucket)
	return d, emu
}

// putData uploads data/NNNNNNN.json objects (SSE-S3) to the data bucket,
// all in one partition.
func (d *demo) putData(b testing.TB) func(i int) {
	return func(i int) {
		if _, err := d.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(DataBucket), Key: aws.String(fmt.Sprintf("data/%07d.json", i)),
			Body: bytes.NewReader([]byte("{}"))}); err != nil {
			b.Error(err)
		}
	}
}

func eventBridgeOn(b testing.TB, d *demo, bucket string) {
	b.Helper()
	if _, err := d.s3.PutBucketNotificationConfiguration(context.Background(), &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String(bucket),
		NotificationConfiguration: &types.NotificationConfiguration{EventBridgeConfiguration: &types.EventBridgeConfiguration{}}}); err != nil {
		b.Fatal(err)
	}
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
