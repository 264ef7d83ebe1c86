package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/awsconf"
	"github.com/s3rekey/s3rekey/internal/buckettags"
	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/enroll"
	"github.com/s3rekey/s3rekey/internal/functionconf"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/keyalias"
	"github.com/s3rekey/s3rekey/internal/localrun"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// Queues are the queue URLs of a deployment.
type Queues struct {
	Work, WorkDLQ, Control, ControlDLQ string
	// Uploads and UploadsDLQ are the uploads queue and its DLQ: empty for
	// a deployment whose uploads share the work queue.
	Uploads, UploadsDLQ string
	// ControlMaxReceives is the control queue's maxReceiveCount (0: the
	// stack's, planner.DefaultMaxReceives).
	ControlMaxReceives int
	// WorkMaxReceives is the work queue's (0: encrypt.DefaultMaxReceives).
	WorkMaxReceives int
}

// Options tune the local pipeline.
type Options struct {
	// Concurrency is the number of encrypt invocations at once on the work
	// queue (default 4).
	Concurrency int
	// UploadsConcurrency is the number of encrypt invocations at once on
	// the uploads queue (default 2), in an execution environment of their
	// own: as Lambda's second event source mapping, they poll and run
	// whatever the work queue holds.
	UploadsConcurrency int
	// Environments is how many execution environments the encrypt
	// invocations are spread over, each with its own handler — its own
	// window of objects in flight and its own share of the budgets — as
	// Lambda runs concurrent invocations (default 1: one handler for all,
	// the cheapest to run locally).
	Environments int
	// ObjectsInFlight is the encrypt handler's objects in flight (default 256).
	ObjectsInFlight int
	// HeadBeforeUpdate: see rekey.Rekeyer.HeadBeforeUpdate.
	HeadBeforeUpdate bool
	Logger           *slog.Logger
	// EncryptAWS and PlannerAWS are the configurations each function runs
	// under, its role's credentials; nil uses the pipeline's. Each
	// function's queue is polled with its own, as Lambda polls with the
	// function's role.
	EncryptAWS, PlannerAWS *aws.Config
	// MultipartCopyThreshold and CopyPartSize: see encrypt.Config.
	MultipartCopyThreshold, CopyPartSize int64
	// Jobs is where job records and reports go (off when its Table is
	// empty).
	Jobs jobs.Config
	// MessageBytes bounds the planner's object tasks (see
	// planner.Config.MessageBytes); smaller ones deepen the work queue.
	MessageBytes int
	// AliasTTL is how long a resolution of the policy's KMS aliases is used
	// (default keyalias.DefaultTTL).
	AliasTTL time.Duration
	// PausedRetryDelay, BreakerProbeInterval and BreakerRefresh tune the
	// circuit breaker (encrypt.Config.PausedRetryDelay, encrypt.Breaker's
	// ProbeInterval and Refresh); zero takes their defaults.
	PausedRetryDelay, BreakerProbeInterval, BreakerRefresh time.Duration
	// EncryptBatchSize overrides the stack's encrypt batch size
	// (functionconf.Encrypt.BatchSize), as encrypt.batchSize in cdk.json
	// does; over 10 it needs the batching window the default has.
	EncryptBatchSize int
	// UploadsBatchSize overrides the stack's uploads-queue batch size
	// (functionconf.Encrypt.UploadsBatchSize) when not 0.
	UploadsBatchSize int
	// Enroll, when its Queue is set, runs the enroll function on the
	// bucket events that queue receives (in AWS, EventBridge invokes the
	// function directly).
	Enroll EnrollOptions
}

// EnrollOptions configure the local enroll function.
type EnrollOptions struct {
	Queue              string // URL of the queue bucket events arrive on
	InventoryBucketARN string
	AccountID          string
	AWS                *aws.Config // the enroll role's; nil uses the pipeline's
	// BackfillDelaySeconds: see enroll.Enroller (0: its default).
	BackfillDelaySeconds int32
}

// Pipeline is a runnable local deployment.
type Pipeline struct {
	Runner  *localrun.Runner
	Planner *planner.Planner
	// Encrypt is the first environment's handler.
	Encrypt *encrypt.Handler
	Tally   *Tally
}

// New wires planner and encrypt to the queues with aws clients from cfg.
func New(cfg aws.Config, pol *policy.Policy, q Queues, opts Options) *Pipeline {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	t := newTally()
	p := &Pipeline{Tally: t}
	encryptAWS, plannerAWS := cfg, cfg
	if opts.EncryptAWS != nil {
		encryptAWS = *opts.EncryptAWS
	}
	if opts.PlannerAWS != nil {
		plannerAWS = *opts.PlannerAWS
	}
	// Keys named by alias are resolved, and every target's state read, with
	// the encrypt function's own KMS access, and again every few minutes, as
	// in Lambda. Tag selectors read bucket tags with each function's own S3
	// access.
	plannerPol := buckettags.Attach(pol, s3.NewFromConfig(plannerAWS, awsconf.S3Options(plannerAWS)))
	pol = buckettags.Attach(pol, s3.NewFromConfig(encryptAWS, awsconf.S3Options(encryptAWS)))
	resolver := &keyalias.Resolver{API: kms.NewFromConfig(encryptAWS), Configured: pol, TTL: opts.AliasTTL}
	// Resolved now, as a cold start does before its first receive, so that
	// no batch waits for it (a failure is met again by the first object).
	_, _ = resolver.Current(context.Background())
	var keys policy.Source = resolver
	p.Planner = planner.New(plannerAWS, plannerPol, planner.Config{WorkQueueURL: q.Work, ControlQueueURL: q.Control, ControlDLQURL: q.ControlDLQ, Jobs: opts.Jobs,
		MaxReceives:  q.ControlMaxReceives,
		MessageBytes: opts.MessageBytes}, opts.Logger)
	p.Planner.OnStats = t.addPlan
	p.Planner.OnFailed = t.addFailedJob
	p.Runner = &localrun.Runner{API: sqs.NewFromConfig(cfg), Region: cfg.Region, Logger: opts.Logger, Sources: []localrun.Source{
		{QueueURL: q.Control, Handler: t.timed(p.Planner.Handle), BatchSize: functionconf.Planner.BatchSize,
			BatchingWindow: functionconf.Planner.BatchingWindow(), Concurrency: 2, InvocationTimeout: functionconf.Planner.Timeout(),
			API: sqs.NewFromConfig(plannerAWS)},
	}}
	if eo := opts.Enroll; eo.Queue != "" {
		enrollAWS := cfg
		if eo.AWS != nil {
			enrollAWS = *eo.AWS
		}
		var enrollKeys policy.Source = policy.Static(pol)
		if len(pol.Aliases()) > 0 {
			enrollKeys = &keyalias.Resolver{API: kms.NewFromConfig(enrollAWS), Configured: pol, TTL: opts.AliasTTL}
		}
		e := &enroll.Enroller{S3: s3.NewFromConfig(enrollAWS, awsconf.S3Options(enrollAWS)), Keys: enrollKeys,
			InventoryBucketARN: eo.InventoryBucketARN, AccountID: eo.AccountID, Region: enrollAWS.Region, Logger: opts.Logger,
			// A new bucket's backfill goes to the control queue with the
			// enroll role's own SQS access (SendMessage there, as deployed).
			ControlQueueURL: q.Control, Backfills: &queue.Sender{API: sqs.NewFromConfig(enrollAWS)}, BackfillDelaySeconds: eo.BackfillDelaySeconds}
		// The queue stands in for EventBridge invoking the function, so it
		// is polled with the pipeline's client, not the enroll role's
		// (which may not receive from it, as deployed).
		p.Runner.Sources = append(p.Runner.Sources, localrun.Source{QueueURL: eo.Queue, Handler: e.HandleSQS, BatchSize: 10, Concurrency: 1,
			InvocationTimeout: 15 * time.Minute, API: sqs.NewFromConfig(cfg)})
	}
	batchSize := functionconf.Encrypt.BatchSize
	if opts.EncryptBatchSize > 0 {
		batchSize = opts.EncryptBatchSize
	}
	envs := min(max(opts.Environments, 1), opts.Concurrency)
	newEncrypt := func() *encrypt.Handler {
		h := encrypt.New(encryptAWS, keys, encrypt.Config{WorkQueueURL: q.Work, DeadLetterQueueURL: q.WorkDLQ, Concurrency: opts.ObjectsInFlight,
			UploadsQueueURL: q.Uploads, UploadsDLQURL: q.UploadsDLQ,
			MultipartCopyThreshold: opts.MultipartCopyThreshold, CopyPartSize: opts.CopyPartSize,
			HeadBeforeUpdate: opts.HeadBeforeUpdate, Jobs: opts.Jobs, PausedRetryDelay: opts.PausedRetryDelay, MaxReceives: q.WorkMaxReceives}, opts.Logger, nil)
		h.Breaker.ProbeInterval, h.Breaker.Refresh = opts.BreakerProbeInterval, opts.BreakerRefresh
		h.OnBatch = t.addBatch
		return h
	}
	for i := range envs {
		h := newEncrypt()
		if i == 0 {
			p.Encrypt = h
		}
		// The invocations are dealt out evenly, the first environments
		// taking what does not divide.
		n := opts.Concurrency / envs
		if i < opts.Concurrency%envs {
			n++
		}
		// Batches as the stack's event source mapping delivers them.
		p.Runner.Sources = append(p.Runner.Sources, localrun.Source{QueueURL: q.Work, Handler: t.timed(h.Handle),
			BatchSize: batchSize, BatchingWindow: functionconf.Encrypt.BatchingWindow(), Concurrency: n,
			InvocationTimeout: functionconf.Encrypt.Timeout(), API: sqs.NewFromConfig(encryptAWS)})
	}
	if q.Uploads != "" {
		n := opts.UploadsConcurrency
		if n <= 0 {
			n = 2
		}
		uploadsBatch := functionconf.Encrypt.UploadsBatchSize
		if opts.UploadsBatchSize > 0 {
			uploadsBatch = opts.UploadsBatchSize
		}
		// Batches as the stack's mapping on the uploads queue delivers them.
		p.Runner.Sources = append(p.Runner.Sources, localrun.Source{QueueURL: q.Uploads, Handler: t.timed(newEncrypt().Handle), BatchSize: uploadsBatch,
			BatchingWindow: functionconf.Encrypt.BatchingWindow(), Concurrency: n, InvocationTimeout: functionconf.Encrypt.Timeout(),
			API: sqs.NewFromConfig(encryptAWS)})
	}
	return p
}

// Tally adds up outcomes across batches. It is safe for concurrent use.
type Tally struct {
	mu sync.Mutex
	// outcomes are the objects that have their final outcome; retries
	// are attempts that will be tried again, by reason.
	outcomes    map[string]int64
	retries     map[string]int64
	failedJobs  map[string]string
	objects     int64
	heads       int64
	updates     int64
	rows        int64
	enqueued    int64
	handlerTime time.Duration
	invocations int64
}

func newTally() *Tally {
	return &Tally{outcomes: map[string]int64{}, retries: map[string]int64{}, failedJobs: map[string]string{}}
}

func (t *Tally) addBatch(s encrypt.Summary) {
	t.mu.Lock()
	defer t.mu.Unlock()
	failed := int64(0)
	for k, v := range s.Outcomes {
		switch {
		case strings.HasPrefix(k, string(rekey.Retry)+":"), k == string(rekey.Retry):
			// An attempt, not an object: it is tried again, or, out of
			// attempts, dead-lettered (counted below).
			t.retries[k] += int64(v)
		default:
			t.outcomes[k] += int64(v)
		}
		if strings.HasPrefix(k, string(rekey.Failed)) {
			failed += int64(v)
		}
	}
	// The dead letters that are not failed outcomes are retries that ran
	// out of attempts: their objects end failed.
	if exhausted := int64(s.DeadLetter) - failed; exhausted > 0 {
		t.outcomes[rekey.Outcome{Status: rekey.Failed, Reason: "attempts-exhausted"}.String()] += exhausted
	}
	t.objects += int64(s.Objects - s.Duplicates)
	t.heads += int64(s.Heads)
	t.updates += int64(s.Updates)
}

// addPlan counts what the planner filtered out: those rows end here, so
// they are outcomes too (a delete marker is "gone").
func (t *Tally) addPlan(s planner.Stats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows += s.Rows
	t.enqueued += s.Enqueued
	for reason, n := range s.Skipped {
		key := string(rekey.Skipped) + ": " + reason
		if reason == inventory.SkipDeleteMarker {
			key = string(rekey.Gone)
		}
		t.outcomes[key] += n
	}
}

// addFailedJob records a job the planner failed.
func (t *Tally) addFailedJob(jobID, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, seen := t.failedJobs[jobID]; !seen {
		t.failedJobs[jobID] = reason
	}
}

// JobFailed reports whether a job run here failed, and why.
func (t *Tally) JobFailed(jobID string) (reason string, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	reason, failed = t.failedJobs[jobID]
	return reason, failed
}

func (t *Tally) timed(h localrun.BatchHandler) localrun.BatchHandler {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		began := time.Now()
		resp, err := h(ctx, ev)
		t.mu.Lock()
		t.handlerTime += time.Since(began)
		t.invocations++
		t.mu.Unlock()
		return resp, err
	}
}

// Snapshot is a copy of the tally.
type Snapshot struct {
	Outcomes map[string]int64 `json:"outcomes"`
	// Retries are attempts to be tried again, by reason; Throttled those
	// of them that S3 or KMS throttled.
	Retries       map[string]int64  `json:"retries,omitempty"`
	Throttled     int64             `json:"throttled"`
	FailedJobs    map[string]string `json:"failedJobs,omitempty"`
	Objects       int64             `json:"objectsConsumed"`
	Heads         int64             `json:"heads"`
	Updates       int64             `json:"updates"`
	InventoryRows int64             `json:"inventoryRows"`
	Enqueued      int64             `json:"enqueued"`
	HandlerTime   time.Duration     `json:"handlerTimeNs"`
	Invocations   int64             `json:"invocations"`
}

// Snapshot returns the counts so far.
func (t *Tally) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := Snapshot{Outcomes: map[string]int64{}, Objects: t.objects, Heads: t.heads, Updates: t.updates,
		InventoryRows: t.rows, Enqueued: t.enqueued, HandlerTime: t.handlerTime, Invocations: t.invocations}
	for k, v := range t.outcomes {
		out.Outcomes[k] = v
	}
	if len(t.retries) > 0 {
		out.Retries = maps.Clone(t.retries)
	}
	for k, v := range t.retries {
		if _, reason, _ := strings.Cut(k, ": "); awsconf.IsThrottleCode(reason) {
			out.Throttled += v
		}
	}
	if len(t.failedJobs) > 0 {
		out.FailedJobs = maps.Clone(t.failedJobs)
	}
	return out
}

// Total is the number of objects with their final outcome.
func (s Snapshot) Total() int64 {
	var n int64
	for _, v := range s.Outcomes {
		n += v
	}
	return n
}

// SortedOutcomes lists outcome names, successes first.
func (s Snapshot) SortedOutcomes() []string {
	rank := func(k string) int {
		for i, p := range []string{"updated", "copied", "compliant", "would-update", "would-copy", "gone", "skipped", "retry", "failed", "rejected"} {
			if strings.HasPrefix(k, p) {
				return i
			}
		}
		return 99
	}
	keys := make([]string, 0, len(s.Outcomes))
	for k := range s.Outcomes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if rank(keys[i]) != rank(keys[j]) {
			return rank(keys[i]) < rank(keys[j])
		}
		return keys[i] < keys[j]
	})
	return keys
}

// ResolveQueue turns a queue name or URL into its URL, and finds its
// dead-letter queue from its redrive policy ("" when it has none).
func ResolveQueue(ctx context.Context, api QueueAPI, nameOrURL string) (url, dlqURL string, err error) {
	url = nameOrURL
	if !strings.Contains(nameOrURL, "://") {
		out, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(nameOrURL)})
		if err != nil {
			return "", "", fmt.Errorf("queue %q: %w", nameOrURL, err)
		}
		url = aws.ToString(out.QueueUrl)
	}
	attrs, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"RedrivePolicy"}})
	if err != nil {
		return "", "", fmt.Errorf("queue %s: %w", url, err)
	}
	raw := attrs.Attributes["RedrivePolicy"]
	if raw == "" {
		return url, "", nil
	}
	var rp struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if err := json.Unmarshal([]byte(raw), &rp); err != nil || !strings.Contains(rp.DeadLetterTargetArn, ":") {
		return "", "", errors.New("queue " + url + ": unreadable redrive policy " + raw)
	}
	name := rp.DeadLetterTargetArn[strings.LastIndex(rp.DeadLetterTargetArn, ":")+1:]
	out, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		return "", "", fmt.Errorf("dead-letter queue %q of %s: %w", name, url, err)
	}
	return url, aws.ToString(out.QueueUrl), nil
}

// MaxReceives is a queue's maxReceiveCount, from its redrive policy (0
// when it has none).
func MaxReceives(ctx context.Context, api QueueAPI, url string) (int, error) {
	attrs, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"RedrivePolicy"}})
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", url, err)
	}
	raw := attrs.Attributes["RedrivePolicy"]
	if raw == "" {
		return 0, nil
	}
	// SQS writes the count as a number or as a string.
	var rp struct {
		MaxReceiveCount json.RawMessage `json:"maxReceiveCount"`
	}
	n, err := 0, json.Unmarshal([]byte(raw), &rp)
	if err == nil {
		n, err = strconv.Atoi(strings.Trim(string(rp.MaxReceiveCount), `"`))
	}
	if err != nil {
		return 0, errors.New("queue " + url + ": unreadable redrive policy " + raw)
	}
	return n, nil
}

// QueueAPI is what ResolveQueue asks SQS.
type QueueAPI interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ QueueAPI = (*sqs.Client)(nil)
