package planner_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// throttledList answers every listing with S3's SlowDown.
type throttledList struct{ planner.ListAPI }

func (throttledList) ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return nil, &smithy.OperationError{ServiceID: "S3", OperationName: "ListObjectsV2", Err: &smithy.GenericAPIError{Code: "SlowDown", Message: "Please reduce your request rate."}}
}

// TestJobsThatCannotProceedFail: each way a backfill cannot proceed fails
// its job at once, with a reason that names the problem, and moves its
// control message to the DLQ with that reason; what a retry can mend
// (throttling) is retried, and dead-lettered with its reason only on the
// queue's last delivery, leaving the job open for a redrive.
//
// S3 is strongly consistent for reads after writes and deletes
// (AmazonS3/latest/userguide/Welcome.md, data consistency model), and a
// manifest.json is written with its manifest.checksum
// (userguide/storage-inventory-location.md): a manifest, data file or
// bucket that is missing now, or whose bytes do not match the checksum
// that pins them, stays so for every later delivery.
func TestJobsThatCannotProceedFail(t *testing.T) {
	cases := []struct {
		name string
		// job builds the control message's body on v.
		job      func(t *testing.T, v *env) string
		received int
		throttle bool
		// failed: the job ends failed; dead: the message is in the DLQ;
		// retried: it is left to SQS to deliver again.
		failed, dead, retried bool
		reason                string
	}{
		{name: "bucket does not exist", job: listing("gone", false), failed: true, dead: true, reason: "NoSuchBucket"},
		{name: "bucket not in the policy", job: listing("someone-elses", false), failed: true, dead: true, reason: "policy does not manage"},
		{name: "versions the policy forbids", job: listing("src", true), failed: true, dead: true, reason: "versions: current"},
		{name: "manifest does not exist", job: inventoryJob(func(t *testing.T, v *env, key string) string { return "s3://inv/none/manifest.json" }),
			failed: true, dead: true, reason: "NoSuchKey"},
		{name: "manifest no longer verifies", job: inventoryJob(func(t *testing.T, v *env, key string) string {
			v.Put(t, &s3.PutObjectInput{Bucket: aws.String("inv"), Key: aws.String(strings.TrimSuffix(key, "json") + "checksum")}, "00000000000000000000000000000000")
			return "s3://inv/" + key
		}), failed: true, dead: true, reason: "checksum mismatch"},
		{name: "data file does not match its MD5", job: fileJob(func(good []byte) []byte { return good[:len(good)/2] }), failed: true, dead: true, reason: "checksum mismatch"},
		{name: "data file is corrupt", job: fileJob(nil), failed: true, dead: true, reason: "not gzip"},
		{name: "data file does not exist", job: fileJob(func([]byte) []byte { return nil }), failed: true, dead: true, reason: "NoSuchKey"},
		{name: "inventory of a bucket not in the policy", job: inventoryJob(func(t *testing.T, v *env, key string) string {
			v.planner.Policy = mustPolicy(t, `{"buckets":{"gone":{"kmsKeyArn":%q}}}`, v.target)
			return "s3://inv/" + key
		}), failed: true, dead: true, reason: "inventory of bucket src, which the policy does not manage"},
		{name: "throttled", job: listing("src", false), throttle: true, received: 1, retried: true},
		{name: "throttled on the last delivery", job: listing("src", false), throttle: true, received: planner.DefaultMaxReceives,
			dead: true, reason: "gave up after 5 deliveries: listing src: split: S3 ListObjectsV2: SlowDown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, policy.VersionsCurrent)
			ctx := context.Background()
			if err := demo.CreateJobsTable(ctx, v.Cfg, "jobs"); err != nil {
				t.Fatal(err)
			}
			store := &jobs.Store{API: dynamodb.NewFromConfig(v.Cfg), Table: "jobs"}
			var heard []string
			v.planner.Policy, v.planner.Jobs, v.planner.Failer = mustPolicy(t, `{"buckets":{"src":{"kmsKeyArn":%[1]q},"gone":{"kmsKeyArn":%[1]q}}}`, v.target), store, store
			v.planner.OnFailed = func(id, reason string) { heard = append(heard, id+": "+reason) }
			body := tc.job(t, v)
			if tc.throttle {
				v.planner.List = throttledList{v.S3}
			}
			received := max(tc.received, 1)
			resp, err := v.planner.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: body,
				Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(received)}}}})
			if err != nil {
				t.Fatal(err)
			}
			if retried := len(resp.BatchItemFailures) == 1; retried != tc.retried {
				t.Errorf("left to SQS to retry: %v, want %v", retried, tc.retried)
			}
			dead := receiveAll(t, v, v.controlDLQ)
			if (len(dead) == 1) != tc.dead || len(dead) > 1 {
				t.Fatalf("%d control dead letters, want dead-lettered %v", len(dead), tc.dead)
			}
			if tc.dead {
				if got := dead[0].attr(planner.AttrReason); !strings.Contains(got, tc.reason) {
					t.Errorf("dead letter's reason %q, want it to name %q", got, tc.reason)
				}
			}
			jobID := decodeJobID(t, body)
			j, err := store.Get(ctx, jobID)
			switch {
			case tc.failed && err != nil:
				t.Fatalf("jobs show %s: %v", jobID, err)
			case tc.failed && (j.State != jobs.StateFailed || !strings.Contains(j.TerminalReason, tc.reason)):
				t.Errorf("job %s: %s (%q), want failed naming %q", jobID, j.State, j.TerminalReason, tc.reason)
			case tc.failed && (len(heard) != 1 || !strings.HasPrefix(heard[0], jobID+": ")):
				t.Errorf("OnFailed heard %q, want job %s", heard, jobID)
			case !tc.failed && err == nil && j.State == jobs.StateFailed:
				t.Errorf("a job that a retry can mend failed: %s", j.TerminalReason)
			case !tc.failed && len(heard) > 0:
				t.Errorf("OnFailed heard %q for a retryable error", heard)
			}
		})
	}
}

func mustPolicy(t *testing.T, doc, key string) *policy.Policy {
	t.Helper()
	pol, err := policy.Parse([]byte(fmt.Sprintf(doc, key)))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// listing is a listing job of bucket.
func listing(bucket string, versions bool) func(*testing.T, *env) string {
	return func(t *testing.T, v *env) string {
		body, err := planner.Job{Type: planner.TypeListing, Bucket: bucket, Versions: versions, JobID: jobs.ListingID(bucket, "", versions, testTime)}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
}

// inventoryJob publishes an inventory of src and sends the manifest that
// url makes of it (after spoiling what it likes).
func inventoryJob(url func(t *testing.T, v *env, manifestKey string) string) func(*testing.T, *env) string {
	return func(t *testing.T, v *env) string {
		v.seed(t)
		key, err := v.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "src", DestinationBucket: "inv", Format: inventory.FormatCSV})
		if err != nil {
			t.Fatal(err)
		}
		manifest := url(t, v, key)
		body, err := planner.Job{Type: planner.TypeInventory, Manifest: manifest, JobID: jobs.InventoryID(manifest)}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
}

// fileJob is the file task of a published inventory's first data file,
// rewritten by spoil (deleted when spoil returns nil); nil spoil writes
// garbage and a manifest entry whose MD5 matches it (a corrupt file the
// manifest vouches for).
func fileJob(spoil func(good []byte) []byte) func(*testing.T, *env) string {
	return func(t *testing.T, v *env) string {
		v.seed(t)
		ctx := context.Background()
		key, err := v.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "src", DestinationBucket: "inv", Format: inventory.FormatCSV})
		if err != nil {
			t.Fatal(err)
		}
		manifest := "s3://inv/" + key
		m, _, err := planner.ReadManifest(ctx, v.S3, manifest)
		if err != nil {
			t.Fatal(err)
		}
		f := m.Files[0]
		out, err := v.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("inv"), Key: aws.String(f.Key)})
		if err != nil {
			t.Fatal(err)
		}
		var good bytes.Buffer
		good.ReadFrom(out.Body)
		bad := []byte("this is not an inventory file")
		if spoil != nil {
			bad = spoil(good.Bytes())
		} else {
			f.MD5Checksum = md5Hex(bad)
		}
		if bad == nil {
			if _, err := v.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("inv"), Key: aws.String(f.Key)}); err != nil {
				t.Fatal(err)
			}
		} else {
			v.Put(t, &s3.PutObjectInput{Bucket: aws.String("inv"), Key: aws.String(f.Key)}, string(bad))
		}
		jobID := jobs.InventoryID(manifest)
		if _, err := (&jobs.Store{API: dynamodb.NewFromConfig(v.Cfg), Table: "jobs"}).Begin(ctx, jobID, jobs.KindInventory, manifest, 1, ""); err != nil {
			t.Fatal(err)
		}
		body, err := planner.Job{Type: planner.TypeFile, JobID: jobID, File: &planner.FileTask{Bucket: "inv", Key: f.Key, MD5: f.MD5Checksum,
			Format: m.FileFormat, Columns: mustColumns(t, m), SourceBucket: "src"}}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
}

// testTime starts the test's listing jobs.
var testTime = time.Unix(1_800_000_000, 0)

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

type deadLetter struct{ attrs map[string]string }

func (d deadLetter) attr(name string) string { return d.attrs[name] }

// receiveAll reads (and hides for a minute) every message of a queue.
func receiveAll(t *testing.T, v *env, url string) []deadLetter {
	t.Helper()
	var out []deadLetter
	for range 10 {
		got, err := v.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}, VisibilityTimeout: 60})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) == 0 {
			return out
		}
		for _, m := range got.Messages {
			d := deadLetter{attrs: map[string]string{}}
			for k, a := range m.MessageAttributes {
				d.attrs[k] = aws.ToString(a.StringValue)
			}
			out = append(out, d)
		}
	}
	return out
}

func decodeJobID(t *testing.T, body string) string {
	t.Helper()
	var j struct {
		JobID string `json:"job"`
	}
	if err := json.Unmarshal([]byte(body), &j); err != nil || j.JobID == "" {
		t.Fatalf("job id of %s: %v", body, err)
	}
	return j.JobID
}

// spoiltReads serves a key's first bad reads truncated, then as stored.
type spoiltReads struct {
	inventory.GetObjectAPI
	key         string
	bad, served int
}

func (s *spoiltReads) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := s.GetObjectAPI.GetObject(ctx, in, optFns...)
	if err != nil || aws.ToString(in.Key) != s.key {
		return out, err
	}
	s.served++
	if s.served > s.bad {
		return out, nil
	}
	var b bytes.Buffer
	b.ReadFrom(out.Body)
	out.Body = io.NopCloser(bytes.NewReader(b.Bytes()[:b.Len()/2]))
	return out, nil
}

// A data file read wrong (a download spoilt on the way, a file being put
// back) is read again before its job fails; one that stays wrong fails.
func TestChecksumMismatchIsReadAgain(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  int
		ok   bool
	}{{"read wrong once", 1, true}, {"always wrong", 1 << 30, false}} {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, policy.VersionsCurrent)
			v.seed(t)
			key, err := v.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "src", DestinationBucket: "inv", Format: inventory.FormatCSV})
			if err != nil {
				t.Fatal(err)
			}
			m, _, err := planner.ReadManifest(context.Background(), v.S3, "s3://inv/"+key)
			if err != nil {
				t.Fatal(err)
			}
			reads := &spoiltReads{GetObjectAPI: v.S3, key: m.Files[0].Key, bad: tc.bad}
			v.planner.Get = reads
			v.planner.Config.ChecksumRereadFor = 400 * time.Millisecond
			err = v.planner.Run(context.Background(), planner.Job{Type: planner.TypeFile, File: &planner.FileTask{Bucket: "inv", Key: m.Files[0].Key,
				MD5: m.Files[0].MD5Checksum, Format: m.FileFormat, Columns: mustColumns(t, m), SourceBucket: "src"}})
			_, permanent := planner.Permanent(err)
			switch {
			case tc.ok && (err != nil || countMessages(t, v, v.work) == 0):
				t.Fatalf("a file read wrong once: %v, %d tasks enqueued", err, countMessages(t, v, v.work))
			case !tc.ok && (!errors.Is(err, inventory.ErrChecksum) || !permanent):
				t.Fatalf("a file always wrong: %v, want a permanent checksum error", err)
			case reads.served < 2:
				t.Fatalf("read %d times, want it read again", reads.served)
			}
		})
	}
}

// An inventory report of a bucket the policy does not manage, delivered
// by S3 Inventory's own event (the message names no job), is nothing to
// do: inventories of other buckets share the inventory bucket.
func TestUnnamedInventoryOfAnUnmanagedBucketIsIgnored(t *testing.T) {
	v := newEnv(t, policy.VersionsCurrent)
	v.seed(t)
	key, err := v.Emu.PublishInventory(emulator.InventoryOptions{SourceBucket: "src", DestinationBucket: "inv", Format: inventory.FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	v.planner.Policy = mustPolicy(t, `{"buckets":{"gone":{"kmsKeyArn":%q}}}`, v.target)
	resp, err := v.planner.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1",
		Body: `{"type":"inventory","manifest":"s3://inv/` + key + `"}`}}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v %v", resp, err)
	}
	if dead := receiveAll(t, v, v.controlDLQ); len(dead) != 0 {
		t.Errorf("%d dead letters for an inventory of a bucket s3rekey does not manage", len(dead))
	}
}
