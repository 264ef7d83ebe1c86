package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Document is the policy as written, field by field: the field table that
// the strict check and the configuration docs test walk. Settings
// (defaults, a rule's, a bucket's, an override) are partial Buckets.
type Document struct {
	DryRun                  bool              `json:"dryRun"`
	MaxKMSRequestsPerSecond float64           `json:"maxKmsRequestsPerSecond"`
	TrustedKeys             *TrustedKeys      `json:"trustedKeys"`
	Defaults                *Bucket           `json:"defaults"`
	Rules                   []RuleDocument    `json:"rules"`
	Exclude                 []Selector        `json:"exclude"`
	Buckets                 map[string]Bucket `json:"buckets"`
	Overrides               map[string]Bucket `json:"overrides"`
}

// RuleDocument is a rule as written.
type RuleDocument struct {
	Name     string   `json:"name"`
	Select   Selector `json:"select"`
	Settings *Bucket  `json:"settings"`
}

// TopLevelFields are the policy's top-level JSON names (the CDK app shares
// its configuration object with the policy).
func TopLevelFields() []string { return sortedKeys(jsonFields(reflect.TypeOf(Document{}))) }

// CheckFields reports the first object key of data that is not the exact
// JSON name of a field of v's type (case variants included), naming where.
func CheckFields(data []byte, v any) error { return checkKeys(data, reflect.TypeOf(v), "") }

// Targets returns every resolved target the policy holds: listed buckets,
// rules, and overrides over each rule.
func (p *Policy) Targets() []Bucket {
	var out []Bucket
	_ = p.clone().targets(func(_ string, b *Bucket) error {
		out = append(out, *b)
		return nil
	})
	return out
}

// BucketScope says which buckets the policy can select, as IAM resource
// patterns over bucket names (exact names, or names with * and ?), for
// grants that follow the policy without a statement per bucket. accountWide
// is true when a rule selects all buckets or by tag alone, or when more
// than max names and patterns would be needed: a grant must then cover the
// account's buckets (conditioned on the account). Buckets the policy lists
// with a copy opt-in, and rules that copy, are reported in copies the same
// way.
func (p *Policy) BucketScope(max int) (names []string, accountWide bool, copies []string, copiesAccountWide bool) {
	seen, seenCopy := map[string]bool{}, map[string]bool{}
	add := func(set map[string]bool, list *[]string, n string) {
		if !set[n] {
			set[n] = true
			*list = append(*list, n)
		}
	}
	for _, name := range sortedKeys(p.Buckets) {
		add(seen, &names, name)
		if p.Buckets[name].CopiesAny() {
			add(seenCopy, &copies, name)
		}
	}
	for i, r := range p.Rules {
		byName := !r.Select.All && len(r.Select.Names) > 0
		copying := r.Settings.CopiesAny()
		for _, name := range p.overrideNames {
			copying = copying || p.overrides[name][i].CopiesAny()
		}
		if !byName {
			accountWide = true
			copiesAccountWide = copiesAccountWide || copying
			continue
		}
		for _, n := range r.Select.Names {
			add(seen, &names, n)
			if copying {
				add(seenCopy, &copies, n)
			}
		}
	}
	sort.Strings(names)
	sort.Strings(copies)
	if accountWide || len(names) > max {
		names, accountWide = nil, true
	}
	if copiesAccountWide || len(copies) > max {
		copies, copiesAccountWide = nil, true
	}
	return names, accountWide, copies, copiesAccountWide
}

// ReplaceKeys returns the policy document data with every kmsKeyArn whose
// value is from replaced by what name gives for where it is
// ("buckets.NAME", "rules[I]", "defaults", "overrides.NAME"): the CDK app
// replaces "create" with the alias of the key it creates. The document is
// otherwise unchanged.
func ReplaceKeys(data []byte, from string, name func(where string) string) ([]byte, []string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	var wheres []string
	var replaceErr error
	replace := func(raw json.RawMessage, where string) json.RawMessage {
		var s map[string]json.RawMessage
		if json.Unmarshal(raw, &s) != nil {
			return raw
		}
		var v string
		if json.Unmarshal(s["kmsKeyArn"], &v) != nil || v != from {
			return raw
		}
		if _, ok := s["expectedOwner"]; ok && replaceErr == nil {
			replaceErr = fmt.Errorf("%s.expectedOwner: leave it out with kmsKeyArn %q (the key is the stack's account's)", where, from)
		}
		s["kmsKeyArn"], _ = json.Marshal(name(where))
		wheres = append(wheres, where)
		out, _ := json.Marshal(s) // raw JSON values always marshal
		return out
	}
	if d, ok := doc["defaults"]; ok {
		doc["defaults"] = replace(d, "defaults")
	}
	for _, field := range []string{"buckets", "overrides"} {
		var m map[string]json.RawMessage
		if json.Unmarshal(doc[field], &m) != nil {
			continue
		}
		for _, k := range sortedKeys(m) {
			m[k] = replace(m[k], field+"."+k)
		}
		doc[field], _ = json.Marshal(m)
	}
	var rules []map[string]json.RawMessage
	if json.Unmarshal(doc["rules"], &rules) == nil {
		for _, r := range rules {
			var name string
			_ = json.Unmarshal(r["name"], &name)
			if s, ok := r["settings"]; ok {
				r["settings"] = replace(s, "rules."+strings.ToLower(name))
			}
		}
		doc["rules"], _ = json.Marshal(rules)
	}
	for k, v := range doc {
		if len(v) == 0 || string(v) == "null" {
			delete(doc, k)
		}
	}
	if replaceErr != nil {
		return nil, nil, replaceErr
	}
	out, err := json.Marshal(doc)
	return out, wheres, err
}
