package policy

import (
	"bytes"
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
}

// Bucket is the target of one managed bucket.
type Bucket struct {
	KMSKeyARN        string   `json:"kmsKeyArn"`
	BucketKeyEnabled bool     `json:"bucketKeyEnabled"`
	ExpectedOwner    string   `json:"expectedOwner,omitempty"`
	IncludePrefixes  []string `json:"includePrefixes,omitempty"`
	ExcludePrefixes  []string `json:"excludePrefixes,omitempty"`
	Versions         string   `json:"versions,omitempty"`
}

// keyARNPattern is the API reference's pattern for a KMS key ARN; aliases
// and bare key ids do not match, and UpdateObjectEncryption refuses them.
var keyARNPattern = regexp.MustCompile(`^arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:([0-9]{12}):key/.+$`)

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
		switch {
		case b.KMSKeyARN == "":
			return errors.New(field("kmsKeyArn") + ": required")
		case m == nil:
			return fmt.Errorf("%s: %q is not a full KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); aliases and bare key ids are not accepted by UpdateObjectEncryption", field("kmsKeyArn"), b.KMSKeyARN)
		}
		if b.ExpectedOwner == "" {
			b.ExpectedOwner = m[1]
		}
		if !accountPattern.MatchString(b.ExpectedOwner) {
			return fmt.Errorf("%s: %q is not a 12-digit account id", field("expectedOwner"), b.ExpectedOwner)
		}
		if b.ExpectedOwner != m[1] {
			return fmt.Errorf("%s: %s differs from the key's account %s; UpdateObjectEncryption needs a key of the bucket owner's account", field("expectedOwner"), b.ExpectedOwner, m[1])
		}
		switch b.Versions {
		case "":
			b.Versions = VersionsCurrent
		case VersionsCurrent, VersionsAll:
		default:
			return fmt.Errorf("%s: %q must be %q or %q", field("versions"), b.Versions, VersionsCurrent, VersionsAll)
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
		p.Buckets[name] = b
	}
	return nil
}

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
