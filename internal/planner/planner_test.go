package planner_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/localrun"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

type env struct {
	*emutest.Env
	target, old                          string
	controlURL, controlDLQ, work, workDL string
	policy                               *policy.Policy
	planner                              *planner.Planner
	encrypt                              *encrypt.Handler
}

// newEnv has a source bucket "src" (Object Lock, so versioned), an
// inventory bucket "inv" whose manifest.checksum events reach the control
// queue, and the planner and encrypt handlers wired to the queues.
func newEnv(t *testing.T, versions string) *env {
	e := emutest.Start(t, emulator.Options{EventBridgeRules: []emulator.EventBridgeRule{{Bucket: "inv", KeySuffix: "manifest.checksum", Queue: "control"}}})
	v := &env{Env: e, target: e.Key(t), old: e.Key(t)}
	var dlqARN, workDLQARN string
	v.controlDLQ, dlqARN = e.Queue(t, "control-dlq", nil)
	v.controlURL, _ = e.Queue(t, "control", map[string]string{"VisibilityTimeout": "2",
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":3}`, dlqARN)})
	v.workDL, workDLQARN = e.Queue(t, "work-dlq", nil)
	v.work, _ = e.Queue(t, "work", map[string]string{"VisibilityTimeout": "5",
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":5}`, workDLQARN)})
	e.Bucket(t, "src", true)
	e.Bucket(t, "inv", false)
	if _, err := e.S3.PutBucketNotificationConfiguration(context.Background(), &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("inv"),
		NotificationConfiguration: &types.NotificationConfiguration{EventBridgeConfiguration: &types.EventBridgeConfiguration{}}}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{"src":{"kmsKeyArn":%q,"bucketKeyEnabled":true,"versions":%q,"excludePrefixes":["tmp/"]}}}`, v.target, versions)))
	if err != nil {
		t.Fatal(err)
	}
	v.policy = pol
	sender := &queue.Sender{API: e.SQS, Backoff: time.Millisecond}
	v.planner = &planner.Planner{Get: e.S3, List: e.S3, Sender: sender, Policy: pol,
		Config: planner.Config{WorkQueueURL: v.work, ControlQueueURL: v.controlURL, ControlDLQURL: v.controlDLQ, MessageBytes: 2048,
			ChecksumRereadFor: 50 * time.Millisecond}}
	v.encrypt = &encrypt.Handler{Rekeyer: &rekey.Rekeyer{Head: e.S3, Update: e.S3, Policy: pol}, Sender: sender,
		Config: encrypt.Config{WorkQueueURL: v.work, DeadLetterQueueURL: v.workDL}}
	return v
}

func (v *env) run(t *testing.T) {
	t.Helper()
	r := &localrun.Runner{API: v.SQS, Sources: []localrun.Source{
		{QueueURL: v.controlURL, Handler: v.planner.Handle, BatchSize: 1, Concurrency: 2},
		{QueueURL: v.work, Handler: v.encrypt.Handle, BatchSize: 10, Concurrency: 2},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.RunUntilIdle(ctx, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

// expectation is one seeded version and the state it must end in.
type expectation struct {
	key, version string
	current      bool   // the version is current (matters for versions=current)
	want         string // "target" or the encryption it must keep
}

// seed writes every state an inventory can describe.
func (v *env) seed(t *testing.T) []expectation {
	t.Helper()
	ctx := context.Background()
	put := func(key string, edit func(*s3.PutObjectInput), opts ...func(*s3.Options)) string {
		in := &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(key)}
		if edit != nil {
			edit(in)
		}
		return aws.ToString(v.Put(t, in, "content "+key, opts...).VersionId)
	}
	kms := func(key string, bk bool) func(*s3.PutObjectInput) {
		return func(in *s3.PutObjectInput) {
			in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, aws.String(key), aws.Bool(bk)
		}
	}
	customer := bytes.Repeat([]byte{3}, 32)
	sum := md5.Sum(customer)
	var ex []expectation
	add := func(key, version string, current bool, want string) {
		ex = append(ex, expectation{key, version, current, want})
	}

	add("spaces and+plus/a b+c.txt", put("spaces and+plus/a b+c.txt", nil), true, "target")
	add("ünïcödé/日本.txt", put("ünïcödé/日本.txt", kms(v.old, false)), true, "target")
	add("compliant.txt", put("compliant.txt", kms(v.target, true)), true, "target")
	add("bk-off.txt", put("bk-off.txt", kms(v.target, false)), true, "target")
	add("legacy.txt", put("legacy.txt", nil, emulator.LegacyUnencrypted), true, "NOT-SSE")
	add("ssec.bin", put("ssec.bin", func(in *s3.PutObjectInput) {
		in.SSECustomerAlgorithm, in.SSECustomerKey = aws.String("AES256"), aws.String(base64.StdEncoding.EncodeToString(customer))
		in.SSECustomerKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}), true, "SSE-C")
	add("dsse.bin", put("dsse.bin", func(in *s3.PutObjectInput) {
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKmsDsse, aws.String(v.old)
	}), true, "DSSE-KMS")
	add("held.txt", put("held.txt", func(in *s3.PutObjectInput) { in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn }), true, "SSE-S3")
	add("retained.txt", put("retained.txt", func(in *s3.PutObjectInput) {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockModeGovernance, aws.Time(time.Now().Add(time.Hour))
	}), true, "SSE-S3")
	add("tmp/excluded.txt", put("tmp/excluded.txt", nil), true, "SSE-S3")
	old := put("versioned.txt", nil)
	add("versioned.txt", put("versioned.txt", nil), true, "target")
	add("versioned.txt", old, false, "noncurrent")
	deleted := put("deleted.txt", nil)
	if _, err := v.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("src"), Key: aws.String("deleted.txt")}); err != nil {
		t.Fatal(err)
	}
	add("deleted.txt", deleted, false, "noncurrent")
	return ex
}

func (v *env) check(t *testing.T, ex []expectation, versions string) {
	t.Helper()
	for _, x := range ex {
		st, ok := v.Emu.Inspect("src", x.key, x.version)
		if !ok {
			t.Errorf("%s@%s is missing", x.key, x.version)
			continue
		}
		want := x.want
		if want == "noncurrent" {
			want = "SSE-S3"
			if versions == policy.VersionsAll {
				want = "target"
			}
		}
		if want == "target" {
			if st.Encryption != "SSE-KMS" || st.KMSKeyARN != v.target || !st.BucketKey {
				t.Errorf("%s@%s ends %s %s bucketKey=%v, want SSE-KMS under the target with a bucket key", x.key, x.version, st.Encryption, st.KMSKeyARN, st.BucketKey)
			}
		} else if st.Encryption != want || (want == "SSE-S3" && st.KMSKeyARN != "") {
			t.Errorf("%s@%s ends %s, want %s untouched", x.key, x.version, st.Encryption, want)
		}
	}
}

// TestInventoryBackfillEveryFormat drives an inventory of each format from
// the manifest.checksum event through planner and encrypt to the exact
// expected end state of every version.
func TestInventoryBackfillEveryFormat(t *testing.T) {
	cases := []struct{ format, versions string }{
		{inventory.FormatCSV, policy.VersionsAll},
		{inventory.FormatParquet, policy.VersionsAll},
		{inventory.FormatORC, policy.VersionsAll},
		{inventory.FormatCSV, policy.VersionsCurrent},
		{inventory.FormatParquet, policy.VersionsCurrent},
		{inventory.FormatORC, policy.VersionsCurrent},
	}
	for _, tc := range cases {
		t.Run(tc.format+"/versions="+tc.versions, func(t *testing.T) {
			v := newEnv(t, tc.versions)
			ex := v.seed(t)
			if _, err := v.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "src", DestinationBucket: "inv", Prefix: "reports",
				Format: tc.format, RowsPerFile: 5}); err != nil {
				t.Fatal(err)
			}
			v.run(t)
			v.check(t, ex, tc.versions)
			if n := v.Emu.CountOf("s3", "GetObject", "src"); n != 0 {
				t.Errorf("%d GetObject calls on the data bucket", n)
			}
			if n := v.Emu.CountOf("s3", "GetObject", "inv"); n == 0 {
				t.Error("the planner read no inventory file")
			}
			// SSE-S3 rows go straight to UpdateObjectEncryption: HEADs are
			// made only for SSE-KMS rows (the inventory has no key ARN).
			heads := v.Emu.CountOf("s3", "HeadObject", "src")
			if heads != 3 {
				t.Errorf("%d HEADs, want 3 (the three SSE-KMS objects)", heads)
			}
		})
	}
}

func TestCorruptDataFileIsRetriedNotHalfDone(t *testing.T) {
	v := newEnv(t, policy.VersionsCurrent)
	v.seed(t)
	manifestKey, err := v.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "src", DestinationBucket: "inv", Format: inventory.FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := planner.ReadManifest(context.Background(), v.S3, "s3://inv/"+manifestKey)
	if err != nil {
		t.Fatal(err)
	}
	good, err := v.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("inv"), Key: aws.String(m.Files[0].Key)})
	if err != nil {
		t.Fatal(err)
	}
	var goodBytes bytes.Buffer
	goodBytes.ReadFrom(good.Body)
	v.Put(t, &s3.PutObjectInput{Bucket: aws.String("inv"), Key: aws.String(m.Files[0].Key)}, goodBytes.String()[:goodBytes.Len()/2])

	job := planner.Job{Type: planner.TypeFile, File: &planner.FileTask{Bucket: "inv", Key: m.Files[0].Key, MD5: m.Files[0].MD5Checksum,
		Format: m.FileFormat, Columns: mustColumns(t, m), SourceBucket: "src"}}
	err = v.planner.Run(context.Background(), job)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("truncated data file: %v, want a checksum error", err)
	}
	if n := countMessages(t, v, v.work); n != 0 {
		t.Fatalf("%d object tasks enqueued from a corrupt file", n)
	}
	// Fixed (as S3 would by rewriting it), the same task now succeeds.
	v.Put(t, &s3.PutObjectInput{Bucket: aws.String("inv"), Key: aws.String(m.Files[0].Key)}, goodBytes.String())
	if err := v.planner.Run(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if n := countMessages(t, v, v.work); n == 0 {
		t.Error("nothing enqueued after the file was fixed")
	}
}

func mustColumns(t *testing.T, m *inventory.Manifest) []string {
	t.Helper()
	cols, err := m.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

func countMessages(t *testing.T, v *env, url string) int {
	t.Helper()
	out, err := v.SQS.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(out.Attributes["ApproximateNumberOfMessages"], &n)
	return n
}

// steppingClock advances one second per reading, so a task meets its
// deadline after a known number of clock checks.
type steppingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// drainObjects reads every object task off the work queue; every task
// must name source as its source.
func drainObjects(t *testing.T, v *env, source string) []string {
	t.Helper()
	var keys []string
	for {
		out, err := v.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(v.work), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return keys
		}
		for _, m := range out.Messages {
			task, err := messages.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			if task.Source != source {
				t.Fatalf("object task from %q, want %q", task.Source, source)
			}
			for _, o := range task.Objects {
				keys = append(keys, o.Key+"@"+o.VersionID)
			}
			v.SQS.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(v.work), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// runContinuations runs job, then every continuation it leaves on the
// control queue, each under a fresh deadline, and counts the invocations.
func runContinuations(t *testing.T, v *env, clock *steppingClock, job planner.Job, budget time.Duration) int {
	t.Helper()
	invocations := 0
	for {
		ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(budget))
		err := v.planner.Run(ctx, job)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		invocations++
		out, err := v.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(v.controlURL)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return invocations
		}
		v.SQS.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(v.controlURL), ReceiptHandle: out.Messages[0].ReceiptHandle})
		jobs, err := planner.DecodeJobs(aws.ToString(out.Messages[0].Body))
		if err != nil || len(jobs) != 1 {
			t.Fatalf("continuation %v %v", jobs, err)
		}
		job = jobs[0]
	}
}

func TestFileSplitAcrossDeadlinesLosesAndRepeatsNoRow(t *testing.T) {
	v := newEnv(t, policy.VersionsAll)
	// A large file made directly: 5000 rows, no PutObject per object needed.
	var rows []inventory.Row
	var want []string
	for i := range 5000 {
		key := fmt.Sprintf("big/%05d key+%d.txt", i, i%7)
		rows = append(rows, inventory.Row{Bucket: "src", Key: key, VersionID: fmt.Sprintf("v%d", i), IsLatest: true, EncryptionStatus: "SSE-S3", BucketKeyStatus: "DISABLED", LegalHold: "OFF"})
		want = append(want, key+"@"+fmt.Sprintf("v%d", i))
	}
	rep, err := inventory.ReportWriter{Format: inventory.FormatCSV, SourceBucket: "src", DestinationBucket: "inv", ConfigID: "c", Created: time.Now()}.Write(rows)
	if err != nil {
		t.Fatal(err)
	}
	v.Put(t, &s3.PutObjectInput{Bucket: aws.String("inv"), Key: aws.String(rep.FileKeysUsed[0])}, string(rep.DataFiles[rep.FileKeysUsed[0]]))
	m, err := inventory.ParseManifest(rep.Manifest, rep.Checksum)
	if err != nil {
		t.Fatal(err)
	}
	clock := &steppingClock{now: time.Unix(1_800_000_000, 0)}
	v.planner.Now = clock.Now
	v.planner.Config.DeadlineMargin = 2 * time.Second
	v.planner.Config.BlockRows = 500 // a checkpoint waits for a block's end
	job := planner.Job{Type: planner.TypeFile, JobID: jobs.ID(jobs.KindInventory, "split"), File: &planner.FileTask{Bucket: "inv", Key: m.Files[0].Key, MD5: m.Files[0].MD5Checksum,
		Format: m.FileFormat, Columns: mustColumns(t, m), SourceBucket: "src"}}
	invocations := runContinuations(t, v, clock, job, 6*time.Second)
	got := drainObjects(t, v, messages.SourceInventory)
	sort.Strings(got)
	sort.Strings(want)
	if invocations < 3 {
		t.Errorf("%d invocations; the deadline should have split the file", invocations)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("enqueued %d objects over %d invocations, want exactly the %d rows once each", len(got), invocations, len(want))
	}
}

func TestListingJobAcrossPagesAndDeadlines(t *testing.T) {
	v := newEnv(t, policy.VersionsAll)
	var want, wantVersions []string
	for i := range 2100 {
		key := fmt.Sprintf("list/%04d", i)
		out := v.Put(t, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(key)}, "x")
		want = append(want, key+"@")
		wantVersions = append(wantVersions, key+"@"+aws.ToString(out.VersionId))
	}
	v.Put(t, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("tmp/skip-me")}, "x")
	clock := &steppingClock{now: time.Unix(1_800_000_000, 0)}
	v.planner.Now = clock.Now
	v.planner.Config.DeadlineMargin = time.Second
	for _, versions := range []bool{false, true} {
		invocations := runContinuations(t, v, clock, planner.Job{Type: planner.TypeListing, Bucket: "src", Versions: versions}, 3*time.Second)
		got := drainObjects(t, v, messages.SourceListing)
		sort.Strings(got)
		expect := want
		if versions {
			expect = wantVersions
			sort.Strings(expect)
		}
		if invocations < 2 || strings.Join(got, "\n") != strings.Join(expect, "\n") {
			t.Errorf("versions=%v: %d invocations enqueued %d objects, want %d once each", versions, invocations, len(got), len(expect))
		}
	}
}

// Keys may hold characters XML 1.0 forbids; S3 lists them as character
// references that XML parsers refuse unless the request asks for
// encoding-type=url (API reference, ListObjectsV2: EncodingType). Every
// key must come through exactly, in both listings.
func TestListingJobTrickyKeys(t *testing.T) {
	v := newEnv(t, policy.VersionsAll)
	keys := []string{"ctl\x01char.txt", "a+b c%2F.txt", "tab\tand\x1fus", "plain", "ünï/cödé"}
	var want, wantVersions []string
	for _, key := range keys {
		out := v.Put(t, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(key)}, "x")
		want = append(want, key+"@")
		wantVersions = append(wantVersions, key+"@"+aws.ToString(out.VersionId))
	}
	sort.Strings(want)
	sort.Strings(wantVersions)
	clock := &steppingClock{now: time.Unix(1_800_000_000, 0)}
	v.planner.Now = clock.Now
	for _, versions := range []bool{false, true} {
		runContinuations(t, v, clock, planner.Job{Type: planner.TypeListing, Bucket: "src", Versions: versions}, time.Second)
		got := drainObjects(t, v, messages.SourceListing)
		sort.Strings(got)
		expect := want
		if versions {
			expect = wantVersions
		}
		if strings.Join(got, "\n") != strings.Join(expect, "\n") {
			t.Errorf("versions=%v: enqueued %q, want %q", versions, got, expect)
		}
	}
}

func TestRejectedJobsGoToTheControlDLQ(t *testing.T) {
	v := newEnv(t, policy.VersionsCurrent)
	resp, err := v.planner.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "bad", Body: `{"type":"teleport"}`},
		{MessageId: "unmanaged", Body: `{"type":"listing","bucket":"someone-elses"}`},
		{MessageId: "missing-manifest", Body: `{"type":"inventory","manifest":"s3://inv/none/manifest.json"}`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// A manifest that does not exist stays missing (S3 reads are strongly
	// consistent): no retry mends it (failure_test.go).
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("batch item failures %+v; want none", resp.BatchItemFailures)
	}
	dead := receiveAll(t, v, v.controlDLQ)
	if len(dead) != 3 {
		t.Errorf("control DLQ holds %d messages, want the 2 rejected jobs and the missing manifest", len(dead))
	}
	for _, d := range dead {
		if d.attr(planner.AttrReason) == "" || d.attr(planner.AttrSource) == "" {
			t.Errorf("a control dead letter without its reason or source: %v", d.attrs)
		}
	}
}

// A listing split into ranges listed apart enqueues exactly what one
// listing does: every key once, whichever range its prefix, a key named
// like a prefix, top-level keys, '+', unicode and keys that sort between
// prefixes included; every version, with delete markers counted.
func TestListingSplitIntoRangesListsEveryKeyOnce(t *testing.T) {
	v := newEnv(t, policy.VersionsAll)
	var keys []string
	// Seven top-level prefixes: a/, b+c/, b/, d/, e/, ü/ and zz/.
	for _, p := range []string{"a/", "b+c/", "b/", "b.txt", "d/x/", "e/", "ü/", "zz/", "top", "e"} {
		for i := range 40 {
			keys = append(keys, fmt.Sprintf("%s%03d", p, i))
		}
	}
	keys = append(keys, "a/", "e/", "a.", "a0", "")
	var want, wantVersions []string
	for _, key := range keys {
		if key == "" {
			continue
		}
		out := v.Put(t, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(key)}, "x")
		want = append(want, key+"@")
		wantVersions = append(wantVersions, key+"@"+aws.ToString(out.VersionId))
	}
	// A second version and a delete marker in one range.
	out := v.Put(t, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("e/001")}, "y")
	wantVersions = append(wantVersions, "e/001@"+aws.ToString(out.VersionId))
	if _, err := v.S3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("src"), Key: aws.String("zz/000")}); err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(slices.Clone(want), func(k string) bool { return k == "zz/000@" })
	sort.Strings(want)
	sort.Strings(wantVersions)
	clock := &steppingClock{now: time.Unix(1_800_000_000, 0)}
	v.planner.Now = clock.Now
	for _, ranges := range []int{1, 3, 8} {
		for _, versions := range []bool{false, true} {
			v.planner.Config.ListingRanges = ranges
			var rows, markers int64
			v.planner.OnStats = func(s planner.Stats) { rows += s.Rows; markers += s.Skipped["delete-marker"] }
			invocations := runContinuations(t, v, clock, planner.Job{Type: planner.TypeListing, Bucket: "src", Versions: versions}, time.Minute)
			got := drainObjects(t, v, messages.SourceListing)
			sort.Strings(got)
			expect := want
			if versions {
				expect = wantVersions
			}
			if strings.Join(got, "\n") != strings.Join(expect, "\n") {
				t.Errorf("ranges=%d versions=%v: enqueued %d objects, want %d once each", ranges, versions, len(got), len(expect))
			}
			if wantInv := min(ranges, 7) + 1; ranges > 1 && invocations != wantInv {
				t.Errorf("ranges=%d: %d planner runs, want the split and one per range (%d)", ranges, invocations, wantInv)
			}
			if versions && markers != 1 {
				t.Errorf("ranges=%d: %d delete markers counted, want 1", ranges, markers)
			}
		}
	}
}
