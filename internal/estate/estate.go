package estate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/buckettags"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/planner"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// S3API is what describing a bucket reads.
type S3API interface {
	ListBucketsAPI
	buckettags.API
	GetBucketEncryption(ctx context.Context, in *s3.GetBucketEncryptionInput, optFns ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
	GetBucketNotificationConfiguration(ctx context.Context, in *s3.GetBucketNotificationConfigurationInput, optFns ...func(*s3.Options)) (*s3.GetBucketNotificationConfigurationOutput, error)
	GetBucketInventoryConfiguration(ctx context.Context, in *s3.GetBucketInventoryConfigurationInput, optFns ...func(*s3.Options)) (*s3.GetBucketInventoryConfigurationOutput, error)
	GetBucketReplication(ctx context.Context, in *s3.GetBucketReplicationInput, optFns ...func(*s3.Options)) (*s3.GetBucketReplicationOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// Bucket is one bucket as s3rekey sees it.
type Bucket struct {
	Name       string `json:"name"`
	Managed    bool   `json:"managed"`
	GovernedBy string `json:"governedBy"` // "rules[0] prod", "buckets.NAME", "exclude[1]", or ""
	TargetKey  string `json:"targetKey,omitempty"`
	// DefaultEncryption is the bucket's: "SSE-S3", "SSE-KMS KEY", with
	// " + bucket key" and " (SSE-C blocked)" where they apply.
	DefaultEncryption string `json:"defaultEncryption"`
	EventBridge       bool   `json:"eventBridge"`
	Inventory         bool   `json:"inventory"` // s3rekey's inventory configuration
	// Objects and Bytes are from the bucket's latest complete s3rekey
	// inventory report (SizeFrom names it); unknown (-1) without one.
	Objects  int64  `json:"objects"`
	Bytes    int64  `json:"bytes"`
	SizeFrom string `json:"sizeFrom,omitempty"`
	// WouldUpdate, Cost and Seconds are the backfill's, from the same
	// report, at the policy's budgets (Seconds 0: no budget; then
	// OnePartitionSeconds bounds it).
	WouldUpdate         int64   `json:"wouldUpdate"`
	Cost                float64 `json:"costUSD"`
	Seconds             float64 `json:"seconds"`
	OnePartitionSeconds float64 `json:"onePartitionSeconds"`
	// Replication lists the destinations of its replication rules, and
	// whether the policy governs each: UpdateObjectEncryption is not
	// replicated, so a replica stays on its old key unless its own bucket
	// is managed.
	Replication []Destination `json:"replication,omitempty"`
	Problems    []string      `json:"problems,omitempty"`
}

// Destination is a replication destination.
type Destination struct {
	Bucket   string `json:"bucket"`
	Governed bool   `json:"governed"`
	// GovernedBy says what governs it, or why that is unknown (another
	// account's bucket whose tags cannot be read).
	GovernedBy string `json:"governedBy,omitempty"`
}

// Report is the whole estate.
type Report struct {
	Buckets  []Bucket         `json:"buckets"`
	Findings []policy.Finding `json:"findings"`
	// Totals over the managed buckets.
	Managed, Enrolled int
	Objects, Bytes    int64
	Cost              float64
}

// Describer reads the estate.
type Describer struct {
	S3     S3API
	Policy *policy.Policy
	// InventoryBucket and InventoryPrefix are where the enroll function's
	// reports go (default prefix "s3rekey").
	InventoryBucket, InventoryPrefix string
	AccountID, Region                string
	Now                              func() time.Time
}

// Describe lists every bucket of the account and region and describes
// each; a bucket that cannot be read is described with its problem.
func (d *Describer) Describe(ctx context.Context) (*Report, error) {
	names, err := Buckets(ctx, d.S3, d.Region)
	if err != nil {
		return nil, err
	}
	pol := buckettags.Attach(d.Policy, d.S3)
	_, findings, err := pol.Check(ctx, names)
	if err != nil {
		return nil, err
	}
	rep := &Report{Findings: findings}
	for _, n := range names {
		b := d.bucket(ctx, pol, n)
		rep.Buckets = append(rep.Buckets, b)
		if b.Managed {
			rep.Managed++
			if b.EventBridge {
				rep.Enrolled++
			}
			rep.Objects += max(b.Objects, 0)
			rep.Bytes += max(b.Bytes, 0)
			rep.Cost += b.Cost
		}
	}
	return rep, nil
}

func (d *Describer) owner() *string {
	if d.AccountID == "" {
		return nil
	}
	return aws.String(d.AccountID)
}

func (d *Describer) bucket(ctx context.Context, pol *policy.Policy, name string) Bucket {
	b := Bucket{Name: name, Objects: -1, Bytes: -1}
	problem := func(what string, err error) { b.Problems = append(b.Problems, what+": "+err.Error()) }
	m, err := pol.Resolve(ctx, name)
	if err != nil {
		problem("policy", err)
	}
	b.Managed, b.GovernedBy = m.Managed, m.By
	if m.Managed {
		b.TargetKey = m.Bucket.KMSKeyARN
	}
	enc, err := d.S3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(name), ExpectedBucketOwner: d.owner()})
	switch {
	case code(err) == "ServerSideEncryptionConfigurationNotFoundError":
		b.DefaultEncryption = "SSE-S3"
	case err != nil:
		problem("default encryption", err)
	default:
		b.DefaultEncryption = describeEncryption(enc)
	}
	if n, err := d.S3.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(name), ExpectedBucketOwner: d.owner()}); err != nil {
		problem("notifications", err)
	} else {
		b.EventBridge = n.EventBridgeConfiguration != nil
	}
	_, err = d.S3.GetBucketInventoryConfiguration(ctx, &s3.GetBucketInventoryConfigurationInput{Bucket: aws.String(name), Id: aws.String("s3rekey"), ExpectedBucketOwner: d.owner()})
	switch {
	case err == nil:
		b.Inventory = true
	case code(err) != "NoSuchConfiguration":
		problem("inventory", err)
	}
	rep, err := d.S3.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(name), ExpectedBucketOwner: d.owner()})
	switch {
	case err == nil && rep.ReplicationConfiguration != nil:
		seen := map[string]bool{}
		for _, r := range rep.ReplicationConfiguration.Rules {
			if r.Destination == nil {
				continue
			}
			dest := strings.TrimPrefix(aws.ToString(r.Destination.Bucket), "arn:aws:s3:::")
			if seen[dest] {
				continue
			}
			seen[dest] = true
			dm, err := pol.Resolve(ctx, dest)
			entry := Destination{Bucket: dest, Governed: dm.Managed, GovernedBy: dm.By}
			if err != nil {
				entry.GovernedBy = "unknown: " + err.Error()
			}
			b.Replication = append(b.Replication, entry)
		}
	case err != nil && code(err) != "ReplicationConfigurationNotFoundError":
		problem("replication", err)
	}
	if m.Managed && d.InventoryBucket != "" {
		if err := d.size(ctx, pol, &b); err != nil {
			problem("size", err)
		}
	}
	return b
}

// size reads the bucket's latest complete report and plans a backfill of
// it.
func (d *Describer) size(ctx context.Context, pol *policy.Policy, b *Bucket) error {
	prefix := d.InventoryPrefix
	if prefix == "" {
		prefix = "s3rekey"
	}
	manifest, err := inventory.LatestManifest(ctx, d.S3, d.S3, d.InventoryBucket, prefix, b.Name, "s3rekey", aws.ToString(d.owner()))
	if err != nil || manifest == "" {
		return err
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	rep, err := planner.Plan(ctx, d.S3, manifest, pol, now(), "")
	if err != nil {
		return err
	}
	b.Objects, b.Bytes, b.SizeFrom = rep.Rows, 0, manifest
	for _, st := range rep.ByState {
		b.Bytes += st.Bytes
	}
	b.WouldUpdate, b.Cost, b.Seconds, b.OnePartitionSeconds = rep.WouldUpdate+rep.NeedsCheck+rep.WouldCopy, rep.Cost.Total, rep.Pace.Seconds, rep.Pace.OnePartitionSeconds
	return nil
}

func describeEncryption(out *s3.GetBucketEncryptionOutput) string {
	if out.ServerSideEncryptionConfiguration == nil || len(out.ServerSideEncryptionConfiguration.Rules) == 0 {
		return "SSE-S3"
	}
	var parts []string
	for _, r := range out.ServerSideEncryptionConfiguration.Rules {
		if d := r.ApplyServerSideEncryptionByDefault; d != nil {
			s := "SSE-S3"
			switch d.SSEAlgorithm {
			case "aws:kms":
				s = "SSE-KMS " + aws.ToString(d.KMSMasterKeyID)
			case "aws:kms:dsse":
				s = "DSSE-KMS " + aws.ToString(d.KMSMasterKeyID)
			}
			if aws.ToBool(r.BucketKeyEnabled) {
				s += " + bucket key"
			}
			parts = append(parts, s)
		}
		if bt := r.BlockedEncryptionTypes; bt != nil {
			for _, t := range bt.EncryptionType {
				if t == "SSE-C" {
					parts = append(parts, "(SSE-C blocked)")
				}
			}
		}
	}
	if len(parts) == 0 {
		return "SSE-S3"
	}
	return strings.Join(parts, " ")
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// String is a one-line summary for logs.
func (r *Report) String() string {
	return fmt.Sprintf("%d buckets, %d managed, %d enrolled", len(r.Buckets), r.Managed, r.Enrolled)
}
