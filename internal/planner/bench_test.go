package planner_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
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
