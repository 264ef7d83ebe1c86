package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// ContextKey is the cdk.json context entry holding the configuration.
const ContextKey = "s3rekey"

// CreateKey in place of a key ARN asks the stack to create the target key.
const CreateKey = "create"

// Config is the deployment configuration, read from cdk.json context
// "s3rekey" (or -c s3rekey='{…}').
type Config struct {
	DryRun  bool                    `json:"dryRun"`
	Buckets map[string]BucketConfig `json:"buckets"`
	// InventoryBucket is an existing inventory destination bucket; empty
	// means the stack creates one.
	InventoryBucket string `json:"inventoryBucket,omitempty"`
	// SourceKeyArns are keys objects are under today (SSE-KMS sources):
	// UpdateObjectEncryption needs kms:Decrypt on them. Empty grants
	// kms:Decrypt on every key of the account, usable only through S3 of
	// the region (kms:ViaService), for those who do not know all their old
	// keys.
	SourceKeyArns []string `json:"sourceKeyArns,omitempty"`
	// OperatorRoleArns are the roles operators run s3rekey backfill and
	// redrive under: with the functions' roles and the stack's EventBridge
	// rules, the only senders the work and control queues accept.
	OperatorRoleArns []string `json:"operatorRoleArns,omitempty"`
	// MaxKMSRequestsPerSecond is the policy's account-wide KMS budget.
	MaxKMSRequestsPerSecond   float64        `json:"maxKmsRequestsPerSecond,omitempty"`
	Encrypt                   FunctionConfig `json:"encrypt"`
	Planner                   FunctionConfig `json:"planner"`
	Jobs                      JobsConfig     `json:"jobs"`
	LogRetentionDays          int            `json:"logRetentionDays,omitempty"`
	AlarmOldestMessageSeconds int            `json:"alarmOldestMessageSeconds,omitempty"`
}

// BucketConfig is one managed bucket: its policy and what the stack sets
// up on it.
type BucketConfig struct {
	KMSKeyArn            string                     `json:"kmsKeyArn"` // a key ARN, or "create"
	BucketKeyEnabled     bool                       `json:"bucketKeyEnabled"`
	ExpectedOwner        string                     `json:"expectedOwner,omitempty"`
	IncludePrefixes      []string                   `json:"includePrefixes,omitempty"`
	ExcludePrefixes      []string                   `json:"excludePrefixes,omitempty"`
	Versions             string                     `json:"versions,omitempty"`
	UnsupportedSources   *policy.UnsupportedSources `json:"unsupportedSources,omitempty"`   // copy in place what UpdateObjectEncryption refuses
	EnableEventBridge    *bool                      `json:"enableEventBridge,omitempty"`    // default true: enforce on every upload
	SetDefaultEncryption bool                       `json:"setDefaultEncryption,omitempty"` // PutBucketEncryption with the target key
	Inventory            *InventoryConfig           `json:"inventory,omitempty"`            // configure an S3 Inventory report
	MaxObjectsPerSecond  float64                    `json:"maxObjectsPerSecond,omitempty"`  // the bucket's budget (0: none)
}

// InventoryConfig is the S3 Inventory report the stack configures.
type InventoryConfig struct {
	Format    string `json:"format,omitempty"`    // CSV, Parquet (default) or ORC
	Frequency string `json:"frequency,omitempty"` // Daily (default) or Weekly
}

// FunctionConfig tunes one function and its event source mapping.
type FunctionConfig struct {
	MemoryMB              int `json:"memoryMB,omitempty"`
	TimeoutSeconds        int `json:"timeoutSeconds,omitempty"`
	BatchSize             int `json:"batchSize,omitempty"`
	BatchingWindowSeconds int `json:"batchingWindowSeconds,omitempty"`
	// MaxConcurrency caps concurrent invocations (the policy's budgets,
	// not this, hold S3 and KMS request rates).
	MaxConcurrency  int `json:"maxConcurrency,omitempty"`
	ObjectsInFlight int `json:"objectsInFlight,omitempty"` // encrypt only
	MaxAttempts     int `json:"maxAttempts,omitempty"`     // encrypt only
	EphemeralMB     int `json:"ephemeralStorageMB,omitempty"`
	// HeadBeforeUpdate (encrypt only): read every object before updating
	// it, even where the inventory proves SSE-S3 (see BENCHMARKS.md).
	HeadBeforeUpdate bool `json:"headBeforeUpdate,omitempty"`
	// ListingRanges (planner only): how many ranges a listing backfill is
	// split into, listed at once (default 8; at most maxConcurrency run at
	// once).
	ListingRanges int `json:"listingRanges,omitempty"`
}

// Defaults. 1769 MB gives encrypt one full vCPU: its work is CPU-bound in
// the SDK (signing, parsing), and a whole core keeps hundreds of requests in
// flight. The planner needs disk for inventory files, not memory.
var (
	defaultEncrypt = FunctionConfig{MemoryMB: 1769, TimeoutSeconds: 300, BatchSize: 10, BatchingWindowSeconds: 1,
		MaxConcurrency: 50, ObjectsInFlight: 256, MaxAttempts: 8, EphemeralMB: 512}
	defaultPlanner = FunctionConfig{MemoryMB: 1024, TimeoutSeconds: 900, BatchSize: 1, MaxConcurrency: 5, EphemeralMB: 10240, ListingRanges: 8}
)

// ParseConfig reads the context value (a JSON object, or a string holding
// one) and validates it, naming the field of each error.
func ParseConfig(raw any) (*Config, error) {
	if raw == nil {
		return nil, fmt.Errorf("cdk.json: context %q is missing (see docs/configuration.md)", ContextKey)
	}
	var data []byte
	switch v := raw.(type) {
	case string:
		data = []byte(v)
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("context %s: %w", ContextKey, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("context %s: %w", ContextKey, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("context %s: %w", ContextKey, err)
	}
	return &c, nil
}

func (c *Config) validate() error {
	// The policy part is checked by the functions' own validation, with a
	// stand-in ARN for keys the stack creates.
	probe := c.Policy(func(string) string { return "arn:aws:kms:us-east-1:000000000000:key/to-be-created" }, "000000000000")
	if _, err := policy.Parse(probe); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "policy: "))
	}
	for _, name := range c.bucketNames() {
		b := c.Buckets[name]
		if b.Inventory != nil {
			switch b.Inventory.Format {
			case "", "CSV", "Parquet", "ORC":
			default:
				return fmt.Errorf("buckets.%s.inventory.format: %q must be CSV, Parquet or ORC", name, b.Inventory.Format)
			}
			switch b.Inventory.Frequency {
			case "", "Daily", "Weekly":
			default:
				return fmt.Errorf("buckets.%s.inventory.frequency: %q must be Daily or Weekly", name, b.Inventory.Frequency)
			}
		}
		if b.KMSKeyArn == CreateKey && b.ExpectedOwner != "" {
			return fmt.Errorf("buckets.%s.expectedOwner: leave it out with kmsKeyArn %q (the key is the stack's account's)", name, CreateKey)
		}
		if policy.IsDirectoryBucket(name) {
			return fmt.Errorf("buckets.%s: directory buckets do not support UpdateObjectEncryption", name)
		}
	}
	for i, arn := range c.SourceKeyArns {
		if !strings.HasPrefix(arn, "arn:aws") || !strings.Contains(arn, ":key/") {
			return fmt.Errorf("sourceKeyArns[%d]: %q is not a KMS key ARN", i, arn)
		}
	}
	for name, f := range map[string]FunctionConfig{"encrypt": c.Encrypt, "planner": c.Planner} {
		if err := f.misplaced(name); err != nil {
			return err
		}
	}
	c.Encrypt = withDefaults(c.Encrypt, defaultEncrypt)
	c.Planner = withDefaults(c.Planner, defaultPlanner)
	for name, f := range map[string]FunctionConfig{"encrypt": c.Encrypt, "planner": c.Planner} {
		if err := f.validate(name); err != nil {
			return err
		}
	}
	if err := c.Jobs.validate(); err != nil {
		return err
	}
	if c.LogRetentionDays == 0 {
		c.LogRetentionDays = 30
	}
	if c.AlarmOldestMessageSeconds == 0 {
		c.AlarmOldestMessageSeconds = 3600
	}
	if c.AlarmOldestMessageSeconds < 60 {
		return fmt.Errorf("alarmOldestMessageSeconds: %d is under a minute", c.AlarmOldestMessageSeconds)
	}
	return nil
}

func withDefaults(f, d FunctionConfig) FunctionConfig {
	pick := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	return FunctionConfig{MemoryMB: pick(f.MemoryMB, d.MemoryMB), TimeoutSeconds: pick(f.TimeoutSeconds, d.TimeoutSeconds),
		BatchSize: pick(f.BatchSize, d.BatchSize), BatchingWindowSeconds: pick(f.BatchingWindowSeconds, d.BatchingWindowSeconds),
		MaxConcurrency: pick(f.MaxConcurrency, d.MaxConcurrency), ObjectsInFlight: pick(f.ObjectsInFlight, d.ObjectsInFlight),
		MaxAttempts: pick(f.MaxAttempts, d.MaxAttempts), EphemeralMB: pick(f.EphemeralMB, d.EphemeralMB), HeadBeforeUpdate: f.HeadBeforeUpdate,
		ListingRanges: pick(f.ListingRanges, d.ListingRanges)}
}

// functionOnly are the settings only one function reads, by JSON name: set
// on the other, they would silently do nothing, so they are refused.
var functionOnly = map[string]string{"objectsInFlight": "encrypt", "maxAttempts": "encrypt", "headBeforeUpdate": "encrypt",
	"listingRanges": "planner"}

// misplaced refuses a setting of the other function.
func (f FunctionConfig) misplaced(name string) error {
	v := reflect.ValueOf(f)
	for i := range v.NumField() {
		field, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		if owner, ok := functionOnly[field]; ok && owner != name && !v.Field(i).IsZero() {
			return fmt.Errorf("%s.%s: only the %s function has this setting", name, field, owner)
		}
	}
	return nil
}

func (f FunctionConfig) validate(name string) error {
	checks := []struct {
		field     string
		v, lo, hi int
	}{
		{"memoryMB", f.MemoryMB, 128, 10240},
		{"timeoutSeconds", f.TimeoutSeconds, 10, 900},
		{"batchSize", f.BatchSize, 1, 10000},
		{"batchingWindowSeconds", f.BatchingWindowSeconds, 0, 300},
		{"maxConcurrency", f.MaxConcurrency, 2, 1000},
		{"objectsInFlight", f.ObjectsInFlight, 0, 10000},
		{"maxAttempts", f.MaxAttempts, 0, 100},
		{"ephemeralStorageMB", f.EphemeralMB, 512, 10240},
		{"listingRanges", f.ListingRanges, 0, 100},
	}
	for _, c := range checks {
		if c.v < c.lo || c.v > c.hi {
			return fmt.Errorf("%s.%s: %d must be from %d to %d", name, c.field, c.v, c.lo, c.hi)
		}
	}
	if f.BatchSize > 10 && f.BatchingWindowSeconds < 1 {
		return fmt.Errorf("%s.batchSize: %d needs batchingWindowSeconds of at least 1 (Lambda requires a window above 10)", name, f.BatchSize)
	}
	return nil
}

func (c *Config) bucketNames() []string {
	names := make([]string, 0, len(c.Buckets))
	for n := range c.Buckets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Policy renders the policy the functions read (S3REKEY_POLICY). keyARN
// gives the ARN of a created key for a bucket (a deploy-time token in the
// stack); createdOwner is the owner of created keys.
func (c *Config) Policy(keyARN func(bucket string) string, createdOwner string) []byte {
	p := policy.Policy{DryRun: c.DryRun, MaxKMSRequestsPerSecond: c.MaxKMSRequestsPerSecond, Buckets: map[string]policy.Bucket{}}
	for name, b := range c.Buckets {
		pb := policy.Bucket{KMSKeyARN: b.KMSKeyArn, BucketKeyEnabled: b.BucketKeyEnabled, ExpectedOwner: b.ExpectedOwner,
			IncludePrefixes: b.IncludePrefixes, ExcludePrefixes: b.ExcludePrefixes, Versions: b.Versions, UnsupportedSources: b.UnsupportedSources,
			MaxObjectsPerSecond: b.MaxObjectsPerSecond}
		if b.KMSKeyArn == CreateKey {
			pb.KMSKeyARN, pb.ExpectedOwner = keyARN(name), createdOwner
		}
		p.Buckets[name] = pb
	}
	out, _ := json.Marshal(p) // strings, numbers, bools and slices: cannot fail
	return out
}
