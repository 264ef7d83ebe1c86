package verify_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/verify"
)

// benchVersions is the size of the bucket the benchmark verifies: half
// its keys with two versions, a third of the versions SSE-KMS.
const benchVersions = 20_000

// seedBench fills bucket "bench" of a world with benchVersions versions and
// publishes its inventory; it returns the manifest URL.
func seedBench(b *testing.B, w *world) string {
	w.env.Versioned(b, "bench")
	w.env.Bucket(b, "bench-reports", false)
	ctx := context.Background()
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				in := &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(fmt.Sprintf("data/%06d.json", i/2+i%2*benchVersions/4))}
				switch i % 3 {
				case 0:
					in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, aws.String(w.old), aws.Bool(true)
				case 1:
					in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, aws.String(w.target), aws.Bool(true)
				}
				in.Body = nil
				if _, err := w.env.S3.PutObject(ctx, in); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range benchVersions {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	enableTable(b, w.env, "bench")
	key, err := w.env.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "bench", DestinationBucket: "bench-reports", Format: "Parquet"})
	if err != nil {
		b.Fatal(err)
	}
	return "s3://bench-reports/" + key
}

// requestDollars prices the emulator's counted requests: LIST at the
// PUT-class price, every other S3 and S3 Tables request at the GET price.
func requestDollars(w *world) (dollars float64, objectRequests int64) {
	for _, c := range w.env.Emu.Counts() {
		switch {
		case c.Service == "s3" && c.Operation == "ListObjectVersions":
			dollars += float64(c.N) * cost.S3PutPerRequest
		case c.Service == "s3" || c.Service == "s3tables":
			dollars += float64(c.N) * cost.S3GetPerRequest
		}
		if c.Service == "s3" && c.Bucket == "bench" && (c.Operation == "HeadObject" || c.Operation == "GetObject") {
			objectRequests += c.N
		}
	}
	return dollars, objectRequests
}

// BenchmarkVerify verifies one bucket of 20,000 versions from each source
// and reports versions verified a second and the measured cost per million
// versions (requests counted by the emulator, us-east-1 list prices).
func BenchmarkVerify(b *testing.B) {
	w := newWorld(b)
	pol, err := policyFor(w, "bench")
	if err != nil {
		b.Fatal(err)
	}
	manifest := seedBench(b, w)
	for _, tc := range []struct {
		name, source string
		recent       bool
	}{
		{"table", verify.SourceTable, false},
		{"table-recent", verify.SourceTable, true},
		{"inventory+head", verify.SourceInventory, false},
		{"listing+head", verify.SourceListing, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var versions int64
			var dollars float64
			var objects int64
			for range b.N {
				w.env.Emu.ResetCounts()
				res, err := verify.Run(context.Background(), w.clients(), pol, verify.Options{Source: tc.source, Recent: tc.recent,
					Inventories: []string{manifest}, Concurrency: 32})
				if err != nil {
					b.Fatal(err)
				}
				versions = res.Buckets[0].Versions
				dollars, objects = requestDollars(w)
			}
			if versions != benchVersions {
				b.Fatalf("verified %d versions, want %d", versions, benchVersions)
			}
			b.ReportMetric(float64(versions)*float64(b.N)/b.Elapsed().Seconds(), "versions/s")
			b.ReportMetric(dollars/float64(versions)*1e6, "$/M-versions")
			b.ReportMetric(float64(objects), "object-requests")
		})
	}
}
