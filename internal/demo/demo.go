// Package demo runs the whole s3rekey pipeline on the embedded emulator:
// it seeds buckets with every encryption state, publishes a real S3
// Inventory report, runs the real planner and encrypt handlers through the
// local run loop while new objects are uploaded, then verifies every object
// version and prices the run.
package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/permissions"
	"github.com/s3rekey/s3rekey/internal/pipeline"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// Bucket and queue names of the demo.
const (
	DataBucket   = "demo-data"
	LockedBucket = "demo-locked"
	// LegacyBucket holds unencrypted objects from before 2023 and is opted
	// in to copy them in place.
	LegacyBucket    = "demo-legacy"
	InventoryBucket = "demo-inventory"
	// NewBucket is created while the pipeline runs: the policy's rule
	// selects it, the enroll function enrolls it from its CreateBucket
	// event, and its first upload is enforced.
	NewBucket    = "demo-new"
	WorkQueue    = "s3rekey-work"
	ControlQueue = "s3rekey-control"
	// UploadsQueue receives the upload events, apart from the backfill's
	// work queue.
	UploadsQueue = "s3rekey-uploads"
	// EnrollQueue receives the bucket events (EventBridge invokes the
	// enroll function directly in AWS).
	EnrollQueue = "s3rekey-bucket-events"
)

// Options configure a demo run.
type Options struct {
	Objects int    // objects to seed (default 3000)
	Format  string // inventory format: CSV, Parquet or ORC (default CSV)
	Uploads int    // new uploads during the run (default Objects/20)
	// Progress receives a line at each stage and while the pipeline runs;
	// Bar draws an in-place bar there instead of lines (for a terminal).
	Progress io.Writer
	Bar      bool
	Logger   *slog.Logger
}

// Result is what the demo did and found.
type Result struct {
	Seeded, Versions, Uploads int
	Outcomes                  pipeline.Snapshot
	Expected                  int64 // outcomes the accounting must reach
	// NewBucketBackfill is how many objects the new bucket's backfill
	// counted (again: its first upload is counted on arrival too).
	NewBucketBackfill int64
	Verified          map[string]int64 // final state of every version, by label
	Failures          []string         // verification failures
	Counts            []emulator.Count // requests the pipeline made
	Usage             cost.Usage
	Cost              cost.Breakdown
	Elapsed           time.Duration
	// Jobs are the job records and reports, checked against the objects.
	Jobs *JobCheck
	// Retirement is the verification from the metadata tables and the
	// old key's retirement.
	Retirement *Retirement
}

type demo struct {
	opts       Options
	emu        *emulator.Emulator
	s3         *s3.Client
	oldKey     string
	target     string
	policy     *policy.Policy
	policyJSON []byte
	queues     pipeline.Queues
	// enrollQueue is where the bucket events arrive for the enroll function.
	enrollQueue string
	// midRunBucket: runPipeline creates NewBucket halfway through the
	// uploads (the demo does; the fault matrix keeps its own world).
	midRunBucket bool
	before       map[string]fingerprint // bucket/key@version → stored object
	customer     []byte
	progressW    io.Writer
	copies       atomic.Int64 // objects seeded to be copied in place
	jobs         jobs.Config  // where job records and reports go
	macKey       string       // signs evidence (retire.go)
}

// fingerprint is what must not change when an object is rekeyed.
type fingerprint struct {
	ETag, VersionID string
	LastModified    time.Time
	Ciphertext      [32]byte
}

// Prepared is a seeded world on an emulator: what the demo starts from,
// and what "s3rekey emulator --seed" leaves for a person to try commands on.
type Prepared struct {
	Policy     *policy.Policy
	PolicyJSON []byte
	Queues     pipeline.Queues
	Manifests  []string // s3:// URLs of the published inventories
	Seeded     int
	Versions   int
	Rows       int64 // inventory rows
	// Copies are the objects the run will copy in place; each copy's own
	// Object Created event ends as one more (compliant) outcome.
	Copies int64
	// Jobs is where the run's job records and reports go.
	Jobs jobs.Config
	d    *demo
}

// Prepare creates keys, buckets and queues on emu, seeds the mix, turns on
// EventBridge delivery (rules to the uploads and control queues) and
// publishes an inventory of each data bucket.
func Prepare(ctx context.Context, emu *emulator.Emulator, opts Options) (*Prepared, error) {
	opts = opts.withDefaults()
	for _, r := range []emulator.EventBridgeRule{
		{Bucket: DataBucket, Queue: UploadsQueue}, {Bucket: LockedBucket, Queue: UploadsQueue}, {Bucket: LegacyBucket, Queue: UploadsQueue},
		{Bucket: InventoryBucket, KeySuffix: "manifest.checksum", Queue: ControlQueue},
		// The stack's upload rule matches every bucket but s3rekey's own;
		// the emulator's rules name buckets, so the new bucket has its own.
		{Bucket: NewBucket, Queue: UploadsQueue},
		{Management: true, Queue: EnrollQueue},
	} {
		emu.AddEventBridgeRule(r)
	}
	d := &demo{opts: opts, emu: emu, s3: s3.NewFromConfig(clientConfig(emu.AWSConfig()), emulator.PathStyle), customer: bytes.Repeat([]byte{42}, 32),
		before: map[string]fingerprint{}, progressW: opts.Progress}
	if err := d.setup(ctx); err != nil {
		return nil, err
	}
	if err := d.setupMetadata(ctx); err != nil {
		return nil, err
	}
	p := &Prepared{d: d, Policy: d.policy, PolicyJSON: d.policyJSON, Queues: d.queues, Jobs: d.jobs}
	var err error
	if p.Seeded, p.Versions, err = d.seed(ctx); err != nil {
		return nil, err
	}
	p.Copies = d.copies.Load()
	d.say("seeded %d objects (%d versions) in s3://%s, s3://%s and s3://%s", p.Seeded, p.Versions, DataBucket, LockedBucket, LegacyBucket)
	d.snapshot()
	if p.Rows, p.Manifests, err = d.publishInventories(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (o Options) withDefaults() Options {
	if o.Objects <= 0 {
		o.Objects = 3000
	}
	if o.Format == "" {
		o.Format = "CSV"
	}
	if o.Uploads <= 0 {
		o.Uploads = max(o.Objects/20, 1)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Run runs the demo to completion on its own emulator.
func Run(ctx context.Context, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	began := time.Now()
	emu, err := emulator.Start(ctx, emulator.Options{})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	fmt.Fprintf(opts.Progress, "emulator at %s\n", emu.URL())
	prep, err := Prepare(ctx, emu, opts)
	if err != nil {
		return nil, err
	}
	d := prep.d
	// The new bucket's first upload is one more object.
	res := &Result{Seeded: prep.Seeded, Versions: prep.Versions, Uploads: opts.Uploads, Expected: prep.Rows + int64(opts.Uploads) + prep.Copies + 1}

	emu.ResetCounts()
	popts, err := d.pipelineOptions(pipeline.Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	p := pipeline.New(clientConfig(emu.AWSConfig()), d.policy, d.queues, popts)
	d.midRunBucket = true
	if err := d.runPipeline(ctx, p, res.Expected); err != nil {
		return nil, err
	}
	res.Outcomes = p.Tally.Snapshot()
	res.Counts = emu.Counts()
	res.Usage = d.usage(res)
	res.Cost = cost.Price(res.Usage)

	d.say("verifying every object version with HeadObject and the stored bytes")
	v, err := d.verify(ctx)
	if err != nil {
		return nil, err
	}
	res.Verified, res.Failures = v.states, v.rewritten
	if st, ok := emu.Inspect(NewBucket, NewBucketKey, ""); !ok || st.KMSKeyARN != d.target || !st.BucketKey {
		res.Failures = append(res.Failures, fmt.Sprintf("s3://%s/%s, the first upload of the bucket created mid-run, is not on the target key", NewBucket, NewBucketKey))
	}
	for _, id := range sortedIDs(v.notUpdated) {
		res.Failures = append(res.Failures, id+" "+v.notUpdated[id])
	}
	d.say("checking the job records and their reports against the objects")
	if res.Jobs, err = d.checkJobs(ctx); err != nil {
		return nil, err
	}
	// The new bucket's enrollment started its backfill, which counts the
	// objects it lists once more (its first upload, when the upload came
	// before the listing), in a job of its own.
	res.NewBucketBackfill = newBucketBackfilled(res.Jobs.Jobs)
	res.Expected += res.NewBucketBackfill
	if got := res.Outcomes.Total(); got != res.Expected {
		res.Failures = append(res.Failures, fmt.Sprintf("accounting: %d terminal outcomes for %d objects", got, res.Expected))
	}
	res.Failures = append(res.Failures, res.Jobs.Failures...)
	if res.Retirement, err = d.retireOldKey(ctx); err != nil {
		return nil, err
	}
	res.Failures = append(res.Failures, res.Retirement.Failures...)
	res.Elapsed = time.Since(began)
	return res, nil
}

// Access keys the functions sign with on the emulator. Each is bound to the
// statements internal/permissions gives its function, the ones the stack
// deploys, so the demo runs under exactly the deployed permissions.
const (
	EncryptAccessKey = "AKIAS3REKEYENCRYPT00"
	PlannerAccessKey = "AKIAS3REKEYPLANNER00"
	EnrollAccessKey  = "AKIAS3REKEYENROLL000"
)

// Roles are the configurations the functions run under.
type Roles struct{ Encrypt, Planner aws.Config }

// BindRoles binds each function's statements to its access key on emu and
// returns the functions' configurations.
func BindRoles(emu *emulator.Emulator, encrypt, planner []permissions.Statement) (Roles, error) {
	if err := emu.BindPolicy(EncryptAccessKey, permissions.PolicyDocument(encrypt)); err != nil {
		return Roles{}, err
	}
	if err := emu.BindPolicy(PlannerAccessKey, permissions.PolicyDocument(planner)); err != nil {
		return Roles{}, err
	}
	return Roles{Encrypt: clientConfig(emu.AWSConfigAs(EncryptAccessKey)), Planner: clientConfig(emu.AWSConfigAs(PlannerAccessKey))}, nil
}

// EmulatorResources are the resources of a deployment on emu, as the
// stack's would be: its buckets, queues and target keys.
func EmulatorResources(emu *emulator.Emulator, pol *policy.Policy, inventoryBucket string, q pipeline.Queues) permissions.Resources {
	arn := func(queueURL string) string {
		return "arn:aws:sqs:" + emu.Region() + ":" + emu.Account() + ":" + queueURL[strings.LastIndex(queueURL, "/")+1:]
	}
	res := permissions.Resources{Partition: "aws", Region: emu.Region(), Account: emu.Account(),
		InventoryBucketARN: "arn:aws:s3:::" + inventoryBucket,
		WorkQueueARN:       arn(q.Work), WorkDLQARN: arn(q.WorkDLQ), ControlQueueARN: arn(q.Control), ControlDLQARN: arn(q.ControlDLQ)}
	if q.Uploads != "" {
		res.UploadsQueueARN, res.UploadsDLQARN = arn(q.Uploads), arn(q.UploadsDLQ)
	}
	res.FromPolicy(pol)
	return res
}

// pipelineOptions runs the functions under their deployed permissions.
func (d *demo) pipelineOptions(opts pipeline.Options) (pipeline.Options, error) {
	res := JobsResources(d.emu, EmulatorResources(d.emu, d.policy, InventoryBucket, d.queues), d.jobs)
	roles, err := BindRoles(d.emu, permissions.Encrypt(res), permissions.Planner(res))
	if err != nil {
		return opts, err
	}
	opts.EncryptAWS, opts.PlannerAWS = &roles.Encrypt, &roles.Planner
	opts.Jobs = d.jobs
	// The enroll function runs under its deployed statements too.
	if err := d.emu.BindPolicy(EnrollAccessKey, permissions.PolicyDocument(permissions.Enroll(res))); err != nil {
		return opts, err
	}
	enrollAWS := clientConfig(d.emu.AWSConfigAs(EnrollAccessKey))
	// The emulator turns a bucket's notifications on at once, so the new
	// bucket's backfill need not wait the deployed minute for them.
	opts.Enroll = pipeline.EnrollOptions{Queue: d.enrollQueue, InventoryBucketARN: "arn:aws:s3:::" + InventoryBucket, AccountID: d.emu.Account(),
		AWS: &enrollAWS, BackfillDelaySeconds: 1}
	return opts, nil
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.progressW, format+"\n", args...)
}

func (d *demo) setup(ctx context.Context) error {
	cfg := clientConfig(d.emu.AWSConfig())
	kmsc := kms.NewFromConfig(cfg)
	old, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("the key objects were written under")})
	if err != nil {
		return err
	}
	target, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("the key the policy demands")})
	if err != nil {
		return err
	}
	d.oldKey, d.target = aws.ToString(old.KeyMetadata.Arn), aws.ToString(target.KeyMetadata.Arn)
	if _, err := kmsc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/s3rekey-target"), TargetKeyId: target.KeyMetadata.KeyId}); err != nil {
		return err
	}
	for _, b := range []struct {
		name string
		lock bool
	}{{DataBucket, false}, {LockedBucket, true}, {InventoryBucket, false}, {LegacyBucket, false}} {
		if _, err := d.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.name), ObjectLockEnabledForBucket: aws.Bool(b.lock)}); err != nil {
			return err
		}
	}
	for _, b := range []string{DataBucket, LegacyBucket} {
		if _, err := d.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(b),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			return err
		}
	}
	sqsc := sqs.NewFromConfig(cfg)
	if d.queues, err = createDeploymentQueues(ctx, sqsc, d.emu.Region(), d.emu.Account(), true); err != nil {
		return err
	}
	out, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(EnrollQueue)})
	if err != nil {
		return err
	}
	d.enrollQueue = aws.ToString(out.QueueUrl)
	// One rule governs every demo bucket, the one created mid-run too;
	// s3rekey's own buckets are excluded; two buckets have overrides.
	d.policyJSON = []byte(fmt.Sprintf(`{
  "dryRun": false,
  "exclude": [{"names": [%q, %q]}],
  "rules": [{"name": "demo", "select": {"names": ["demo-*"]}, "settings": {"kmsKeyArn": %q, "bucketKeyEnabled": true}}],
  "overrides": {
    %q: {"versions": "all", "excludePrefixes": ["scratch/"]},
    %q: {"unsupportedSources": {"notEncrypted": "copy"}}
  }
}
`, InventoryBucket, ReportBucket, d.target, DataBucket, LegacyBucket))
	if d.policy, err = policy.Parse(d.policyJSON); err != nil {
		return err
	}
	return d.setupJobs(ctx)
}

// runPipeline runs planner and encrypt until the queues are idle, while a
// producer uploads new SSE-S3 objects (the enforcement path).
func (d *demo) runPipeline(ctx context.Context, p *pipeline.Pipeline, expected int64) error {
	var uploading atomic.Bool
	uploading.Store(true)
	p.Runner.Busy = uploading.Load
	uploadErr := make(chan error, 1)
	go func() {
		defer uploading.Store(false)
		for i := range d.opts.Uploads {
			if d.midRunBucket && i == d.opts.Uploads/2 {
				if err := d.newBucketMidRun(ctx); err != nil {
					uploadErr <- err
					return
				}
			}
			key := fmt.Sprintf("incoming/%06d new upload.dat", i)
			if _, err := d.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(DataBucket), Key: aws.String(key),
				Body: bytes.NewReader([]byte("uploaded while the backfill runs"))}); err != nil {
				uploadErr <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		if d.midRunBucket && d.opts.Uploads == 0 {
			if err := d.newBucketMidRun(ctx); err != nil {
				uploadErr <- err
				return
			}
		}
		uploadErr <- nil
	}()
	d.say("running planner and encrypt through the local run loop (uploading %d new objects meanwhile)", d.opts.Uploads)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.showProgress(p, expected, stop)
	}()
	err := p.Runner.RunUntilIdle(ctx, 500*time.Millisecond)
	close(stop)
	<-done
	if err != nil {
		return err
	}
	return <-uploadErr
}

func (d *demo) showProgress(p *pipeline.Pipeline, expected int64, stop <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastLine := time.Time{}
	for {
		select {
		case <-stop:
			if d.opts.Bar {
				fmt.Fprintf(d.progressW, "\r%s\n", bar(p.Tally.Snapshot().Total(), expected))
			}
			return
		case <-tick.C:
			n := p.Tally.Snapshot().Total()
			if d.opts.Bar {
				fmt.Fprintf(d.progressW, "\r%s", bar(n, expected))
			} else if time.Since(lastLine) >= 2*time.Second {
				fmt.Fprintf(d.progressW, "  %d/%d objects accounted for%s\n", n, expected, d.jobProgress())
				lastLine = time.Now()
			}
		}
	}
}

func bar(n, total int64) string {
	const width = 30
	filled := 0
	if total > 0 {
		filled = int(min(n, total) * width / total)
	}
	return fmt.Sprintf("  [%s%s] %d/%d objects", string(bytes.Repeat([]byte("#"), filled)), string(bytes.Repeat([]byte("."), width-filled)), n, total)
}

// usage turns the pipeline's counted requests and handler time into a
// cost.Usage. The local run loop's idle checks (GetQueueAttributes) are a
// local artifact and are left out.
func (d *demo) usage(res *Result) cost.Usage {
	return usageOf(res, d.emu.BilledSQSRequests(), d.emu.CapacityUnits())
}

// usageOf is usage from the emulator's billed SQS requests and DynamoDB
// capacity, read in the process that runs it.
func usageOf(res *Result, billedSQS int64, capacity emulator.Capacity) cost.Usage {
	u := cost.Usage{Objects: res.Expected, LambdaSeconds: res.Outcomes.HandlerTime.Seconds(), LambdaInvokes: res.Outcomes.Invocations, BatchOpsJobs: 3}
	for _, c := range res.Counts {
		switch {
		case c.Service == "s3" && c.Operation == "UpdateObjectEncryption":
			u.UOE += c.N
		case c.Service == "s3" && c.Operation == "PutObject" && c.Bucket == ReportBucket:
			u.ReportPuts += c.N
		case c.Service == "s3" && c.Operation == "PutObject":
			// the demo's own uploads, not the pipeline's
		case c.Service == "s3" && (c.Operation == "ListObjectsV2" || c.Operation == "ListObjectVersions"):
			u.S3Put += c.N
		case c.Service == "s3" && (c.Operation == "CopyObject" || c.Operation == "CreateMultipartUpload" || c.Operation == "UploadPartCopy" ||
			c.Operation == "CompleteMultipartUpload"):
			u.S3Put += c.N // copies in place are PUT-class
		case c.Service == "s3":
			u.S3Get += c.N
		case c.Service == "kms":
			u.KMS += c.N
		case c.Service == "sqs" && c.Operation == "GetQueueAttributes":
			u.SQS -= c.N
		}
	}
	u.SQS += billedSQS
	u.JobWriteUnits, u.JobReadUnits = capacity.Write, capacity.Read
	return u
}

// clientConfig gives an emulator configuration the product's HTTP client:
// pooled for hundreds of concurrent requests, and sending request bodies
// from memory (see awsconf.NewHTTPClient).
func clientConfig(cfg aws.Config) aws.Config {
	cfg.HTTPClient = awsconf.NewHTTPClient()
	return cfg
}
