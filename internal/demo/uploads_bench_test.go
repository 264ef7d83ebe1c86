package demo

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// uploadsWorld is a deployment with a backfill seeded in the data bucket
// and EventBridge delivering the bucket's uploads to the uploads queue,
// its pipeline running (four work environments, one uploads environment)
// under a budget of objects a second on the bucket and of KMS requests.
type uploadsWorld struct {
	d    *demo
	emu  *emulator.Emulator
	p    *pipeline.Pipeline
	stop context.CancelFunc
	done chan error
	// uploaded counts the uploads so far (their keys' numbers).
	uploaded atomic.Int64
}

// startUploadsWorld seeds n objects in the data bucket (the backfill,
// not yet published; its tasks of at most taskBytes, so that the work
// queue holds many messages), turns on its upload events, and starts the
// pipeline under the budgets (no bucket key on the target: one KMS
// request an object). It stops with the test.
func startUploadsWorld(tb testing.TB, n, taskBytes int, objectsPerSecond, kmsPerSecond float64, q emulator.Quotas) *uploadsWorld {
	tb.Helper()
	d, emu := benchWorld(tb, n)
	parallel(n, 16, d.putData(tb))
	emu.AddEventBridgeRule(emulator.EventBridgeRule{Bucket: DataBucket, Queue: UploadsQueue})
	if err := enableEventBridge(d, DataBucket); err != nil {
		tb.Fatal(err)
	}
	emu.SetQuotas(q)
	emu.SetLatency(s3Latency)
	emu.ResetCounts()
	cfg := clientConfig(emu.AWSConfig())
	cfg.Retryer = awsconf.NewRetryer
	p := pipeline.New(cfg, withBudgets(d.policy, objectsPerSecond, false, kmsPerSecond), d.queues,
		pipeline.Options{Concurrency: 4, Environments: 4, UploadsConcurrency: 2, Jobs: d.jobs, MessageBytes: taskBytes})
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Minute) // bounded: the run ends with the test at the latest
	w := &uploadsWorld{d: d, emu: emu, p: p, stop: stop, done: make(chan error, 1)}
	go func() { w.done <- p.Runner.Run(ctx) }()
	tb.Cleanup(w.close)
	return w
}

// close stops the pipeline and waits for it.
func (w *uploadsWorld) close() {
	if w.stop != nil {
		w.stop()
		<-w.done
		w.stop = nil
	}
}

// startBackfill publishes the data bucket's inventory and returns once the
// backfill's first objects are updated.
func (w *uploadsWorld) startBackfill(tb testing.TB) {
	tb.Helper()
	before := w.emu.CountOf("s3", "UpdateObjectEncryption", DataBucket)
	if _, err := w.emu.PublishInventory(emulator.InventoryOptions{SourceBucket: DataBucket, DestinationBucket: InventoryBucket, Format: "CSV", CurrentOnly: true}); err != nil {
		tb.Fatal(err)
	}
	if !waitFor(time.Minute, func() bool { return w.emu.CountOf("s3", "UpdateObjectEncryption", DataBucket) > before+50 }) {
		tb.Fatal("the backfill did not start within a minute")
	}
}

// workBacklog is the messages the work queue holds, waiting or in flight.
func (w *uploadsWorld) workBacklog(tb testing.TB) int {
	return w.messages(tb, w.d.queues.Work, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
}

// deadLetters is the messages both DLQs hold.
func (w *uploadsWorld) deadLetters(tb testing.TB) int {
	return w.messages(tb, w.d.queues.WorkDLQ, "ApproximateNumberOfMessages") + w.messages(tb, w.d.queues.UploadsDLQ, "ApproximateNumberOfMessages")
}

// messages adds up the named counts of a queue.
func (w *uploadsWorld) messages(tb testing.TB, url string, counts ...sqstypes.QueueAttributeName) int {
	tb.Helper()
	out, err := sqs.NewFromConfig(clientConfig(w.emu.AWSConfig())).GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: counts})
	if err != nil {
		tb.Fatal(err)
	}
	var n int
	for _, v := range out.Attributes {
		k, err := strconv.Atoi(v)
		if err != nil {
			tb.Fatalf("queue %s: %q is not a count", url, v)
		}
		n += k
	}
	return n
}

// uploadAtRate uploads count new SSE-S3 objects to the data bucket, rate a
// second, and returns each one's time from its upload to its being on the
// target key (polled every 10 ms, from the emulator's own state), failing
// for any not enforced within a minute.
func (w *uploadsWorld) uploadAtRate(tb testing.TB, count int, rate float64) []time.Duration {
	tb.Helper()
	latencies := make([]time.Duration, count)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range count {
		<-tick.C
		key := fmt.Sprintf("uploads/%06d", w.uploaded.Add(1))
		out, err := w.d.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(DataBucket), Key: aws.String(key), Body: bytes.NewReader([]byte("{}"))})
		if err != nil {
			tb.Fatal(err)
		}
		at, version := time.Now(), aws.ToString(out.VersionId)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := waitFor(time.Minute, func() bool {
				st, found := w.emu.Inspect(DataBucket, key, version)
				return found && st.KMSKeyARN == w.d.target
			})
			if !ok {
				tb.Errorf("upload %s not on the target key within a minute", key)
			}
			latencies[i] = time.Since(at)
		}()
	}
	wg.Wait()
	return latencies
}

// waitFor polls cond every 10 ms until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// quantile is the q-quantile (nearest rank) of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// productionKMS is production calling KMS directly at rate a second, with
// no retries so that it sees every throttle, until stopped.
type productionKMS struct {
	calls, throttled atomic.Int64
	stop             chan struct{}
	wg               sync.WaitGroup
}

// startProductionKMS starts production's requests (Encrypt under key),
// from a pool so that a slow answer does not slow the rate; bounded by end
// and by ten minutes.
func startProductionKMS(emu *emulator.Emulator, key string, rate float64) *productionKMS {
	prod := kms.NewFromConfig(clientConfig(emu.AWSConfig()), func(o *kms.Options) { o.Retryer = aws.NopRetryer{} })
	p := &productionKMS{stop: make(chan struct{})}
	work := make(chan struct{}, 64)
	for range 16 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for range work {
				p.calls.Add(1)
				if _, err := prod.Encrypt(context.Background(), &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("production")}); err != nil {
					p.throttled.Add(1)
				}
			}
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(work)
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		deadline := time.After(10 * time.Minute) // bounded
		for {
			select {
			case <-p.stop:
				return
			case <-deadline:
				return
			case <-tick.C:
				work <- struct{}{}
			}
		}
	}()
	return p
}

// end stops production's requests and waits for those in flight.
func (p *productionKMS) end() {
	close(p.stop)
	p.wg.Wait()
}

// BenchmarkEnforcementUnderBackfill measures upload-to-compliant latency
// with and without a backfill, side by side in one run (issue #22). The
// data bucket's budget is B = 200 objects a second, the KMS budget 200
// requests a second (one per object: no bucket key on the target) under a
// KMS quota of 500 beside production calling KMS at 150 a second; the
// backfill's tasks are of 8 KiB (about 200 objects), as in the quota
// benchmarks. Uploads
// arrive at 10 a second: 150 of them with no backfill, then 250 while a
// backfill of 25,000 objects (125 × B) runs at its budget. It reports p50
// and p99 of both, their ratio, the backfill's rate against B while the
// uploads ran, the work queue's backlog then (in objects), and
// production's throttles. Goals: p99 with the backfill ≤ 2 × p99 without
// it and ≤ 5 s; the backfill ≥ 0.9 B; production throttled 0 times.
func BenchmarkEnforcementUnderBackfill(b *testing.B) {
	const objects, budget, kmsBudget, kmsQuota, production, uploadRate = 25000, 200.0, 200.0, 500.0, 150.0, 10.0
	for range b.N {
		w := startUploadsWorld(b, objects, 8<<10, budget, kmsBudget, emulator.Quotas{KMSPerSecond: kmsQuota})
		prod := startProductionKMS(w.emu, w.d.target, production)
		time.Sleep(time.Second) // production is running first
		// Warm-up, not measured: the uploads environment's first heartbeat
		// and connections.
		w.uploadAtRate(b, 20, uploadRate)
		b.StartTimer()
		alone := w.uploadAtRate(b, 150, uploadRate)
		w.startBackfill(b)
		updatesBefore, began := w.emu.CountOf("s3", "UpdateObjectEncryption", DataBucket), time.Now()
		// The objects not yet updated when the uploads start: every update
		// so far is one of the uploads' or one of the backfill's.
		backlog := objects - (int(updatesBefore) - int(w.uploaded.Load()))
		during := w.uploadAtRate(b, 250, uploadRate)
		elapsed := time.Since(began).Seconds()
		updates := w.emu.CountOf("s3", "UpdateObjectEncryption", DataBucket) - updatesBefore
		b.StopTimer()
		prod.end()
		w.close()
		backfillRate := (float64(updates) - float64(len(during))) / elapsed
		p99Alone, p99During := quantile(alone, 0.99), quantile(during, 0.99)
		b.ReportMetric(quantile(alone, 0.5).Seconds(), "p50-alone-s")
		b.ReportMetric(p99Alone.Seconds(), "p99-alone-s")
		b.ReportMetric(quantile(during, 0.5).Seconds(), "p50-backfill-s")
		b.ReportMetric(p99During.Seconds(), "p99-backfill-s")
		b.ReportMetric(p99During.Seconds()/p99Alone.Seconds(), "p99-ratio")
		b.ReportMetric(backfillRate/budget, "backfill-fraction-of-budget")
		b.ReportMetric(float64(backlog)/budget, "backlog-seconds-of-budget")
		b.ReportMetric(float64(prod.throttled.Load()), "production-throttles")
		b.ReportMetric(0, "ns/op")
		if n := prod.throttled.Load(); n != 0 {
			b.Errorf("production saw %d of %d KMS requests throttled, want none", n, prod.calls.Load())
		}
	}
}
