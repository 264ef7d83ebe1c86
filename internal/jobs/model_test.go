package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// The model-based test of the job protocol: a seeded generator of
// delivery schedules drives the real planner, encrypt handler and jobs
// code against the emulator, and after each schedule checks what a job
// promises (docs/jobs.md):
//   - the job completes;
//   - its report lists every object the job covers exactly once (every
//     object there for the whole listing; an object created or deleted
//     meanwhile at most once), with the outcome its final state shows;
//   - the job's counts are the report's rows, by outcome;
//   - every manifest.json entry's MD5, size and row count are true;
//   - a further replay of messages (up to a dozen delivered ones, and the
//     job's control message, on a bucket with one more object) changes
//     nothing.
//
// See TestModel for the variables that choose the schedules.

// model is the emulator and what every schedule shares.
type model struct {
	emu    *emulator.Emulator
	cfg    aws.Config
	s3c    *s3.Client
	ddb    *dynamodb.Client
	jc     jobs.Config
	target string
	n      atomic.Int64
}

func newModel(t testing.TB) *model {
	t.Helper()
	m := startModel(t)
	t.Cleanup(m.close)
	return m
}

// startModel is newModel that the caller closes.
func startModel(t testing.TB) *model {
	t.Helper()
	ctx := context.Background()
	emu, err := emulator.Start(ctx, emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	jc, err := demo.SetupJobs(ctx, emu, "jobs", "reports")
	if err != nil {
		t.Fatal(err)
	}
	jc.ReportAll = true
	cfg := emulatorConfig(emu)
	return &model{emu: emu, cfg: cfg, s3c: s3.NewFromConfig(cfg, emulator.PathStyle), ddb: dynamodb.NewFromConfig(cfg), jc: jc,
		target: "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000001"}
}

func (m *model) close() { _ = m.emu.Close() }

// run is one schedule: its world, the functions and the job.
type run struct {
	m         *model
	w         *world
	bucket    string
	store     *jobs.Store
	committer *jobs.Committer
	handler   *encrypt.Handler
	planner   *planner.Planner
	jobID     string
	control   string // the job's control message
	inventory bool
	mutate    bool // the bucket changes while it is listed
	crashRate float64
	redrives  int
	listed    bool // the job's control message was delivered
	replays   int
}

var modelBase = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)

// spec fixes a world instead of drawing it from the seed: its objects
// (key, and how they fail), and a plain schedule (no crashes, faults,
// transient retries or ranges).
type spec struct {
	objects      []objectSpec
	inventory    bool
	messageBytes int
}

type objectSpec struct {
	key        string
	failReason string // a permanent failure ("access-denied")
	flaky      int    // tries that come back to retry first
	flakyAs    string // their retry reason
}

// newRun makes a schedule's world from its seed.
func (m *model) newRun(t testing.TB, seed uint64) *run { return m.newRunWith(t, seed, nil) }

func (m *model) newRunWith(t testing.TB, seed uint64, sp *spec) *run {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := &world{rng: rng, seed: seed, clock: &modelClock{t: modelBase}, queues: map[string][]*qmsg{}, objects: map[string]*modelObject{},
		calls: map[string]int{}, failPut: map[string]int{}}
	r := &run{m: m, w: w, bucket: fmt.Sprintf("model-%d-%d", seed%1000000, m.n.Add(1))}
	if _, err := m.s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(r.bucket)}); err != nil {
		t.Fatal(err)
	}
	messageBytes, ranges := 1000+rng.IntN(1500), 1+rng.IntN(3)
	if sp == nil {
		for range 2 + rng.IntN(12) {
			r.put(t, rng.IntN(100) < 15)
		}
		w.transientRate = []float64{0, 0, 0.1, 0.3}[rng.IntN(4)]
		w.sendFaultRate = []float64{0, 0, 0.05}[rng.IntN(3)]
		r.crashRate = []float64{0, 0.1, 0.25}[rng.IntN(3)]
		r.inventory = rng.IntN(10) < 3
		r.mutate = !r.inventory && rng.IntN(2) == 0
	} else {
		for _, o := range sp.objects {
			r.putKey(t, o.key, o.failReason != "")
			mo := w.objects[o.key]
			mo.failReason, mo.flaky, mo.flakyAs = o.failReason, o.flaky, o.flakyAs
		}
		r.inventory, messageBytes, ranges = sp.inventory, sp.messageBytes, 1
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{%q:{"kmsKeyArn":%q,"excludePrefixes":["tmp/"]}}}`, r.bucket, m.target)))
	if err != nil {
		t.Fatal(err)
	}
	reports := &reportStore{api: m.s3c, w: w}
	r.store = &jobs.Store{API: &dynamo{DynamoDBAPI: m.ddb, w: w}, Table: m.jc.Table, Now: w.clock.Now}
	r.committer = &jobs.Committer{Store: r.store, Reports: m.jc.Reports(reports), Get: reports}
	r.handler = &encrypt.Handler{Rekeyer: w, Sender: w, Jobs: r.committer, Now: w.clock.Now,
		Config: encrypt.Config{WorkQueueURL: workURL, DeadLetterQueueURL: dlqURL, MaxAttempts: 3, Concurrency: 1, RetryBaseDelay: time.Second,
			DeadlineMargin: 10 * time.Second}}
	r.planner = &planner.Planner{Get: m.s3c, List: m.s3c, Sender: w, Policy: pol, Jobs: r.store, Reports: r.committer.Reports, Now: w.clock.Now,
		Config: planner.Config{WorkQueueURL: workURL, ControlQueueURL: controlURL, ControlDLQURL: controlDLQURL,
			MessageBytes: messageBytes, ListingRanges: ranges}}
	job := planner.Job{Version: planner.JobVersion, Type: planner.TypeListing, Bucket: r.bucket,
		JobID: jobs.ListingID(r.bucket, "", false, modelBase.Add(time.Duration(seed)))}
	if r.inventory {
		manifest, err := m.emu.PublishInventory(emulator.InventoryOptions{SourceBucket: r.bucket, DestinationBucket: "reports",
			Prefix: "inventories/" + r.bucket, Format: "CSV", CurrentOnly: true, RowsPerFile: 1 + rng.IntN(8)})
		if err != nil {
			t.Fatal(err)
		}
		manifest = "s3://reports/" + manifest
		job = planner.Job{Version: planner.JobVersion, Type: planner.TypeInventory, Manifest: manifest, JobID: jobs.InventoryID(manifest)}
	}
	r.jobID = job.JobID
	if r.control, err = job.Encode(); err != nil {
		t.Fatal(err)
	}
	w.enqueue(controlURL, r.control)
	return r
}

// put uploads a new object and records it in the model.
func (r *run) put(t testing.TB, denied bool) {
	t.Helper()
	w := r.w
	for {
		prefix := []string{"a/", "b/", "c/", "tmp/"}[w.rng.IntN(4)]
		key := prefix + fmt.Sprintf("%03d", w.rng.IntN(1000))
		if w.objects[key] == nil {
			r.putKey(t, key, denied)
			return
		}
	}
}

func (r *run) putKey(t testing.TB, key string, denied bool) {
	t.Helper()
	if _, err := r.m.s3c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key),
		Body: bytes.NewReader([]byte("x"))}); err != nil {
		t.Fatal(err)
	}
	r.w.objects[key] = &modelObject{key: key, exists: true, everExists: true, initial: !r.listed, denied: denied,
		excluded: strings.HasPrefix(key, "tmp/")}
}

// remove deletes an object from the bucket.
func (r *run) remove(t testing.TB) {
	t.Helper()
	keys := r.w.sortedKeys()
	o := r.w.objects[keys[r.w.rng.IntN(len(keys))]]
	if !o.exists {
		return
	}
	if _, err := r.m.s3c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(o.key)}); err != nil {
		t.Fatal(err)
	}
	o.exists, o.deleted = false, true
}

// crashPlan draws whether and where the next invocation crashes.
func (r *run) crashPlan(ops ...string) *crashPlan {
	if r.crashRate == 0 || r.w.rng.Float64() >= r.crashRate {
		return nil
	}
	return &crashPlan{op: ops[r.w.rng.IntN(len(ops))], after: 1 + r.w.rng.IntN(3), applied: r.w.rng.IntN(2) == 0}
}

// invoke runs one batch of a queue through its function.
func (r *run) invoke(t testing.TB, url string, batch []*qmsg, crash *crashPlan, nearDeadline bool) {
	t.Helper()
	w := r.w
	ev := w.receive(url, batch)
	if url == workURL && len(ev.Records) > 0 && w.rng.IntN(20) == 0 {
		// The same body twice in one batch (a send whose answer was lost,
		// sent again).
		dup := ev.Records[w.rng.IntN(len(ev.Records))]
		dup.MessageId += "-dup"
		ev.Records = append(ev.Records, dup)
	}
	w.mu.Lock()
	w.crash = crash
	w.mu.Unlock()
	deadline := w.clock.Now().Add(15 * time.Minute)
	if nearDeadline {
		deadline = w.clock.Now().Add(10*time.Second + time.Duration(w.rng.IntN(3))*time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var resp events.SQSEventResponse
	if url == workURL {
		resp, _ = r.handler.HandleWithSummary(ctx, ev)
	} else {
		resp, _ = r.planner.Handle(ctx, ev)
	}
	w.mu.Lock()
	crashed := w.crash != nil && w.crash.crashed
	w.crash = nil
	w.mu.Unlock()
	w.settle(url, batch, resp.BatchItemFailures, crashed)
	w.clock.advance(time.Second)
}

// step takes one step of the schedule; false when nothing is left to do.
func (r *run) step(t testing.TB, crashes bool) bool {
	w := r.w
	plan := func(ops ...string) *crashPlan {
		if !crashes {
			return nil
		}
		return r.crashPlan(ops...)
	}
	if ctrl := w.visible(controlURL); len(ctrl) > 0 {
		if r.mutate && w.rng.IntN(3) == 0 {
			if w.rng.IntN(2) == 0 {
				r.put(t, w.rng.IntN(100) < 15)
			} else {
				r.remove(t)
			}
		}
		r.listed = true
		r.invoke(t, controlURL, ctrl[:1], plan("send", "update", "query"), false)
		if crashes && r.replays < 3 && w.rng.IntN(4) == 0 {
			r.replays++
			w.enqueue(controlURL, r.control) // a replay of the listing or inventory
		}
		return true
	}
	if work := w.visible(workURL); len(work) > 0 {
		w.rng.Shuffle(len(work), func(i, j int) { work[i], work[j] = work[j], work[i] })
		n := 1 + w.rng.IntN(min(len(work), 10))
		if w.rng.IntN(10) == 0 {
			n = len(work)
		}
		r.invoke(t, workURL, work[:n], plan("send", "transact", "update", "put", "query"), crashes && w.rng.IntN(8) == 0)
		return true
	}
	if next := w.nextVisible(); !next.IsZero() {
		if d := next.Sub(w.clock.Now()); d > 0 {
			w.clock.advance(d)
		}
		return true
	}
	return false
}

// drain runs the schedule until every queue but the DLQ is empty.
func (r *run) drain(t testing.TB, crashes bool) {
	t.Helper()
	for range 20000 {
		if !r.step(t, crashes) {
			return
		}
	}
	var b strings.Builder
	for url, q := range r.w.queues {
		for _, m := range q {
			fmt.Fprintf(&b, "  %s %s receives=%d visible=%s %.300s\n", url, m.id, m.receives, m.visibleAt.Sub(r.w.clock.Now()), m.body)
		}
	}
	t.Fatalf("the schedule did not drain:\n%s%s", b.String(), r.dump())
}

// redrive moves every dead letter back to its queue, as s3rekey redrive
// does (marking each redriven first) or as a console redrive does (not);
// fix lets the objects that were denied through first. A control dead
// letter (a planner task that failed on its last delivery) goes back to
// the control queue, as s3rekey redrive --queue CONTROL moves it.
func (r *run) redrive(t testing.TB, reopen, fix bool) {
	t.Helper()
	w := r.w
	if fix {
		for _, k := range w.sortedKeys() {
			if w.objects[k].denied && w.rng.IntN(4) != 0 {
				w.objects[k].denied = false
			}
		}
	}
	r.redriveControl()
	w.mu.Lock()
	dead := w.queues[dlqURL]
	w.queues[dlqURL] = nil
	w.mu.Unlock()
	for _, m := range dead {
		if reopen {
			if task, err := messages.Decode(m.body); err == nil && task.ID != "" {
				redriveMark(t, r.store, task)
			}
		}
		w.enqueue(workURL, m.body)
	}
	r.redrives++
}

// redriveControl moves the control dead letters back to the control queue.
func (r *run) redriveControl() {
	w := r.w
	w.mu.Lock()
	dead := w.queues[controlDLQURL]
	w.queues[controlDLQURL] = nil
	w.mu.Unlock()
	for _, m := range dead {
		w.enqueue(controlURL, m.body)
	}
}

// schedule runs a whole generated schedule: delivery with crashes and
// faults, redrives (repeated, some with fixes), a drain, then the checks.
func (r *run) schedule(t testing.TB) {
	t.Helper()
	w := r.w
	r.drain(t, true)
	for range w.rng.IntN(4) {
		if len(w.queues[dlqURL]) == 0 && len(w.queues[controlDLQURL]) == 0 {
			break
		}
		r.redrive(t, w.rng.IntN(2) == 0, w.rng.IntN(2) == 0)
		r.drain(t, true)
	}
	w.sendFaultRate = 0
	// The operator redrives what the planner could not do (its cause, the
	// faults, now gone): a job is planned only once its control tasks ran.
	r.redriveControl()
	r.drain(t, false)
	first := r.check(t)
	// A further replay of messages delivered (up to a dozen, drawn from
	// all), and of the job's control message, on a bucket with a new
	// object: nothing changes.
	if r.mutate {
		r.put(t, false)
	}
	delivered := slices.Clone(w.delivered)
	w.rng.Shuffle(len(delivered), func(i, j int) { delivered[i], delivered[j] = delivered[j], delivered[i] })
	for _, body := range delivered[:min(len(delivered), 12)] {
		w.enqueue(workURL, body)
	}
	w.enqueue(controlURL, r.control)
	r.drain(t, false)
	if again := r.check(t); again != first {
		t.Fatalf("a replay changed the job:\nbefore %s\nafter  %s", first, again)
	}
}

// check verifies the invariants and returns the job's outcome summary.
func (r *run) check(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	j, err := r.store.Get(ctx, r.jobID)
	if err != nil {
		t.Fatalf("job %s: %v", r.jobID, err)
	}
	if j.State != jobs.StateComplete && j.State != jobs.StateCompleteWithFailures {
		t.Fatalf("job %s is %s: %d/%d done, rows %d of %d, outcomes %v; %d dead letters, %d redrives\n%s", j.ID, j.State, j.Done, j.Planned, j.Rows,
			j.RowsExpected, j.Outcomes, len(r.w.queues[dlqURL]), r.redrives, r.dump())
	}
	if len(r.w.silentMoves) > 0 {
		t.Fatalf("moved to a DLQ by SQS without a reason, though nothing kept the function from dead-lettering them itself: %v", r.w.silentMoves)
	}
	for _, url := range []string{dlqURL, controlDLQURL} {
		for _, m := range r.w.queues[url] {
			if m.attrs == nil || m.attrs[encrypt.AttrReason] == "" && m.attrs[planner.AttrReason] == "" {
				if !m.bySQS {
					t.Fatalf("dead letter %s in %s has no reason: %.200s", m.id, url, m.body)
				}
			}
		}
	}
	rows := r.checkManifest(t, j.ReportManifest)
	byOutcome := map[string]int64{}
	seen := map[string]bool{}
	for _, row := range rows {
		if seen[row.Key] {
			t.Fatalf("%s is in the report twice", row.Key)
		}
		seen[row.Key] = true
		key := rekey.Outcome{Status: row.Outcome.Status, Reason: row.Outcome.Reason}.String()
		byOutcome[key]++
		o := r.w.objects[row.Key]
		if o == nil {
			t.Fatalf("the report lists %s, which never existed", row.Key)
		}
		if !outcomeShows(row.Outcome, o) {
			t.Fatalf("%s is reported %s, but its final state is updated=%t denied=%t deleted=%t excluded=%t", row.Key, key, o.updated, o.denied, o.deleted, o.excluded)
		}
	}
	for _, k := range r.w.sortedKeys() {
		if o := r.w.objects[k]; o.initial && !o.deleted && !seen[k] {
			t.Fatalf("%s, in the bucket for the whole job, is not in its report", k)
		}
	}
	if int64(len(rows)) != j.Rows || j.Done != j.Planned {
		t.Fatalf("job %s counts %d rows, %d of %d objects done; its report has %d rows", j.ID, j.Rows, j.Done, j.Planned, len(rows))
	}
	for k, n := range j.Outcomes {
		if byOutcome[k] != n {
			t.Fatalf("job %s counts %d %q, its report lists %d (counts %v, report %v)", j.ID, n, k, byOutcome[k], j.Outcomes, byOutcome)
		}
	}
	for k, n := range byOutcome {
		if j.Outcomes[k] != n {
			t.Fatalf("job %s counts %d %q, its report lists %d", j.ID, j.Outcomes[k], k, n)
		}
	}
	var keys []string
	for _, row := range rows {
		keys = append(keys, row.Key+"="+string(row.Outcome.Status)+":"+row.Outcome.Reason)
	}
	slices.Sort(keys)
	return fmt.Sprintf("%s %v %s", j.State, j.Outcomes, strings.Join(keys, ","))
}

// outcomeShows reports whether an object's reported outcome is what its
// final state shows.
func outcomeShows(out rekey.Outcome, o *modelObject) bool {
	switch out.Status {
	case rekey.Updated, rekey.Compliant:
		return o.updated
	case rekey.Failed:
		// Out of attempts on errors that pass is true of an object a
		// delivery that crashed before its commit had updated: the tries
		// that count could not tell (docs/jobs.md).
		return !o.updated || out.Reason == "attempts-exhausted"
	case rekey.Gone:
		return o.deleted
	case rekey.Skipped:
		return o.excluded && out.Reason == rekey.ReasonExcludedPrefix
	}
	return false
}

// schedulesPerEmulator is how many schedules share one emulator.
const schedulesPerEmulator = 200

// TestModel runs generated schedules on two workers: by default at least
// 300 and up to 5,000 within S3REKEY_MODEL_BUDGET (default 40s), and under
// the race detector (make test runs both) at least 40 and up to 150.
// S3REKEY_SEED=N runs the one schedule of seed N; with
// S3REKEY_SCHEDULES=M, the M schedules from seed N (make soak).
func TestModel(t *testing.T) {
	first, count, minimum := uint64(1), 5000, 300
	if raceEnabled {
		count, minimum = 150, 40
	}
	budget := 40 * time.Second
	if v := os.Getenv("S3REKEY_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("S3REKEY_SEED=%q", v)
		}
		first, count, minimum = seed, 1, 1
	}
	if v := os.Getenv("S3REKEY_SCHEDULES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("S3REKEY_SCHEDULES=%q", v)
		}
		count, minimum, budget = n, n, 24*time.Hour
	}
	if v := os.Getenv("S3REKEY_MODEL_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("S3REKEY_MODEL_BUDGET=%q", v)
		}
		budget = d
	}
	// The emulator keeps every schedule's items, and the schedules
	// allocate a great deal per request (SDK middleware, JSON): a larger
	// heap goal between collections leaves the CPU to the schedules
	// (about a sixth of it went to marking).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	began := time.Now()
	seeds := make(chan uint64)
	var ran atomic.Int64
	var mu sync.Mutex
	var failed []uint64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker has its own emulator, started afresh every
			// schedulesPerEmulator schedules: a schedule's world is its own
			// bucket and job, so it does not depend on what ran before, and
			// the emulator's tables stay those of a few schedules (with
			// thousands, each request slowed as they grew).
			var m *model
			shared := 0
			defer func() {
				if m != nil {
					m.close()
				}
			}()
			for seed := range seeds {
				if m == nil || shared == schedulesPerEmulator {
					if m != nil {
						m.close()
					}
					m, shared = startModel(t), 0
				}
				shared++
				ok := t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
					m.newRun(t, seed).schedule(t)
				})
				ran.Add(1)
				if !ok {
					mu.Lock()
					failed = append(failed, seed)
					mu.Unlock()
				}
			}
		}()
	}
	// At least minimum schedules, then more up to count while within the
	// budget: the coverage does not depend on the machine's speed.
	for seed := first; seed < first+uint64(count) && (seed-first < uint64(minimum) || time.Since(began) < budget); seed++ {
		mu.Lock()
		stop := len(failed) > 0
		mu.Unlock()
		if stop {
			break
		}
		seeds <- seed
	}
	close(seeds)
	wg.Wait()
	t.Logf("%d schedules in %s", ran.Load(), time.Since(began).Round(time.Millisecond))
	for _, seed := range failed {
		t.Errorf("schedule failed; run it again with S3REKEY_SEED=%d go test -run '^TestModel$' ./internal/jobs/", seed)
	}
}
