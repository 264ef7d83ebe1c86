package encrypt_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

const floorKey = "arn:aws:kms:us-east-1:111122223333:key/bench"

// trivialS3 answers HEAD as for an SSE-S3 object and UpdateObjectEncryption
// with 200, after a fixed latency, and counts requests in flight. It does
// the least a server can, so that what the benchmarks measure is the
// client.
type trivialS3 struct {
	latency time.Duration
	peak
}

func (s *trivialS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer s.enter()()
	if s.latency > 0 {
		time.Sleep(s.latency)
	}
	if r.Method == http.MethodHead {
		h := w.Header()
		h.Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		h.Set("Last-Modified", "Mon, 02 Nov 2026 09:14:27 GMT")
		h.Set("Content-Length", "1024")
		h.Set("x-amz-server-side-encryption", "AES256")
	}
	w.WriteHeader(http.StatusOK)
}

// trivialClient starts a trivial server answering after latency, for the
// rest of the benchmark, and returns it with an SDK client pointed at it.
func trivialClient(b *testing.B, latency time.Duration) (*s3.Client, *trivialS3) {
	srv := &trivialS3{latency: latency}
	ts := httptest.NewServer(srv)
	b.Cleanup(ts.Close)
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "secret", ""), HTTPClient: awsconf.NewHTTPClient(),
		Retryer: aws.NopRetryer{}}), srv
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var latencies = []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond}

const floorObjects, floorInFlight = 2000, 256

// BenchmarkFloor is the bare-SDK floor: HeadObject then
// UpdateObjectEncryption per object through aws-sdk-go-v2, 256 objects at
// a time, against the trivial server. No queue, no decisions.
func BenchmarkFloor(b *testing.B) {
	for _, latency := range latencies {
		b.Run(fmt.Sprintf("latency=%s", latency), func(b *testing.B) {
			client, srv := trivialClient(b, latency)
			keys := make(chan string)
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				var wg sync.WaitGroup
				for range floorInFlight {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for key := range keys {
							if _, err := client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("bench"), Key: aws.String(key)}); err != nil {
								b.Error(err)
							}
							if _, err := client.UpdateObjectEncryption(context.Background(), &s3.UpdateObjectEncryptionInput{Bucket: aws.String("bench"), Key: aws.String(key),
								ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(floorKey), BucketKeyEnabled: aws.Bool(true)}}}); err != nil {
								b.Error(err)
							}
						}
					}()
				}
				for i := range floorObjects {
					keys <- fmt.Sprintf("obj/%05d", i)
				}
				close(keys)
				wg.Wait()
				keys = make(chan string)
			}
			reportPerObject(b, cpu0, srv)
		})
	}
}

// BenchmarkConsumer runs the encrypt handler over a batch of 10 messages
// of 200 objects each against the same trivial server: message decoding,
// policy, HEAD, decision, UpdateObjectEncryption, outcome accounting, logs
// discarded, no follow-ups (every object succeeds).
func BenchmarkConsumer(b *testing.B) {
	for _, latency := range latencies {
		b.Run(fmt.Sprintf("latency=%s", latency), func(b *testing.B) {
			client, srv := trivialClient(b, latency)
			pol, err := policy.Parse([]byte(`{"buckets":{"bench":{"kmsKeyArn":"` + floorKey + `","bucketKeyEnabled":true}}}`))
			if err != nil {
				b.Fatal(err)
			}
			h := &encrypt.Handler{Rekeyer: &rekey.Rekeyer{Head: client, Update: client, Policy: pol}, Sender: &queue.Sender{},
				Config: encrypt.Config{WorkQueueURL: "unused", DeadLetterQueueURL: "unused", Concurrency: floorInFlight}}
			var ev events.SQSEvent
			for m := range floorObjects / 200 {
				var objs []messages.Object
				for i := range 200 {
					objs = append(objs, messages.Object{Bucket: "bench", Key: fmt.Sprintf("obj/%05d", m*200+i)})
				}
				body, _ := messages.Task{Source: messages.SourceInventory, Objects: objs}.Encode()
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(m), Body: body, Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				_, sum := h.HandleWithSummary(context.Background(), ev)
				if sum.Outcomes["updated"] != floorObjects {
					b.Fatalf("outcomes %v", sum.Outcomes)
				}
			}
			reportPerObject(b, cpu0, srv)
		})
	}
}

func reportPerObject(b *testing.B, cpu0 time.Duration, srv *trivialS3) {
	b.StopTimer()
	objects := float64(b.N * floorObjects)
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/objects, "cpu-µs/object")
	b.ReportMetric(objects/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64(srv.max.Load()), "max-in-flight")
	b.ReportMetric(0, "ns/op")
}
