package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
)

// document is the policy as written. Settings (defaults, a rule's, a
// bucket's, an override) are partial Buckets, merged field by field:
// a field set later replaces the same field set earlier, and nested
// objects (unsupportedSources, inventory) merge the same way.
type document struct {
	DryRun                  bool                       `json:"dryRun"`
	MaxKMSRequestsPerSecond float64                    `json:"maxKmsRequestsPerSecond"`
	TrustedKeys             *TrustedKeys               `json:"trustedKeys"`
	Defaults                json.RawMessage            `json:"defaults"`
	Rules                   []ruleDocument             `json:"rules"`
	Exclude                 []Selector                 `json:"exclude"`
	Buckets                 map[string]json.RawMessage `json:"buckets"`
	Overrides               map[string]json.RawMessage `json:"overrides"`
}

type ruleDocument struct {
	Name     string          `json:"name"`
	Select   Selector        `json:"select"`
	Settings json.RawMessage `json:"settings"`
}

var (
	accountPattern    = regexp.MustCompile(`^[0-9]{12}$`)
	bucketNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	ruleNamePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// Parse decodes and validates a policy; unknown fields (case variants
// included) are errors, so a misspelt setting cannot silently fall back to
// a default.
func Parse(data []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if dec.More() {
		return nil, errors.New("policy: trailing data after the JSON object")
	}
	if err := checkKeys(raw, reflect.TypeOf(Document{}), ""); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("policy: %w", typeError(err))
	}
	p, err := doc.compile()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}

// FromEnv reads the policy from S3REKEY_POLICY (inline JSON) or the file
// named by S3REKEY_POLICY_FILE (the stack's policy layer).
func FromEnv() (*Policy, error) {
	inline, file := os.Getenv(EnvPolicy), os.Getenv(EnvPolicyFile)
	switch {
	case inline != "" && file != "":
		return nil, fmt.Errorf("policy: set %s or %s, not both", EnvPolicy, EnvPolicyFile)
	case inline == "" && file == "":
		return nil, fmt.Errorf("policy: neither %s nor %s is set", EnvPolicy, EnvPolicyFile)
	}
	var p *Policy
	var err error
	if inline != "" {
		p, err = Parse([]byte(inline))
	} else if file, err = accountFile(file); err == nil {
		p, err = Load(file)
	}
	if err != nil {
		return nil, err
	}
	return p.Excluding(strings.Split(os.Getenv(EnvExcludeBuckets), ",")...), nil
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

func (doc document) compile() (*Policy, error) {
	if len(doc.Buckets) == 0 && len(doc.Rules) == 0 {
		return nil, errors.New("buckets: at least one bucket or rule is required")
	}
	if doc.MaxKMSRequestsPerSecond < 0 {
		return nil, fmt.Errorf("maxKmsRequestsPerSecond: %v is negative (leave it out, or 0, for no budget)", doc.MaxKMSRequestsPerSecond)
	}
	defaults, err := object(doc.Defaults, "defaults")
	if err != nil {
		return nil, err
	}
	p := &Policy{DryRun: doc.DryRun, MaxKMSRequestsPerSecond: doc.MaxKMSRequestsPerSecond, TrustedKeys: doc.TrustedKeys, Buckets: map[string]Bucket{}}
	if err := p.checkTrust(); err != nil {
		return nil, err
	}
	for i, ex := range doc.Exclude {
		c, err := ex.compile(fmt.Sprintf("exclude[%d]", i))
		if err != nil {
			return nil, err
		}
		p.exclusions = append(p.exclusions, c)
	}
	ruleSettings := make([]map[string]json.RawMessage, len(doc.Rules))
	seen := map[string]int{}
	for i, r := range doc.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if !ruleNamePattern.MatchString(r.Name) {
			return nil, fmt.Errorf("%s.name: %q must be 1 to 64 letters, digits, '-', '_' or '.'", where, r.Name)
		}
		if j, dup := seen[r.Name]; dup {
			return nil, fmt.Errorf("%s.name: %q is also the name of rules[%d]", where, r.Name, j)
		}
		seen[r.Name] = i
		for j, earlier := range p.rules {
			if earlier.all {
				return nil, fmt.Errorf("%s (%s): never governs a bucket: rules[%d] (%s) selects all buckets first", where, r.Name, j, doc.Rules[j].Name)
			}
		}
		c, err := r.Select.compile(where + ".select")
		if err != nil {
			return nil, err
		}
		own, err := object(r.Settings, where+".settings")
		if err != nil {
			return nil, err
		}
		ruleSettings[i] = merge(defaults, own)
		b, err := resolveBucket(ruleSettings[i], where+".settings", fmt.Sprintf(" (rule %s, over defaults)", r.Name))
		if err != nil {
			return nil, err
		}
		p.Rules = append(p.Rules, Rule{Name: r.Name, Select: r.Select, Settings: b})
		p.rules = append(p.rules, c)
	}
	for _, name := range sortedKeys(doc.Buckets) {
		where := "buckets." + name
		if !bucketNamePattern.MatchString(name) && !IsDirectoryBucket(name) {
			return nil, fmt.Errorf("buckets: %q is not a valid bucket name", name)
		}
		own, err := object(doc.Buckets[name], where)
		if err != nil {
			return nil, err
		}
		b, err := resolveBucket(merge(defaults, own), where, "")
		if err != nil {
			return nil, err
		}
		p.Buckets[name] = b
	}
	for _, name := range sortedKeys(doc.Overrides) {
		where := "overrides." + name
		if !bucketNamePattern.MatchString(name) {
			return nil, fmt.Errorf("overrides: %q is not a valid bucket name", name)
		}
		if _, listed := doc.Buckets[name]; listed {
			return nil, fmt.Errorf("%s: the bucket is listed in buckets; put its settings there", where)
		}
		if len(doc.Rules) == 0 {
			return nil, fmt.Errorf("%s: there are no rules to override", where)
		}
		own, err := object(doc.Overrides[name], where)
		if err != nil {
			return nil, err
		}
		perRule := make([]Bucket, len(doc.Rules))
		for i := range doc.Rules {
			if perRule[i], err = resolveBucket(merge(ruleSettings[i], own), where, fmt.Sprintf(" (over rule %s)", doc.Rules[i].Name)); err != nil {
				return nil, err
			}
		}
		if p.overrides == nil {
			p.overrides = map[string][]Bucket{}
		}
		p.overrides[name] = perRule
		p.overrideNames = append(p.overrideNames, name)
	}
	return p, nil
}

// object decodes a settings object (absent: empty).
func object(raw json.RawMessage, where string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%s: must be an object of settings", where)
	}
	return out, nil
}

// merge returns base with over's fields on top; where both hold an object
// for a field, the objects merge the same way.
func merge(base, over map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if prev, ok := out[k]; ok {
			a, errA := object(prev, "")
			b, errB := object(v, "")
			if errA == nil && errB == nil && isObject(prev) && isObject(v) {
				m, _ := json.Marshal(merge(a, b)) // raw JSON values always marshal
				out[k] = m
				continue
			}
		}
		out[k] = v
	}
	return out
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

// resolveBucket decodes merged settings into a Bucket and validates it;
// errors name where, and the origin (which rule, over defaults).
func resolveBucket(merged map[string]json.RawMessage, where, origin string) (Bucket, error) {
	data, _ := json.Marshal(merged) // raw JSON values always marshal
	var b Bucket
	if err := json.Unmarshal(data, &b); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			where += "." + te.Field
		}
		return b, fmt.Errorf("%s: %w%s", where, typeError(err), origin)
	}
	_, b.BucketKeyConfigured = merged["bucketKeyEnabled"]
	if err := b.normalize(where); err != nil {
		return b, fmt.Errorf("%w%s", err, origin)
	}
	return b, nil
}

// normalize fills defaults and validates, naming the field in errors.
func (b *Bucket) normalize(where string) error {
	field := func(f string) string { return where + "." + f }
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
		for _, f := range []struct {
			name string
			v    *string
		}{{"notEncrypted", &u.NotEncrypted}, {"dsseKms", &u.DSSEKMS}} {
			copyName := SourceCopy
			if f.name == "dsseKms" {
				copyName = SourceCopyDowngrade
			}
			switch *f.v {
			case "":
				*f.v = SourceSkip
			case SourceSkip, copyName:
			case SourceCopy:
				return fmt.Errorf("%s: %q would turn DSSE-KMS (two layers of encryption) into SSE-KMS (one): write %q to accept the downgrade",
					field("unsupportedSources."+f.name), *f.v, SourceCopyDowngrade)
			default:
				return fmt.Errorf("%s: %q must be %q or %q", field("unsupportedSources."+f.name), *f.v, copyName, SourceSkip)
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
	if inv := b.Inventory; inv != nil {
		switch inv.Format {
		case "":
			inv.Format = "Parquet"
		case "CSV", "Parquet", "ORC":
		default:
			return fmt.Errorf("%s: %q must be CSV, Parquet or ORC", field("inventory.format"), inv.Format)
		}
		switch inv.Frequency {
		case "":
			inv.Frequency = "Daily"
		case "Daily", "Weekly":
		default:
			return fmt.Errorf("%s: %q must be Daily or Weekly", field("inventory.frequency"), inv.Frequency)
		}
	}
	return nil
}

// Overrides lists the buckets with per-bucket overrides, sorted.
func (p *Policy) Overrides() []string { return append([]string(nil), p.overrideNames...) }
