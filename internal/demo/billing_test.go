package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/localrun"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// envCostWorld, set to "OBJECTS,events" or "OBJECTS,backfill", makes this
// test binary the cost benchmark's world: the emulator, seeded, and the
// uploads, in a process apart from the functions whose CPU time is billed.
const envCostWorld = "S3REKEY_COST_WORLD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envCostWorld); spec != "" {
		if err := serveCostWorld(spec); err != nil {
			fmt.Fprintln(os.Stderr, "cost world:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// worldInfo is what the functions need to reach the world.
type worldInfo struct {
	URL, Region string
	PolicyJSON  []byte
	Queues      pipeline.Queues
	Jobs        jobs.Config
}

// worldCounts is what the world's emulator counted after "go".
type worldCounts struct {
	Counts    []emulator.Count
	BilledSQS int64
	Capacity  emulator.Capacity
}

// serveCostWorld answers on stdin and stdout: it prints the worldInfo,
// then on "go" resets the counts and sends the work (the uploads, or the
// inventory that starts the backfill) and prints "sent", then on "counts"
// prints the worldCounts and ends.
func serveCostWorld(spec string) error {
	nText, mode, _ := strings.Cut(spec, ",")
	n, err := strconv.Atoi(nText)
	if err != nil || n <= 0 || n > 1_000_000 || (mode != "events" && mode != "backfill") {
		return fmt.Errorf("%s=%q: want OBJECTS,events or OBJECTS,backfill", envCostWorld, spec)
	}
	d, emu, err := newBenchWorld(n)
	if emu != nil {
		defer emu.Close()
	}
	if err != nil {
		return err
	}
	var putErrs atomic.Int64
	put := func(i int) {
		if d.putObject(i) != nil {
			putErrs.Add(1)
		}
	}
	if mode == "events" {
		emu.AddEventBridgeRule(emulator.EventBridgeRule{Bucket: DataBucket, Queue: UploadsQueue}) // as the stack's ObjectCreated rule
		if err := enableEventBridge(d, DataBucket); err != nil {
			return err
		}
	} else {
		parallel(n, 16, put)
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(worldInfo{URL: emu.URL(), Region: emu.Region(), PolicyJSON: d.policyJSON, Queues: d.queues, Jobs: d.jobs}); err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "go":
			emu.ResetCounts()
			if mode == "events" {
				parallel(n, 8, put)
			} else if _, err := emu.PublishInventory(emulator.InventoryOptions{SourceBucket: DataBucket, DestinationBucket: InventoryBucket,
				Format: "CSV", CurrentOnly: true}); err != nil {
				return err
			}
			if putErrs.Load() > 0 {
				return fmt.Errorf("%d uploads failed", putErrs.Load())
			}
			fmt.Println("sent")
		case "counts":
			return out.Encode(worldCounts{Counts: emu.Counts(), BilledSQS: emu.BilledSQSRequests(), Capacity: emu.CapacityUnits()})
		}
	}
	return errors.New("stdin closed before \"counts\"")
}

// costWorld is the world's process, seen from the benchmark.
type costWorld struct {
	info  worldInfo
	stdin io.Writer
	lines *bufio.Scanner
}

func startCostWorld(b *testing.B, n int, events bool) *costWorld {
	b.Helper()
	mode := "backfill"
	if events {
		mode = "events"
	}
	stdin, stdout := emutest.StartChild(b, envCostWorld+"="+strconv.Itoa(n)+","+mode)
	w := &costWorld{stdin: stdin, lines: bufio.NewScanner(stdout)}
	w.lines.Buffer(make([]byte, 1<<20), 64<<20)
	if !w.lines.Scan() {
		b.Fatalf("the world did not start: %v", w.lines.Err())
	}
	if err := json.Unmarshal(w.lines.Bytes(), &w.info); err != nil {
		b.Fatalf("world info: %v", err)
	}
	return w
}

func (w *costWorld) awsConfig() aws.Config {
	return aws.Config{Region: w.info.Region, BaseEndpoint: aws.String(w.info.URL),
		Credentials: credentials.NewStaticCredentialsProvider(emulator.AccessKeyID, emulator.SecretAccessKey, "")}
}

// send tells the world to send the work; the returned function reports
// true until it has all been sent (the Runner's Busy).
func (w *costWorld) send(b *testing.B) func() bool {
	b.Helper()
	if _, err := w.stdin.Write([]byte("go\n")); err != nil {
		b.Fatal(err)
	}
	var sent atomic.Bool
	go func() {
		if w.lines.Scan() && w.lines.Text() == "sent" {
			sent.Store(true)
		}
	}()
	return func() bool { return !sent.Load() }
}

func (w *costWorld) counts(b *testing.B) worldCounts {
	b.Helper()
	if _, err := w.stdin.Write([]byte("counts\n")); err != nil {
		b.Fatal(err)
	}
	var c worldCounts
	if !w.lines.Scan() {
		b.Fatalf("no counts from the world: %v", w.lines.Err())
	}
	if err := json.Unmarshal(w.lines.Bytes(), &c); err != nil {
		b.Fatalf("world counts: %v", err)
	}
	return c
}

// processCPU is this process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// invocationWalls are the wall times of a Runner's invocations.
type invocationWalls struct {
	mu    sync.Mutex
	walls []time.Duration
}

// timeInvocations records the wall time of every invocation r makes.
func timeInvocations(r *localrun.Runner) *invocationWalls {
	w := &invocationWalls{}
	for i := range r.Sources {
		h := r.Sources[i].Handler
		r.Sources[i].Handler = func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			began := time.Now()
			resp, err := h(ctx, ev)
			w.mu.Lock()
			w.walls = append(w.walls, time.Since(began))
			w.mu.Unlock()
			return resp, err
		}
	}
	return w
}

func (w *invocationWalls) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.walls...)
}
