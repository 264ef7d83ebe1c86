package demo

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// BenchmarkQuotaFound backfills 20,000 objects of one S3 partition whose
// PUT-class quota (UpdateObjectEncryption is PUT-class) is Q = 1,000
// requests a second, with no budget: four encrypt invocations at once,
// each allowing 256 objects in flight, must find the quota by their
// throttling alone. It reports the objects updated per second against Q,
// and fails if any object is not updated or any is dead-lettered (issue
// #13: "quota found", ≥ 0.85·Q, and a quota run of at least 20,000 objects
// with nothing dead-lettered for throttling).
func BenchmarkQuotaFound(b *testing.B) {
	const n, quota = 20000, 1000.0
	for range b.N {
		ctx := context.Background()
		d, emu := benchWorld(b, n)
		parallel(n, 16, d.putData(b))
		emu.SetQuotas(emulator.Quotas{S3PutPerSecond: quota})
		emu.ResetCounts()
		p := pipeline.New(clientConfig(emu.AWSConfig()), d.policy, d.queues, pipeline.Options{Concurrency: 4, Jobs: d.jobs})
		b.StartTimer()
		began := time.Now()
		if _, err := emu.PublishInventory(emulator.InventoryOptions{SourceBucket: DataBucket, DestinationBucket: InventoryBucket, Format: "CSV", CurrentOnly: true}); err != nil {
			b.Fatal(err)
		}
		if err := p.Runner.RunUntilIdle(ctx, 300*time.Millisecond); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(began)
		b.StopTimer()
		if got := p.Tally.Snapshot().Outcomes["updated"]; got != n {
			b.Fatalf("%d objects updated, want %d (outcomes %v)", got, n, p.Tally.Snapshot().Outcomes)
		}
		attrs, err := sqs.NewFromConfig(clientConfig(emu.AWSConfig())).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(d.queues.WorkDLQ),
			AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}})
		if err != nil {
			b.Fatal(err)
		}
		if dead := attrs.Attributes["ApproximateNumberOfMessages"]; dead != "0" {
			b.Fatalf("%s messages dead-lettered under throttling, want none", dead)
		}
		updates := emu.CountOf("s3", "UpdateObjectEncryption", DataBucket)
		b.ReportMetric(float64(n)/wall.Seconds(), "objects/s")
		b.ReportMetric(float64(n)/wall.Seconds()/quota, "fraction-of-quota")
		b.ReportMetric(float64(updates-n)/float64(updates), "throttled-share")
		b.ReportMetric(0, "ns/op")
		_ = emu.Close()
	}
}
