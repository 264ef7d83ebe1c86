// Package enroll sets up the buckets a policy selects, one bucket at a time
// and idempotently: EventBridge notifications on (so that every upload is
// enforced), the S3 Inventory report if the rule asks (its arrival starts a
// backfill), and default encryption under the target key if the rule asks.
// A new bucket's first enrollment also starts a listing backfill of it
// (backfill.go): what was uploaded before its notifications were on raised
// no event.
// It runs on the CloudTrail management events of bucket creation and tag
// changes, and on a schedule that sweeps every bucket of the account,
// catching missed events. It reads each setting first and writes only
// what differs, keeping what it does not mean to change. A bucket the
// policy lets go keeps its settings (see docs/operations.md).
package enroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/buckettags"
	"github.com/s3rekey/s3rekey/internal/estate"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// Environment variables of the enroll function.
const (
	EnvInventoryBucketARN = "S3REKEY_INVENTORY_BUCKET_ARN"
	EnvAccountID          = bucketowner.EnvAccountID
	// EnvControlQueueURL is where a new bucket's backfill goes.
	EnvControlQueueURL = "S3REKEY_CONTROL_QUEUE_URL"
)

// BucketEvents are the CloudTrail management events (eventName) that make
// the function look at one bucket again.
var BucketEvents = []string{"CreateBucket", "PutBucketTagging", "DeleteBucketTagging"}

// InventoryID is the id of the inventory configuration enrollment manages.
const InventoryID = "s3rekey"

// InventoryPrefix is where in the inventory bucket reports go.
const InventoryPrefix = "s3rekey"

// S3API is what enrollment calls.
type S3API interface {
	estate.ListBucketsAPI
	buckettags.API
	GetBucketNotificationConfiguration(ctx context.Context, in *s3.GetBucketNotificationConfigurationInput, optFns ...func(*s3.Options)) (*s3.GetBucketNotificationConfigurationOutput, error)
	PutBucketNotificationConfiguration(ctx context.Context, in *s3.PutBucketNotificationConfigurationInput, optFns ...func(*s3.Options)) (*s3.PutBucketNotificationConfigurationOutput, error)
	GetBucketInventoryConfiguration(ctx context.Context, in *s3.GetBucketInventoryConfigurationInput, optFns ...func(*s3.Options)) (*s3.GetBucketInventoryConfigurationOutput, error)
	PutBucketInventoryConfiguration(ctx context.Context, in *s3.PutBucketInventoryConfigurationInput, optFns ...func(*s3.Options)) (*s3.PutBucketInventoryConfigurationOutput, error)
	GetBucketEncryption(ctx context.Context, in *s3.GetBucketEncryptionInput, optFns ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
	PutBucketEncryption(ctx context.Context, in *s3.PutBucketEncryptionInput, optFns ...func(*s3.Options)) (*s3.PutBucketEncryptionOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// Enroller enrolls buckets.
type Enroller struct {
	S3 S3API
	// Keys is the policy with its aliases resolved: default encryption
	// names a key ARN, as PutBucketEncryption's reference recommends (an
	// alias resolves in the requester's account).
	Keys               policy.Source
	InventoryBucketARN string
	AccountID, Region  string
	Logger             *slog.Logger
	// ControlQueueURL is where a new bucket's backfill is sent (none
	// started when empty), through Backfills.
	ControlQueueURL string
	Backfills       MessageSender
	// BackfillDelaySeconds: see DefaultBackfillDelaySeconds (its default).
	BackfillDelaySeconds int32
	// Now is the clock that tells a new bucket; nil means time.Now.
	Now func() time.Time
}

// Result is what enrollment did to one bucket.
type Result struct {
	Match      policy.Match `json:"-"`
	Bucket     string       `json:"bucket"`
	Managed    bool         `json:"managed"`
	GovernedBy string       `json:"governedBy,omitempty"`
	Changed    []string     `json:"changed,omitempty"` // eventBridge, inventory, defaultEncryption
	// Backfill is the id of the listing job enrollment started.
	Backfill string `json:"backfill,omitempty"`
}

// Summary is a sweep's outcome.
type Summary struct {
	Buckets, Managed, Changed int
	Findings                  []policy.Finding
	Failed                    map[string]string
}

func (e *Enroller) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Bucket enrolls one bucket if the policy selects it: tags are read fresh
// (no cache), so that a tag change is followed at its event.
func (e *Enroller) Bucket(ctx context.Context, bucket string) (Result, error) {
	res := Result{Bucket: bucket}
	if policy.IsDirectoryBucket(bucket) {
		return res, nil // UpdateObjectEncryption works on general purpose buckets only
	}
	pol, err := e.Keys.Current(ctx)
	if pol == nil {
		return res, fmt.Errorf("enroll %s: policy: %w", bucket, err)
	}
	var tags map[string]string
	if pol.UsesTags() {
		if tags, err = buckettags.Read(ctx, e.S3, bucket, e.AccountID); err != nil {
			return res, fmt.Errorf("enroll %s: tags: %w", bucket, err)
		}
	}
	m := pol.ResolveWithTags(bucket, tags)
	res.Match, res.Managed, res.GovernedBy = m, m.Managed, m.By
	if !m.Managed {
		return res, nil
	}
	b := m.Bucket
	owner := b.ExpectedOwner
	if owner == "" {
		owner = e.AccountID
	}
	steps := []struct {
		name string
		on   bool
		run  func(context.Context, string, string, policy.Bucket, *Result) (bool, error)
	}{
		{"eventBridge", b.EventBridge(), e.eventBridge},
		{"inventory", b.Inventory != nil, e.inventory},
		{"defaultEncryption", b.SetDefaultEncryption, e.defaultEncryption},
	}
	for _, st := range steps {
		if !st.on {
			continue
		}
		changed, err := st.run(ctx, bucket, owner, b, &res)
		if err != nil {
			return res, fmt.Errorf("enroll %s: %s: %w", bucket, st.name, err)
		}
		if changed {
			res.Changed = append(res.Changed, st.name)
		}
	}
	if len(res.Changed) > 0 {
		e.logger().Info("bucket enrolled", "bucket", bucket, "governedBy", m.By, "changed", res.Changed, "backfill", res.Backfill)
	}
	return res, nil
}

// sweepWorkers is how many buckets a sweep enrolls at once: each takes a
// few sequential S3 calls, and 10,000 buckets (S3's largest bucket quota)
// at 16 at once take a few minutes, within the function's 15.
const sweepWorkers = 16

// Sweep enrolls every bucket of the account and region. One bucket's
// failure does not stop the others; the summary names it.
func (e *Enroller) Sweep(ctx context.Context) (Summary, error) {
	sum := Summary{Failed: map[string]string{}}
	buckets, err := estate.Buckets(ctx, e.S3, e.Region)
	if err != nil {
		return sum, err
	}
	sum.Buckets = len(buckets)
	results := make([]Result, len(buckets))
	errs := make([]error, len(buckets))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(sweepWorkers, len(buckets)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i], errs[i] = e.Bucket(ctx, buckets[i])
			}
		}()
	}
	for i := range buckets {
		next <- i
	}
	close(next)
	wg.Wait()
	matches := make([]policy.Match, len(buckets))
	for i, b := range buckets {
		matches[i] = results[i].Match
		if errs[i] != nil {
			sum.Failed[b] = errs[i].Error()
			e.logger().Error("enroll failed", "bucket", b, "error", errs[i])
			continue
		}
		if results[i].Managed {
			sum.Managed++
		}
		if len(results[i].Changed) > 0 {
			sum.Changed++
		}
	}
	if len(sum.Failed) == 0 {
		// Which rules govern nothing is known only when every bucket resolved.
		if pol, _ := e.Keys.Current(ctx); pol != nil {
			sum.Findings = pol.Findings(buckets, matches)
		}
		for _, f := range sum.Findings {
			e.logger().Warn("policy finding", "where", f.Where, "problem", f.Problem)
		}
	}
	e.logger().Info("sweep done", "buckets", sum.Buckets, "managed", sum.Managed, "changed", sum.Changed, "failed", len(sum.Failed))
	if len(sum.Failed) > 0 {
		return sum, fmt.Errorf("sweep: %d of %d buckets failed to enroll", len(sum.Failed), sum.Buckets)
	}
	return sum, nil
}

// Handle is the Lambda handler: a scheduled event sweeps; a CloudTrail
// event enrolls the bucket it names.
func (e *Enroller) Handle(ctx context.Context, raw json.RawMessage) error {
	ev, err := ParseEvent(raw)
	if err != nil {
		// An undecodable event cannot be retried into sense: logged, dropped.
		e.logger().Error("undecodable event", "error", err)
		return nil
	}
	switch ev.Kind {
	case KindSweep:
		_, err := e.Sweep(ctx)
		return err
	case KindBucket:
		_, err := e.Bucket(ctx, ev.Bucket)
		return err
	case KindIgnored:
		return nil
	}
	e.logger().Warn("event of an unexpected type", "detailType", ev.DetailType)
	return nil
}

// Kinds of events the function receives.
const (
	KindSweep   = "sweep"   // the schedule's "Scheduled Event"
	KindBucket  = "bucket"  // a bucket API call: look at that bucket
	KindIgnored = "ignored" // a failed call, which changed nothing
	KindUnknown = "unknown"
)

// Event is what an EventBridge event asks of the function.
type Event struct {
	Kind, Bucket, DetailType string
}

// ParseEvent reads an EventBridge event: a scheduled event, or the
// CloudTrail record of a bucket API call ("AWS API Call via CloudTrail",
// detail.requestParameters.bucketName).
func ParseEvent(raw []byte) (Event, error) {
	var ev struct {
		DetailType string `json:"detail-type"`
		Detail     struct {
			RequestParameters struct {
				BucketName string `json:"bucketName"`
			} `json:"requestParameters"`
			ErrorCode string `json:"errorCode"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Event{}, fmt.Errorf("enroll: event: %w", err)
	}
	out := Event{Kind: KindUnknown, DetailType: ev.DetailType}
	switch ev.DetailType {
	case "Scheduled Event":
		out.Kind = KindSweep
	case "AWS API Call via CloudTrail":
		out.Kind, out.Bucket = KindBucket, ev.Detail.RequestParameters.BucketName
		if ev.Detail.ErrorCode != "" || out.Bucket == "" {
			out.Kind = KindIgnored
		}
	}
	return out, nil
}

// eventBridge turns on the bucket's EventBridge notifications, keeping its
// queue, topic and function configurations (the PUT replaces them all).
// A new bucket's backfill is sent first (backfill.go), so that a send that
// fails leaves the notifications off, and the enrollment's retry, or the
// next sweep, sends it again.
func (e *Enroller) eventBridge(ctx context.Context, bucket, owner string, b policy.Bucket, res *Result) (bool, error) {
	cur, err := e.S3.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{
		Bucket: aws.String(bucket), ExpectedBucketOwner: aws.String(owner)})
	if err != nil {
		return false, err
	}
	if cur.EventBridgeConfiguration != nil {
		return false, nil
	}
	if res.Backfill, err = e.backfillNew(ctx, bucket, b); err != nil {
		return false, fmt.Errorf("backfill: %w", err)
	}
	_, err = e.S3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(bucket), ExpectedBucketOwner: aws.String(owner),
		NotificationConfiguration: &types.NotificationConfiguration{
			EventBridgeConfiguration:     &types.EventBridgeConfiguration{},
			QueueConfigurations:          cur.QueueConfigurations,
			TopicConfigurations:          cur.TopicConfigurations,
			LambdaFunctionConfigurations: cur.LambdaFunctionConfigurations,
		},
		// The existing destinations were validated when they were set.
		SkipDestinationValidation: aws.Bool(true),
	})
	return err == nil, err
}

// inventoryFields are the optional fields the planner's filter reads.
var inventoryFields = []types.InventoryOptionalField{"Size", "LastModifiedDate", "ETag", "StorageClass", "EncryptionStatus", "BucketKeyStatus",
	"ObjectLockRetainUntilDate", "ObjectLockMode", "ObjectLockLegalHoldStatus"}

// inventory configures the s3rekey inventory report (its own id; other
// inventory configurations stay), when it is missing or differs.
func (e *Enroller) inventory(ctx context.Context, bucket, owner string, b policy.Bucket, _ *Result) (bool, error) {
	versions := types.InventoryIncludedObjectVersionsCurrent
	if b.Versions == policy.VersionsAll {
		versions = types.InventoryIncludedObjectVersionsAll
	}
	want := &types.InventoryConfiguration{
		Id: aws.String(InventoryID), IsEnabled: aws.Bool(true), IncludedObjectVersions: versions,
		Schedule: &types.InventorySchedule{Frequency: types.InventoryFrequency(b.Inventory.Frequency)},
		Destination: &types.InventoryDestination{S3BucketDestination: &types.InventoryS3BucketDestination{
			Bucket: aws.String(e.InventoryBucketARN), Format: types.InventoryFormat(b.Inventory.Format),
			Prefix: aws.String(InventoryPrefix), AccountId: aws.String(e.AccountID)}},
		OptionalFields: inventoryFields,
	}
	cur, err := e.S3.GetBucketInventoryConfiguration(ctx, &s3.GetBucketInventoryConfigurationInput{
		Bucket: aws.String(bucket), Id: aws.String(InventoryID), ExpectedBucketOwner: aws.String(owner)})
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae) && ae.ErrorCode() == "NoSuchConfiguration":
	case err != nil:
		return false, err
	case sameInventory(cur.InventoryConfiguration, want):
		return false, nil
	}
	_, err = e.S3.PutBucketInventoryConfiguration(ctx, &s3.PutBucketInventoryConfigurationInput{
		Bucket: aws.String(bucket), Id: aws.String(InventoryID), ExpectedBucketOwner: aws.String(owner), InventoryConfiguration: want})
	return err == nil, err
}

func sameInventory(cur, want *types.InventoryConfiguration) bool {
	if cur == nil || cur.Destination == nil || cur.Destination.S3BucketDestination == nil || cur.Schedule == nil {
		return false
	}
	d, w := cur.Destination.S3BucketDestination, want.Destination.S3BucketDestination
	fields := map[types.InventoryOptionalField]bool{}
	for _, f := range cur.OptionalFields {
		fields[f] = true
	}
	for _, f := range want.OptionalFields {
		if !fields[f] {
			return false
		}
	}
	return aws.ToBool(cur.IsEnabled) && cur.IncludedObjectVersions == want.IncludedObjectVersions && cur.Schedule.Frequency == want.Schedule.Frequency &&
		aws.ToString(d.Bucket) == aws.ToString(w.Bucket) && d.Format == w.Format && aws.ToString(d.Prefix) == aws.ToString(w.Prefix) && cur.Filter == nil
}

// defaultEncryption makes the target key the bucket's default encryption.
// PutBucketEncryption replaces the whole configuration, so what the
// bucket has is read first and kept: its blocked encryption types (SSE-C
// blocking, on by default for new buckets), and its bucket-key setting
// unless the policy sets bucketKeyEnabled. The reference does not say
// whether a PUT without BlockedEncryptionTypes keeps or clears them, so
// they are always sent as they are. The key is named by ARN: the reference
// warns that an alias resolves in the requester's account.
func (e *Enroller) defaultEncryption(ctx context.Context, bucket, owner string, b policy.Bucket, _ *Result) (bool, error) {
	if !policy.IsKeyARN(b.KMSKeyARN) {
		return false, fmt.Errorf("target %q is not a key ARN (an alias must be resolved first)", b.KMSKeyARN)
	}
	cur, err := e.S3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(bucket), ExpectedBucketOwner: aws.String(owner)})
	var ae smithy.APIError
	var rules []types.ServerSideEncryptionRule
	switch {
	case errors.As(err, &ae) && ae.ErrorCode() == "ServerSideEncryptionConfigurationNotFoundError":
	case err != nil:
		return false, err
	case cur.ServerSideEncryptionConfiguration != nil:
		rules = cur.ServerSideEncryptionConfiguration.Rules
	}
	want := types.ServerSideEncryptionRule{
		ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(b.KMSKeyARN)},
		BucketKeyEnabled:                   aws.Bool(b.BucketKeyEnabled),
	}
	for _, r := range rules {
		if r.BlockedEncryptionTypes != nil {
			want.BlockedEncryptionTypes = r.BlockedEncryptionTypes
		}
		if !b.BucketKeyConfigured && r.ApplyServerSideEncryptionByDefault != nil && r.BucketKeyEnabled != nil {
			want.BucketKeyEnabled = r.BucketKeyEnabled
		}
	}
	if len(rules) == 1 && sameRule(rules[0], want) {
		return false, nil
	}
	_, err = e.S3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(bucket), ExpectedBucketOwner: aws.String(owner),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{want}}})
	return err == nil, err
}

func sameRule(a, b types.ServerSideEncryptionRule) bool {
	x, y := a.ApplyServerSideEncryptionByDefault, b.ApplyServerSideEncryptionByDefault
	if x == nil || y == nil {
		return false
	}
	return x.SSEAlgorithm == y.SSEAlgorithm && aws.ToString(x.KMSMasterKeyID) == aws.ToString(y.KMSMasterKeyID) &&
		aws.ToBool(a.BucketKeyEnabled) == aws.ToBool(b.BucketKeyEnabled) && blocked(a) == blocked(b)
}

func blocked(r types.ServerSideEncryptionRule) string {
	if r.BlockedEncryptionTypes == nil {
		return ""
	}
	var out []string
	for _, t := range r.BlockedEncryptionTypes.EncryptionType {
		out = append(out, string(t))
	}
	return strings.Join(out, ",")
}

// FromEnv makes an Enroller from the function's environment.
func FromEnv(api S3API, keys policy.Source, region string, logger *slog.Logger) (*Enroller, error) {
	e := &Enroller{S3: api, Keys: keys, Region: region, Logger: logger,
		InventoryBucketARN: os.Getenv(EnvInventoryBucketARN), AccountID: os.Getenv(EnvAccountID), ControlQueueURL: os.Getenv(EnvControlQueueURL)}
	if e.InventoryBucketARN == "" || e.AccountID == "" {
		return nil, fmt.Errorf("enroll: %s and %s are required", EnvInventoryBucketARN, EnvAccountID)
	}
	return e, nil
}
