package policy

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Selector chooses buckets: every bucket of the account and region (all),
// bucket-name patterns, bucket tags, or names and tags together (both must
// hold).
type Selector struct {
	All bool `json:"all,omitempty"`
	// Names are bucket names or patterns: * matches any run of characters,
	// ? one character. The same wildcards IAM ARNs take, so that a pattern
	// can be granted as it is written.
	Names []string `json:"names,omitempty"`
	// Tags: every key must be on the bucket with this value ("*": any
	// value). Read with GetBucketTagging and cached (TagSource).
	Tags map[string]string `json:"tags,omitempty"`
}

// Rule selects buckets and gives their settings (over the defaults).
type Rule struct {
	Name   string   `json:"name"`
	Select Selector `json:"select"`
	// Settings are the rule's target, resolved from the defaults and the
	// rule's own settings at parse.
	Settings Bucket `json:"settings"`
}

// TagSource reads a bucket's tags (S3 GetBucketTagging; a bucket without
// tags has none, not an error), cached by the implementation.
type TagSource interface {
	BucketTags(ctx context.Context, bucket string) (map[string]string, error)
}

// WithTags returns a copy of the policy whose tag selectors read bucket
// tags from src.
func (p *Policy) WithTags(src TagSource) *Policy {
	out := *p
	out.tags = src
	return &out
}

// Excluding returns a copy of the policy that never manages the named
// buckets, whatever selects them: the stack's own inventory and report
// buckets, which an "all" rule would otherwise select.
func (p *Policy) Excluding(buckets ...string) *Policy {
	out := *p
	c := compiledSelector{exact: map[string]bool{}, label: "s3rekey's own bucket"}
	for _, b := range buckets {
		if b != "" {
			c.exact[b] = true
		}
	}
	if len(c.exact) > 0 {
		out.exclusions = append(append([]compiledSelector{}, p.exclusions...), c)
	}
	return &out
}

// UsesTags reports a selector (rule or exclusion) that reads bucket tags.
func (p *Policy) UsesTags() bool {
	for _, s := range append(append([]compiledSelector{}, p.rules...), p.exclusions...) {
		if len(s.tags) > 0 {
			return true
		}
	}
	return false
}

// Match is how a bucket resolves: the target when managed, and what
// decided it.
type Match struct {
	Bucket  Bucket
	Managed bool
	// By names what decided: "buckets.NAME", "rules[I] NAME",
	// "exclude[I]", or "" when nothing selects the bucket.
	By string
	// Rule is the governing rule's name (empty for a listed bucket).
	Rule string
	// Override reports that overrides.NAME was applied over the rule.
	Override bool
}

// ErrNoTagSource is returned when a tag selector must be evaluated and the
// policy has no TagSource.
var ErrNoTagSource = errors.New("policy: a selector reads bucket tags, and no tag source is configured")

// Resolve returns how a bucket resolves, reading its tags (once) only when
// a tag selector has to be evaluated. An exclusion always wins; then the
// explicit bucket list; then the first rule that selects the bucket, with
// the bucket's override applied. The cost is a map lookup for a listed
// bucket and one test per rule and exclusion otherwise, whatever the
// number of buckets: it never grows with the policy's bucket list.
func (p *Policy) Resolve(ctx context.Context, bucket string) (Match, error) {
	var tags map[string]string
	read := false
	return p.resolve(bucket, func() (map[string]string, error) {
		if read {
			return tags, nil
		}
		if p.tags == nil {
			return nil, ErrNoTagSource
		}
		t, err := p.tags.BucketTags(ctx, bucket)
		if err != nil {
			return nil, fmt.Errorf("policy: tags of bucket %s: %w", bucket, err)
		}
		tags, read = t, true
		return tags, nil
	})
}

// ResolveWithTags is Resolve for a bucket whose tags the caller has read.
func (p *Policy) ResolveWithTags(bucket string, tags map[string]string) Match {
	m, _ := p.resolve(bucket, func() (map[string]string, error) { return tags, nil })
	return m
}

func (p *Policy) resolve(bucket string, tagsOf func() (map[string]string, error)) (Match, error) {
	for i, ex := range p.exclusions {
		ok, err := ex.matches(bucket, tagsOf)
		if err != nil {
			return Match{}, err
		}
		if ok {
			by := fmt.Sprintf("exclude[%d]", i)
			if ex.label != "" {
				by = ex.label
			}
			return Match{By: by}, nil
		}
	}
	if b, ok := p.Buckets[bucket]; ok {
		return Match{Bucket: b, Managed: true, By: "buckets." + bucket}, nil
	}
	for i, r := range p.rules {
		ok, err := r.matches(bucket, tagsOf)
		if err != nil {
			return Match{}, err
		}
		if !ok {
			continue
		}
		m := Match{Bucket: p.Rules[i].Settings, Managed: true, By: fmt.Sprintf("rules[%d] %s", i, p.Rules[i].Name), Rule: p.Rules[i].Name}
		if ov, ok := p.overrides[bucket]; ok {
			m.Bucket, m.Override = ov[i], true
		}
		return m, nil
	}
	return Match{}, nil
}

// Lookup returns a bucket's target. A bucket whose tags cannot be read is
// reported unmanaged: the object path uses Resolve, which returns the error
// so that the object is retried instead.
func (p *Policy) Lookup(bucket string) (Bucket, bool) {
	m, err := p.Resolve(context.Background(), bucket)
	return m.Bucket, err == nil && m.Managed
}

// compiledSelector is a Selector made ready for lookups: exact names in a
// set, patterns in a list.
type compiledSelector struct {
	all      bool
	exact    map[string]bool
	patterns []string
	tags     map[string]string
	// label names an exclusion the deployment adds (Excluding) in place of
	// its position.
	label string
}

func (c compiledSelector) matchesName(bucket string) bool {
	if c.all || (len(c.exact) == 0 && len(c.patterns) == 0) || c.exact[bucket] {
		return true
	}
	for _, p := range c.patterns {
		if ok, _ := path.Match(p, bucket); ok {
			return true
		}
	}
	return false
}

func (c compiledSelector) matches(bucket string, tagsOf func() (map[string]string, error)) (bool, error) {
	if !c.matchesName(bucket) {
		return false, nil
	}
	if len(c.tags) == 0 {
		return true, nil
	}
	tags, err := tagsOf()
	if err != nil {
		return false, err
	}
	for k, want := range c.tags {
		got, ok := tags[k]
		if !ok || (want != "*" && got != want) {
			return false, nil
		}
	}
	return true, nil
}

// namePattern is what a name pattern may hold: bucket-name characters and
// the two wildcards IAM ARNs share with path.Match.
var namePattern = regexp.MustCompile(`^[a-z0-9.*?-]{1,63}$`)

// compile validates a selector, naming where it is.
func (s Selector) compile(where string) (compiledSelector, error) {
	c := compiledSelector{all: s.All, tags: s.Tags}
	switch {
	case s.All && (len(s.Names) > 0 || len(s.Tags) > 0):
		return c, fmt.Errorf("%s.all: select all buckets, or by names or tags, not both", where)
	case !s.All && len(s.Names) == 0 && len(s.Tags) == 0:
		return c, fmt.Errorf("%s: selects nothing (give all, names or tags)", where)
	}
	for i, n := range s.Names {
		at := fmt.Sprintf("%s.names[%d]", where, i)
		switch {
		case !namePattern.MatchString(n):
			return c, fmt.Errorf("%s: %q is neither a bucket name nor a pattern of bucket-name characters with * and ?", at, n)
		case !strings.ContainsAny(n, "*?"):
			if !bucketNamePattern.MatchString(n) {
				return c, fmt.Errorf("%s: %q is not a valid bucket name", at, n)
			}
			if c.exact == nil {
				c.exact = map[string]bool{}
			}
			c.exact[n] = true
		default:
			c.patterns = append(c.patterns, n)
		}
	}
	for _, k := range sortedKeys(s.Tags) {
		if k == "" || len(k) > 128 {
			return c, fmt.Errorf("%s.tags: key %q must be 1 to 128 characters", where, k)
		}
		if v := s.Tags[k]; v == "" || len(v) > 256 {
			return c, fmt.Errorf("%s.tags.%s: value %q must be 1 to 256 characters (\"*\" for any value)", where, k, v)
		}
	}
	return c, nil
}
