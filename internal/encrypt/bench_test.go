package encrypt_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// peak counts what is in flight and remembers the most at once.
type peak struct{ now, max atomic.Int64 }

// enter counts one more in flight; the returned func counts it out.
func (p *peak) enter() func() {
	n := p.now.Add(1)
	for m := p.max.Load(); n > m && !p.max.CompareAndSwap(m, n); m = p.max.Load() {
	}
	return func() { p.now.Add(-1) }
}

// inflightS3 counts S3 requests in flight around a client.
type inflightS3 struct {
	client *s3.Client
	peak
}

func (c *inflightS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	defer c.enter()()
	return c.client.HeadObject(ctx, in, o...)
}

func (c *inflightS3) UpdateObjectEncryption(ctx context.Context, in *s3.UpdateObjectEncryptionInput, o ...func(*s3.Options)) (*s3.UpdateObjectEncryptionOutput, error) {
	defer c.enter()()
	return c.client.UpdateObjectEncryption(ctx, in, o...)
}

// BenchmarkHandler measures one invocation over a batch of 10 messages of
// 100 objects each (1000 objects, every one needing HEAD and
// UpdateObjectEncryption) against the in-process emulator with injected S3
// latency. The emulator runs in the same process, so CPU and allocation
// figures include its share; objects/s and requests in flight are the
// handler's.
func BenchmarkHandler(b *testing.B) {
	const objects, perMessage = 1000, 100
	for _, latency := range []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%s", latency), func(b *testing.B) {
			e := emutest.Start(b, emulator.Options{})
			e.Bucket(b, "bench", false)
			keys := [2]string{e.Key(b), e.Key(b)}
			var batch events.SQSEvent
			var objs []messages.Object
			for i := range objects {
				key := fmt.Sprintf("obj/%05d", i)
				e.Put(b, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(key)}, "x")
				objs = append(objs, messages.Object{Bucket: "bench", Key: key})
				if len(objs) == perMessage {
					body, _ := messages.Task{Source: messages.SourceManual, Objects: objs}.Encode()
					batch.Records = append(batch.Records, events.SQSMessage{MessageId: fmt.Sprint(i), Body: body})
					objs = nil
				}
			}
			e.Emu.SetLatency(emulator.Latency{Service: "s3", Operation: "*", Delay: latency})
			client := &inflightS3{client: s3.NewFromConfig(e.Emu.AWSConfig(), emulator.PathStyle)}
			handlers := [2]*encrypt.Handler{}
			for i, key := range keys {
				pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{"bench":{"kmsKeyArn":%q,"bucketKeyEnabled":true}}}`, key)))
				if err != nil {
					b.Fatal(err)
				}
				handlers[i] = &encrypt.Handler{Rekeyer: &rekey.Rekeyer{Head: client, Update: client, Policy: pol},
					Sender: &queue.Sender{API: e.SQS}, Config: encrypt.Config{WorkQueueURL: "unused", DeadLetterQueueURL: "unused"}}
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Alternate targets so that every object needs an update.
				_, sum := handlers[i%2].HandleWithSummary(context.Background(), batch)
				if sum.Outcomes["updated"] != objects {
					b.Fatalf("outcomes %v", sum.Outcomes)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			total := float64(b.N * objects)
			b.ReportMetric(total/b.Elapsed().Seconds(), "objects/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/object")
			b.ReportMetric(float64(client.max.Load()), "max-inflight")
			b.ReportMetric(0, "ns/op")
		})
	}
}
