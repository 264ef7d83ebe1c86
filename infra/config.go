package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/s3rekey/s3rekey/internal/functionconf"
	"github.com/s3rekey/s3rekey/internal/policy"
)

// ContextKey is the cdk.json context entry holding the configuration.
const ContextKey = "s3rekey"

// CreateKey in place of a key ARN asks the stack to create the target key.
const CreateKey = "create"

// Config is the deployment configuration, read from cdk.json context
// "s3rekey" (or -c s3rekey='{…}'). The policy's fields (dryRun, buckets,
// rules, defaults, exclude, overrides, maxKmsRequestsPerSecond) sit beside
// the stack's own and are the policy the functions read (Policy).
type Config struct {
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
	OperatorRoleArns []string       `json:"operatorRoleArns,omitempty"`
	Encrypt          FunctionConfig `json:"encrypt"`
	Planner          FunctionConfig `json:"planner"`
	Enroll           EnrollConfig   `json:"enroll"`
	Jobs             JobsConfig     `json:"jobs"`
	LogRetentionDays int            `json:"logRetentionDays,omitempty"`
	// LogRemovalPolicy is what happens to the functions' log groups when
	// the stack is deleted: "retain" (the default; they hold the record of
	// what was changed) or "destroy".
	LogRemovalPolicy string `json:"logRemovalPolicy,omitempty"`
	// AlarmOldestMessageSeconds is the control queue's backlog alarm.
	AlarmOldestMessageSeconds int `json:"alarmOldestMessageSeconds,omitempty"`
	// AlarmEnforcementLagSeconds is the age of the oldest upload not yet
	// enforced at which EnforcementLag fires (default 300).
	AlarmEnforcementLagSeconds int `json:"alarmEnforcementLagSeconds,omitempty"`
	// AlarmBackfillStalledMinutes is how long the work queue may hold
	// tasks with none handled before BackfillStalled fires (default 30, a
	// multiple of 5).
	AlarmBackfillStalledMinutes int `json:"alarmBackfillStalledMinutes,omitempty"`
	// Organization deploys to every account of chosen OUs (orgconfig.go).
	Organization *OrganizationConfig `json:"organization,omitempty"`

	// PolicyJSON is the policy part, with "create" keys replaced by the
	// aliases of the keys the stack creates; Policy is it parsed.
	PolicyJSON []byte         `json:"-"`
	Policy     *policy.Policy `json:"-"`
	// CreatedKeys are the keys the stack creates, one per "create".
	CreatedKeys []CreatedKey `json:"-"`
}

// CreatedKey is a target key the stack creates: where the policy asked for
// it, and the alias the policy names it by.
type CreatedKey struct{ Where, Alias string }

// EnrollConfig tunes the enroll function.
type EnrollConfig struct {
	// SweepMinutes is how often every bucket of the account is checked
	// against the policy (default 60), catching missed events and tag
	// changes.
	SweepMinutes int `json:"sweepMinutes,omitempty"`
}

// maxCreatedKeys bounds the keys "create" makes, so that the stack's size
// stays independent of the number of buckets (one key and one alias each).
const maxCreatedKeys = 10

// FunctionConfig tunes one function and its event source mapping. Its
// fields and defaults live in internal/functionconf, which the local run
// loop reads too, so that local batches are the deployed ones.
type FunctionConfig functionconf.Function

var (
	defaultEncrypt = FunctionConfig(functionconf.Encrypt)
	defaultPlanner = FunctionConfig(functionconf.Planner)
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
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("context %s: %w", ContextKey, err)
	}
	policyPart, stackPart := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	for k, v := range fields {
		if slices.Contains(policy.TopLevelFields(), k) {
			policyPart[k] = v
		} else {
			stackPart[k] = v
		}
	}
	stackJSON, _ := json.Marshal(stackPart) // raw JSON values always marshal
	if err := policy.CheckFields(stackJSON, Config{}); err != nil {
		return nil, fmt.Errorf("context %s: %w (or a policy field: %s)", ContextKey, err, strings.Join(policy.TopLevelFields(), ", "))
	}
	var c Config
	if err := json.Unmarshal(stackJSON, &c); err != nil {
		return nil, fmt.Errorf("context %s: %w", ContextKey, err)
	}
	policyJSON, _ := json.Marshal(policyPart) // raw JSON values always marshal
	var err error
	c.PolicyJSON, c.CreatedKeys, err = createdKeys(policyJSON)
	if err != nil {
		return nil, fmt.Errorf("context %s: %w", ContextKey, err)
	}
	if c.Policy, err = policy.Parse(c.PolicyJSON); err != nil {
		return nil, fmt.Errorf("context %s: %w", ContextKey, errors.New(strings.TrimPrefix(err.Error(), "policy: ")))
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("context %s: %w", ContextKey, err)
	}
	if c.Organization != nil {
		if err := c.Organization.validate(&c); err != nil {
			return nil, fmt.Errorf("context %s: %w", ContextKey, err)
		}
	}
	return &c, nil
}

// createdKeys replaces each kmsKeyArn "create" with the alias of a key the
// stack creates for it.
func createdKeys(policyJSON []byte) ([]byte, []CreatedKey, error) {
	aliasOf := func(where string) string {
		name := strings.NewReplacer(".", "-", "[", "-", "]", "").Replace(where)
		return "alias/s3rekey/" + name
	}
	out, wheres, err := policy.ReplaceKeys(policyJSON, CreateKey, aliasOf)
	if err != nil {
		return nil, nil, err
	}
	if len(wheres) > maxCreatedKeys {
		return nil, nil, fmt.Errorf("kmsKeyArn %q: %d keys to create, at most %d (name existing keys, or share one key through defaults or a rule)", CreateKey, len(wheres), maxCreatedKeys)
	}
	var keys []CreatedKey
	for _, w := range wheres {
		keys = append(keys, CreatedKey{Where: w, Alias: aliasOf(w)})
	}
	return out, keys, nil
}

func (c *Config) validate() error {
	for name := range c.Policy.Buckets {
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
	if c.Enroll.SweepMinutes == 0 {
		c.Enroll.SweepMinutes = 60
	}
	if c.Enroll.SweepMinutes < 5 || c.Enroll.SweepMinutes > 1440 {
		return fmt.Errorf("enroll.sweepMinutes: %d must be from 5 to 1440", c.Enroll.SweepMinutes)
	}
	if c.LogRetentionDays == 0 {
		c.LogRetentionDays = 30
	}
	if c.LogRemovalPolicy == "" {
		c.LogRemovalPolicy = RemovalRetain
	}
	if c.LogRemovalPolicy != RemovalRetain && c.LogRemovalPolicy != RemovalDestroy {
		return fmt.Errorf("logRemovalPolicy: %q must be %q or %q", c.LogRemovalPolicy, RemovalRetain, RemovalDestroy)
	}
	if c.AlarmOldestMessageSeconds == 0 {
		c.AlarmOldestMessageSeconds = 3600
	}
	if c.AlarmOldestMessageSeconds < 60 {
		return fmt.Errorf("alarmOldestMessageSeconds: %d is under a minute", c.AlarmOldestMessageSeconds)
	}
	return c.validateAlarms()
}

// validateAlarms defaults and checks the alarms of the two paths.
func (c *Config) validateAlarms() error {
	if c.AlarmEnforcementLagSeconds == 0 {
		c.AlarmEnforcementLagSeconds = 300
	}
	if c.AlarmEnforcementLagSeconds < 60 || c.AlarmEnforcementLagSeconds > 86400 {
		return fmt.Errorf("alarmEnforcementLagSeconds: %d must be from 60 to 86400", c.AlarmEnforcementLagSeconds)
	}
	if c.AlarmBackfillStalledMinutes == 0 {
		c.AlarmBackfillStalledMinutes = 30
	}
	if m := c.AlarmBackfillStalledMinutes; m < 15 || m > 1440 || m%5 != 0 {
		return fmt.Errorf("alarmBackfillStalledMinutes: %d must be a multiple of 5 from 15 to 1440 (the alarm's periods are 5 minutes)", m)
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
		ListingRanges: pick(f.ListingRanges, d.ListingRanges), UploadsBatchSize: pick(f.UploadsBatchSize, d.UploadsBatchSize)}
}

// functionOnly are the settings only one function reads, by JSON name: set
// on the other, they would silently do nothing, so they are refused.
var functionOnly = map[string]string{"objectsInFlight": "encrypt", "maxAttempts": "encrypt", "headBeforeUpdate": "encrypt",
	"uploadsBatchSize": "encrypt", "listingRanges": "planner"}

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
		{"uploadsBatchSize", f.UploadsBatchSize, 0, 10000},
	}
	for _, c := range checks {
		if c.v < c.lo || c.v > c.hi {
			return fmt.Errorf("%s.%s: %d must be from %d to %d", name, c.field, c.v, c.lo, c.hi)
		}
	}
	// Lambda: "When Batch size is set to more than 10, you must set
	// MaximumBatchingWindowInSeconds to at least 1 second."
	// (services-sqs-configure)
	for _, b := range []struct {
		field string
		v     int
	}{{"batchSize", f.BatchSize}, {"uploadsBatchSize", f.UploadsBatchSize}} {
		if b.v > 10 && f.BatchingWindowSeconds < 1 {
			return fmt.Errorf("%s.%s: %d needs batchingWindowSeconds of at least 1 (Lambda requires a window above 10)", name, b.field, b.v)
		}
	}
	return nil
}
