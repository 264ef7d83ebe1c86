package planner_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/witness"
)

// BenchmarkEnqueue runs one file task of 200,000 SSE-S3 rows against the
// in-process emulator (download, MD5, CSV parse, filter, packing into 64 KiB
// object tasks, SendMessageBatch) and reports object keys enqueued per
// second. The emulator's SQS shares the process and its two cores.
func BenchmarkEnqueue(b *testing.B) {
	const n = 200_000
	e := emutest.Start(b, emulator.Options{})
	work, _ := e.Queue(b, "work", nil)
	control, _ := e.Queue(b, "control", nil)
	e.Bucket(b, "inv", false)
	rows := make([]inventory.Row, n)
	for i := range rows {
		rows[i] = inventory.Row{Bucket: "src", Key: fmt.Sprintf("data/2026/%07d/part-%d.json", i, i%13), IsLatest: true,
			EncryptionStatus: "SSE-S3", BucketKeyStatus: "DISABLED", LegalHold: "OFF"}
	}
	rep, err := inventory.ReportWriter{Format: inventory.FormatCSV, SourceBucket: "src", DestinationBucket: "inv", ConfigID: "c", RowsPerFile: n, Created: time.Now()}.Write(rows)
	if err != nil {
		b.Fatal(err)
	}
	e.Put(b, &s3.PutObjectInput{Bucket: aws.String("inv"), Key: aws.String(rep.FileKeysUsed[0])}, string(rep.DataFiles[rep.FileKeysUsed[0]]))
	m, _ := inventory.ParseManifest(rep.Manifest, rep.Checksum)
	cols, _ := m.Columns()
	pol, err := policy.Parse([]byte(`{"buckets":{"src":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k"}}}`))
	if err != nil {
		b.Fatal(err)
	}
	p := &planner.Planner{Get: e.S3, List: e.S3, Sender: &queue.Sender{API: e.SQS}, Policy: pol,
		Config: planner.Config{WorkQueueURL: work, ControlQueueURL: control}}
	job := planner.Job{Type: planner.TypeFile, File: &planner.FileTask{Bucket: "inv", Key: m.Files[0].Key, MD5: m.Files[0].MD5Checksum,
		Format: m.FileFormat, Columns: cols, SourceBucket: "src"}}
	b.ResetTimer()
	for range b.N {
		if err := p.Run(context.Background(), job); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "keys/s")
	b.ReportMetric(float64(e.Emu.CountOf("sqs", "SendMessageBatch", ""))/float64(b.N), "batches/op")
}

// TestMain lets BenchmarkListing run the emulator in a process of its
// own, and stops moto after the witness tests.
func TestMain(m *testing.M) {
	emutest.ServeIfChild()
	witness.Main(m)
}

// BenchmarkListing lists a bucket of 64,000 keys under 16 top-level
// prefixes, with S3's listing latency stood in for by 100 ms per page of 1,000, in
// one range and in K ranges run at once (as K planner invocations would),
// side by side in each iteration, and reports keys listed and enqueued per
// second for each and their ratio. The target: K listers reach at
// least 0.8 × K × one lister's rate. The emulator runs in a process of its
// own, as S3 does: sharing the listers' heap, its store of 64,000 objects
// made every garbage collection the listers' pause.
func BenchmarkListing(b *testing.B) {
	const prefixes, perPrefix, k = 16, 4000, 4
	e := emutest.StartProcess(b, "s3:ListObjectsV2=100ms")
	work, _ := e.Queue(b, "work", nil)
	control, _ := e.Queue(b, "control", nil)
	e.Bucket(b, "src", false)
	ctx := context.Background()
	parallelPut(b, prefixes*perPrefix, 16, func(i int) {
		e.Put(b, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(fmt.Sprintf("p%02d/%05d.json", i%prefixes, i))}, "x")
	})
	pol, err := policy.Parse([]byte(`{"buckets":{"src":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k"}}}`))
	if err != nil {
		b.Fatal(err)
	}
	// run lists the bucket in `ranges` ranges, each run at once, and
	// returns keys per second.
	run := func(ranges int) float64 {
		p := &planner.Planner{Get: e.S3, List: e.S3, Sender: &queue.Sender{API: e.SQS}, Policy: pol,
			Config: planner.Config{WorkQueueURL: work, ControlQueueURL: control, ListingRanges: ranges}}
		began := time.Now()
		if err := p.Run(ctx, planner.Job{Type: planner.TypeListing, Bucket: "src", JobID: "bench"}); err != nil {
			b.Fatal(err)
		}
		var rangeJobs []planner.Job
		for {
			out, err := e.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(control), MaxNumberOfMessages: 10})
			if err != nil {
				b.Fatal(err)
			}
			if len(out.Messages) == 0 {
				break
			}
			for _, m := range out.Messages {
				jobs, err := planner.DecodeJobs(aws.ToString(m.Body))
				if err != nil {
					b.Fatal(err)
				}
				rangeJobs = append(rangeJobs, jobs...)
				e.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(control), ReceiptHandle: m.ReceiptHandle})
			}
		}
		errs := make(chan error, len(rangeJobs))
		for _, j := range rangeJobs {
			go func() { errs <- p.Run(ctx, j) }()
		}
		for range rangeJobs {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		if ranges > 1 && len(rangeJobs) != ranges {
			b.Fatalf("%d ranges listed, want %d", len(rangeJobs), ranges)
		}
		return float64(prefixes*perPrefix) / time.Since(began).Seconds()
	}
	var one, many float64
	for range b.N {
		one += run(1)
		many += run(k)
		if _, err := e.SQS.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(work)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(one/float64(b.N), "keys/s-1-lister")
	b.ReportMetric(many/float64(b.N), fmt.Sprintf("keys/s-%d-listers", k))
	b.ReportMetric(many/one/k, "fraction-of-K×1")
}

// parallelPut runs put(0..n-1) on workers goroutines.
func parallelPut(b *testing.B, n, workers int, put func(int)) {
	jobs := make(chan int)
	done := make(chan struct{})
	for range workers {
		go func() {
			for i := range jobs {
				put(i)
			}
			done <- struct{}{}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	for range workers {
		<-done
	}
}
