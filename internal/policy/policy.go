package policy

import (
	"regexp"
	"strings"
)

// Environment variables the functions read the policy from.
const (
	EnvPolicy     = "S3REKEY_POLICY"
	EnvPolicyFile = "S3REKEY_POLICY_FILE"
	// EnvExcludeBuckets names (comma-separated) buckets the functions never
	// manage, whatever the policy says: the stack's own inventory and
	// report buckets.
	EnvExcludeBuckets = "S3REKEY_EXCLUDE_BUCKETS"
)

// Versions modes.
const (
	VersionsCurrent = "current"
	VersionsAll     = "all"
)

// Policy is the whole configuration: which buckets are managed (by rule or
// by name), and the target each one resolves to.
type Policy struct {
	DryRun bool `json:"dryRun"`
	// MaxKMSRequestsPerSecond is the most KMS requests a second s3rekey may
	// cause in the account and region, counting those S3 makes on its
	// behalf (0: no budget). See docs/configuration.md for how to choose it.
	MaxKMSRequestsPerSecond float64 `json:"maxKmsRequestsPerSecond,omitempty"`
	// TrustedKeys pins the keys aliases may resolve to (trust.go).
	TrustedKeys *TrustedKeys `json:"trustedKeys,omitempty"`
	// Buckets are the explicitly listed buckets, each resolved from the
	// defaults and its own entry (rules do not apply to a listed bucket).
	Buckets map[string]Bucket `json:"buckets"`
	// Rules select buckets by name pattern, tag or "all", in order: the
	// first that selects a bucket governs it. Their settings are resolved
	// from the defaults and the rule's own.
	Rules []Rule `json:"rules,omitempty"`
	// Exclude: a bucket any of these selects is never managed, whatever
	// else selects it.
	Exclude []Selector `json:"exclude,omitempty"`

	// overrides are per-bucket settings applied on top of the governing
	// rule, resolved at parse for every rule (overrides[bucket][rule]).
	overrides map[string][]Bucket
	// overrideNames keeps the configured override buckets, in order.
	overrideNames []string
	// tags reads a bucket's tags for tag selectors (WithTags); nil when no
	// selector uses tags.
	tags TagSource
	// exclusions and rules compiled for lookups.
	exclusions []compiledSelector
	rules      []compiledSelector
}

// Bucket is the resolved target of one managed bucket. Every field can come
// from the defaults, a rule, an explicit bucket entry or an override: adding
// a field here makes it available in all of them (see settings.go).
type Bucket struct {
	// KMSKeyARN is the target key's ARN. The policy may name the key by
	// alias (alias/NAME or an alias ARN); WithKeys then resolves it, and
	// KeyAlias keeps the alias.
	KMSKeyARN        string `json:"kmsKeyArn"`
	KeyAlias         string `json:"-"`
	BucketKeyEnabled bool   `json:"bucketKeyEnabled"`
	// BucketKeyConfigured reports that the policy sets bucketKeyEnabled;
	// default encryption keeps the bucket's own setting otherwise.
	BucketKeyConfigured bool     `json:"-"`
	ExpectedOwner       string   `json:"expectedOwner,omitempty"`
	IncludePrefixes     []string `json:"includePrefixes,omitempty"`
	ExcludePrefixes     []string `json:"excludePrefixes,omitempty"`
	Versions            string   `json:"versions,omitempty"`
	// UnsupportedSources opts in to copying in place, onto the target key,
	// the sources UpdateObjectEncryption refuses; default skip.
	UnsupportedSources *UnsupportedSources `json:"unsupportedSources,omitempty"`
	// MaxObjectsPerSecond is the most objects a second s3rekey sends
	// requests for in the bucket, across the whole deployment (0: no
	// budget; throttling alone paces it).
	MaxObjectsPerSecond float64 `json:"maxObjectsPerSecond,omitempty"`

	// Enrollment: what the enroll function sets up on the bucket.

	// EnableEventBridge turns on the bucket's EventBridge notifications, so
	// that every upload is enforced (default true).
	EnableEventBridge *bool `json:"enableEventBridge,omitempty"`
	// SetDefaultEncryption makes the target key the bucket's default
	// encryption (keeping its blocked encryption types and, unless
	// bucketKeyEnabled is set, its bucket-key setting).
	SetDefaultEncryption bool `json:"setDefaultEncryption,omitempty"`
	// Inventory asks for an S3 Inventory report into the inventory bucket,
	// whose arrival starts a backfill.
	Inventory *Inventory `json:"inventory,omitempty"`
}

// Inventory is the S3 Inventory report enrollment configures.
type Inventory struct {
	Format    string `json:"format,omitempty"`    // CSV, Parquet (default) or ORC
	Frequency string `json:"frequency,omitempty"` // Daily (default) or Weekly
}

// EventBridge reports whether the bucket's EventBridge notifications are to
// be on (the default).
func (b Bucket) EventBridge() bool { return b.EnableEventBridge == nil || *b.EnableEventBridge }

// What to do with a source UpdateObjectEncryption refuses.
const (
	SourceSkip = "skip"
	SourceCopy = "copy"
	// SourceCopyDowngrade is the only copy of DSSE-KMS objects: the copy
	// is SSE-KMS, one layer of encryption where DSSE-KMS has two, so the
	// opt-in names the downgrade.
	SourceCopyDowngrade = "copy-downgrade"
)

// UnsupportedSources says, per source type UpdateObjectEncryption refuses,
// whether to skip it (the default) or copy it in place.
type UnsupportedSources struct {
	NotEncrypted string `json:"notEncrypted,omitempty"`
	DSSEKMS      string `json:"dsseKms,omitempty"`
}

// CopiesNotEncrypted reports the opt-in to copy unencrypted objects.
func (b Bucket) CopiesNotEncrypted() bool {
	return b.UnsupportedSources != nil && b.UnsupportedSources.NotEncrypted == SourceCopy
}

// CopiesDSSEKMS reports the opt-in to copy DSSE-KMS objects.
func (b Bucket) CopiesDSSEKMS() bool {
	return b.UnsupportedSources != nil && b.UnsupportedSources.DSSEKMS == SourceCopyDowngrade
}

// CopiesAny reports any copy opt-in.
func (b Bucket) CopiesAny() bool { return b.CopiesNotEncrypted() || b.CopiesDSSEKMS() }

// keyARNPattern is the API reference's pattern for a KMS key ARN; aliases
// and bare key ids do not match, and UpdateObjectEncryption refuses them,
// so an alias is resolved to its key ARN first.
var (
	keyARNPattern   = regexp.MustCompile(`^arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:([0-9]{12}):key/.+$`)
	aliasARNPattern = regexp.MustCompile(`^arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:([0-9]{12}):alias/[a-zA-Z0-9/_-]+$`)
	aliasPattern    = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]+$`)
)

// IsAlias reports a KMS alias name or alias ARN.
func IsAlias(ref string) bool {
	return aliasPattern.MatchString(ref) || aliasARNPattern.MatchString(ref)
}

// IsKeyARN reports a full KMS key ARN.
func IsKeyARN(ref string) bool { return keyARNPattern.MatchString(ref) }

// InScope reports whether a key is in the bucket's prefixes: included (or
// no include list) and not excluded.
func (b Bucket) InScope(key string) bool {
	for _, pfx := range b.ExcludePrefixes {
		if strings.HasPrefix(key, pfx) {
			return false
		}
	}
	if len(b.IncludePrefixes) == 0 {
		return true
	}
	for _, pfx := range b.IncludePrefixes {
		if strings.HasPrefix(key, pfx) {
			return true
		}
	}
	return false
}

// IsDirectoryBucket reports an S3 Express One Zone directory bucket name;
// UpdateObjectEncryption works on general purpose buckets only.
func IsDirectoryBucket(name string) bool { return strings.HasSuffix(name, "--x-s3") }
