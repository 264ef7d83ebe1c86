package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Environment variables the functions read the policy from.
const (
	EnvPolicy     = "S3REKEY_POLICY"
	EnvPolicyFile = "S3REKEY_POLICY_FILE"
)

// Versions modes.
const (
	VersionsCurrent = "current"
	VersionsAll     = "all"
)

// Policy is the whole configuration.
type Policy struct {
	DryRun  bool              `json:"dryRun"`
	Buckets map[string]Bucket `json:"buckets"`
	// MaxKMSRequestsPerSecond is the most KMS requests a second s3rekey may
	// cause in the account and region, counting those S3 makes on its
	// behalf (0: no budget). See docs/configuration.md for how to choose it.
	MaxKMSRequestsPerSecond float64 `json:"maxKmsRequestsPerSecond,omitempty"`
	// TrustedKeys pins the keys aliases may resolve to (trust.go).
	TrustedKeys *TrustedKeys `json:"trustedKeys,omitempty"`
}

// Bucket is the target of one managed bucket.
type Bucket struct {
	// KMSKeyARN is the target key's ARN. The policy may name the key by
	// alias (alias/NAME or an alias ARN); WithKeys then resolves it, and
	// KeyAlias keeps the alias.
	KMSKeyARN        string   `json:"kmsKeyArn"`
	KeyAlias         string   `json:"-"`
	BucketKeyEnabled bool     `json:"bucketKeyEnabled"`
	ExpectedOwner    string   `json:"expectedOwner,omitempty"`
	IncludePrefixes  []string `json:"includePrefixes,omitempty"`
	ExcludePrefixes  []string `json:"excludePrefixes,omitempty"`
	Versions         string   `json:"versions,omitempty"`
	// UnsupportedSources opts in to copying in place, onto the target key,
	// the sources UpdateObjectEncryption refuses; default skip.
	UnsupportedSources *UnsupportedSources `json:"unsupportedSources,omitempty"`
	// MaxObjectsPerSecond is the most objects a second s3rekey sends
	// requests for in the bucket, across the whole deployment (0: no
	// budget; throttling alone paces it).
	MaxObjectsPerSecond float64 `json:"maxObjectsPerSecond,omitempty"`
}

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

var (
	accountPattern    = regexp.MustCompile(`^[0-9]{12}$`)
	bucketNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// Parse decodes and validates a policy; unknown fields are errors, so a
// misspelt setting cannot silently fall back to a default.
func Parse(data []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if dec.More() {
		return nil, errors.New("policy: trailing data after the JSON object")
	}
	if err := p.normalize(); err != nil {
		return nil, err
	}
	return &p, nil
}

// FromEnv reads the policy from S3REKEY_POLICY (inline JSON) or the file
// named by S3REKEY_POLICY_FILE.
func FromEnv() (*Policy, error) {
	inline, file := os.Getenv(EnvPolicy), os.Getenv(EnvPolicyFile)
	switch {
	case inline != "" && file != "":
		return nil, fmt.Errorf("policy: set %s or %s, not both", EnvPolicy, EnvPolicyFile)
	case inline != "":
		return Parse([]byte(inline))
	case file != "":
		return Load(file)
	}
	return nil, fmt.Errorf("policy: neither %s nor %s is set", EnvPolicy, EnvPolicyFile)
}

// Load reads a policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// normalize fills defaults and validates, naming the field in errors.
func (p *Policy) normalize() error {
	if len(p.Buckets) == 0 {
		return errors.New("policy: buckets: at least one bucket is required")
	}
	if p.MaxKMSRequestsPerSecond < 0 {
		return fmt.Errorf("policy: maxKmsRequestsPerSecond: %v is negative (leave it out, or 0, for no budget)", p.MaxKMSRequestsPerSecond)
	}
	if err := p.checkTrust(); err != nil {
		return err
	}
	names := make([]string, 0, len(p.Buckets))
	for name := range p.Buckets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := p.Buckets[name]
		field := func(f string) string { return fmt.Sprintf("policy: buckets.%s.%s", name, f) }
		if !bucketNamePattern.MatchString(name) && !strings.HasSuffix(name, "--x-s3") {
			return fmt.Errorf("policy: buckets: %q is not a valid bucket name", name)
		}
		m := keyARNPattern.FindStringSubmatch(b.KMSKeyARN)
		if m == nil {
			m = aliasARNPattern.FindStringSubmatch(b.KMSKeyARN)
		}
		switch {
		case b.KMSKeyARN == "":
			return errors.New(field("kmsKeyArn") + ": required")
		case m == nil && !aliasPattern.MatchString(b.KMSKeyARN):
			return fmt.Errorf("%s: %q is neither a full KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) nor an alias (alias/NAME or its ARN); bare key ids are not accepted", field("kmsKeyArn"), b.KMSKeyARN)
		}
		if IsAlias(b.KMSKeyARN) && b.KeyAlias == "" {
			b.KeyAlias = b.KMSKeyARN
		}
		if m != nil && b.ExpectedOwner == "" {
			b.ExpectedOwner = m[1]
		}
		if b.ExpectedOwner != "" && !accountPattern.MatchString(b.ExpectedOwner) {
			return fmt.Errorf("%s: %q is not a 12-digit account id", field("expectedOwner"), b.ExpectedOwner)
		}
		if m != nil && b.ExpectedOwner != m[1] {
			return fmt.Errorf("%s: %s differs from the key's account %s; UpdateObjectEncryption needs a key of the bucket owner's account", field("expectedOwner"), b.ExpectedOwner, m[1])
		}
		switch b.Versions {
		case "":
			b.Versions = VersionsCurrent
		case VersionsCurrent, VersionsAll:
		default:
			return fmt.Errorf("%s: %q must be %q or %q", field("versions"), b.Versions, VersionsCurrent, VersionsAll)
		}
		if u := b.UnsupportedSources; u != nil {
			for f, v := range map[string]*string{"notEncrypted": &u.NotEncrypted, "dsseKms": &u.DSSEKMS} {
				copyName := SourceCopy
				if f == "dsseKms" {
					copyName = SourceCopyDowngrade
				}
				switch *v {
				case "":
					*v = SourceSkip
				case SourceSkip, copyName:
				case SourceCopy:
					return fmt.Errorf("%s: %q would turn DSSE-KMS (two layers of encryption) into SSE-KMS (one): write %q to accept the downgrade",
						field("unsupportedSources."+f), *v, SourceCopyDowngrade)
				default:
					return fmt.Errorf("%s: %q must be %q or %q", field("unsupportedSources."+f), *v, copyName, SourceSkip)
				}
			}
		}
		for _, pfx := range b.IncludePrefixes {
			if pfx == "" {
				return errors.New(field("includePrefixes") + ": empty prefix (leave the list empty to include everything)")
			}
		}
		for _, pfx := range b.ExcludePrefixes {
			if pfx == "" {
				return errors.New(field("excludePrefixes") + ": empty prefix would exclude everything")
			}
		}
		if b.MaxObjectsPerSecond < 0 {
			return fmt.Errorf("%s: %v is negative (leave it out, or 0, for no budget)", field("maxObjectsPerSecond"), b.MaxObjectsPerSecond)
		}
		p.Buckets[name] = b
	}
	return nil
}

// HasBudgets reports a budget of objects or KMS requests a second.
func (p *Policy) HasBudgets() bool {
	if p.MaxKMSRequestsPerSecond > 0 {
		return true
	}
	for _, b := range p.Buckets {
		if b.MaxObjectsPerSecond > 0 {
			return true
		}
	}
	return false
}

// Aliases lists the aliases the policy names keys by, each once.
func (p *Policy) Aliases() []string {
	seen := map[string]bool{}
	var out []string
	for _, name := range p.bucketNames() {
		if a := p.Buckets[name].KeyAlias; a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// Resolved reports that every target is a key ARN.
func (p *Policy) Resolved() bool {
	for _, b := range p.Buckets {
		if !keyARNPattern.MatchString(b.KMSKeyARN) {
			return false
		}
	}
	return true
}

// WithKeys returns a copy of the policy whose aliases are replaced by the
// key ARNs keyOf gives (as KMS DescribeKey resolves them), checked as a
// configured key ARN is. The policy itself is unchanged, so that it can be
// resolved again when an alias is repointed.
func (p *Policy) WithKeys(keyOf func(alias string) (string, error)) (*Policy, error) {
	out := *p // every setting, then the buckets with their keys resolved
	out.Buckets = make(map[string]Bucket, len(p.Buckets))
	for _, name := range p.bucketNames() {
		b := p.Buckets[name]
		if b.KeyAlias != "" {
			arn, err := keyOf(b.KeyAlias)
			if err != nil {
				return nil, fmt.Errorf("policy: buckets.%s.kmsKeyArn: alias %s: %w", name, b.KeyAlias, err)
			}
			m := keyARNPattern.FindStringSubmatch(arn)
			if m == nil {
				return nil, fmt.Errorf("policy: buckets.%s.kmsKeyArn: alias %s resolved to %q, not a key ARN", name, b.KeyAlias, arn)
			}
			if b.ExpectedOwner != "" && b.ExpectedOwner != m[1] {
				return nil, fmt.Errorf("policy: buckets.%s.kmsKeyArn: alias %s names a key of account %s, not the bucket owner %s", name, b.KeyAlias, m[1], b.ExpectedOwner)
			}
			b.KMSKeyARN, b.ExpectedOwner = arn, m[1]
		}
		out.Buckets[name] = b
	}
	return &out, nil
}

func (p *Policy) bucketNames() []string {
	names := make([]string, 0, len(p.Buckets))
	for name := range p.Buckets {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Source gives the policy in force: a resolved one when keys are named by
// alias (internal/keyalias), re-resolved as aliases are repointed.
type Source interface {
	Current(ctx context.Context) (*Policy, error)
}

// Static is a Source that is always p.
func Static(p *Policy) Source { return staticSource{p} }

type staticSource struct{ p *Policy }

func (s staticSource) Current(context.Context) (*Policy, error) { return s.p, nil }

// Lookup returns a bucket's target.
func (p *Policy) Lookup(bucket string) (Bucket, bool) {
	b, ok := p.Buckets[bucket]
	return b, ok
}

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
