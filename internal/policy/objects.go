package policy

import (
	"path"
	"sort"
	"strings"
)

// ObjectScope is which objects the policy can act on, as IAM resource
// patterns over "bucket/key" (the part of an S3 object ARN after
// arn:PARTITION:s3:::), for object grants that follow the prefixes.
type ObjectScope struct {
	// Objects cover every object some setting puts in scope: "NAME/*", or
	// "NAME/PREFIX*" for each of the setting's includePrefixes, NAME being
	// a bucket name, a name pattern, or "*" for a setting that selects by
	// tag or all buckets (or for every setting, with accountWide).
	Objects []string
	// Copies are the same, of the settings that copy in place.
	Copies []string
	// Excluded are "NAME/PREFIX*" of exactly named buckets whose every
	// setting that could govern them excludes every key under PREFIX: an
	// explicit Deny on them never refuses an object in scope. Names with
	// wildcards get none: IAM's * also matches "/" (IAM User Guide,
	// reference_policies_elements_resource.md, "Using wildcards in
	// resource ARNs"), so "prod-*/tmp/*" would also refuse
	// prod-a/data/tmp/x, which an exclusion of "tmp/" keeps in scope.
	Excluded []string
}

// scopeUnit is one setting and the bucket names or patterns it governs.
type scopeUnit struct {
	names    []string
	settings Bucket
}

// ObjectScope says which objects the policy can act on. accountWide and
// copiesAccountWide are BucketScope's: with them, every setting's names
// are "*".
func (p *Policy) ObjectScope(accountWide, copiesAccountWide bool) ObjectScope {
	var units []scopeUnit
	for _, name := range sortedKeys(p.Buckets) {
		units = append(units, scopeUnit{[]string{name}, p.Buckets[name]})
	}
	for i, r := range p.Rules {
		names := []string{"*"}
		if !r.Select.All && len(r.Select.Names) > 0 {
			names = r.Select.Names
		}
		units = append(units, scopeUnit{names, r.Settings})
		for _, name := range p.overrideNames {
			if p.rules[i].matchesName(name) {
				units = append(units, scopeUnit{[]string{name}, p.overrides[name][i]})
			}
		}
	}
	var out ObjectScope
	out.Objects = objectPatterns(units, accountWide)
	var copying []scopeUnit
	for _, u := range units {
		if u.settings.CopiesAny() {
			copying = append(copying, u)
		}
	}
	out.Copies = objectPatterns(copying, copiesAccountWide)
	out.Excluded = p.excludedPatterns(units)
	return out
}

// objectPatterns are the units' objects, with no pattern another covers.
func objectPatterns(units []scopeUnit, accountWide bool) []string {
	prefixes := map[string][]string{} // bucket name or pattern → key prefixes ("" all)
	for _, u := range units {
		names := u.names
		if accountWide {
			names = []string{"*"}
		}
		for _, n := range names {
			if len(u.settings.IncludePrefixes) == 0 {
				prefixes[n] = append(prefixes[n], "")
			}
			for _, pfx := range u.settings.IncludePrefixes {
				prefixes[n] = append(prefixes[n], literalPart(pfx))
			}
		}
	}
	var out []string
	for n, list := range prefixes {
		for _, pfx := range minimalPrefixes(list) {
			if !coveredByPattern(prefixes, n, pfx) {
				out = append(out, n+"/"+pfx+"*")
			}
		}
	}
	sort.Strings(out)
	return out
}

// coveredByPattern reports that another bucket pattern's grant covers
// name/pfx: "*" covers every name, and a pattern an exact name it matches.
func coveredByPattern(prefixes map[string][]string, name, pfx string) bool {
	for m, list := range prefixes {
		if m == name || !strings.ContainsAny(m, "*?") || !coveredBy(list, pfx) {
			continue
		}
		if m == "*" {
			return true
		}
		if ok, _ := path.Match(m, name); ok && !strings.ContainsAny(name, "*?") {
			return true
		}
	}
	return false
}

// literalPart is a prefix up to its first character IAM would read as a
// wildcard or a policy variable (* ? $): granting "a*" for the prefix
// "a*b/" covers it (a wider grant, never a narrower one).
func literalPart(pfx string) string {
	if i := strings.IndexAny(pfx, "*?$"); i >= 0 {
		return pfx[:i]
	}
	return pfx
}

// minimalPrefixes drops duplicates and every prefix a shorter one covers.
func minimalPrefixes(list []string) []string {
	sorted := append([]string(nil), list...)
	sort.Strings(sorted)
	var out []string
	for _, pfx := range sorted {
		if !coveredBy(out, pfx) {
			out = append(out, pfx)
		}
	}
	return out
}

func coveredBy(prefixes []string, pfx string) bool {
	for _, q := range prefixes {
		if strings.HasPrefix(pfx, q) {
			return true
		}
	}
	return false
}

// excludedPatterns are the exclusions an explicit Deny may cover: for each
// exactly named bucket, the excluded prefixes that every setting that
// could govern it excludes.
func (p *Policy) excludedPatterns(units []scopeUnit) []string {
	seen := map[string]bool{}
	var out []string
	for _, u := range units {
		for _, name := range u.names {
			if seen[name] || strings.ContainsAny(name, "*?") || IsDirectoryBucket(name) {
				continue
			}
			seen[name] = true
			governors := p.governors(name)
			for _, pfx := range governorExclusions(governors) {
				out = append(out, name+"/"+pfx+"*")
			}
		}
	}
	sort.Strings(out)
	return out
}

// governors are the settings that could govern a bucket: its listing, or
// each rule its name can match, in order, up to the first that selects by
// name alone (tags may or may not select it before then). Exclusions are
// left out: an excluded bucket is not managed, so no Deny can refuse it
// anything needed.
func (p *Policy) governors(bucket string) []Bucket {
	if b, ok := p.Buckets[bucket]; ok {
		return []Bucket{b}
	}
	var out []Bucket
	for i, r := range p.rules {
		if !r.matchesName(bucket) {
			continue
		}
		b := p.Rules[i].Settings
		if ov, ok := p.overrides[bucket]; ok {
			b = ov[i]
		}
		out = append(out, b)
		if len(r.tags) == 0 {
			break
		}
	}
	return out
}

// governorExclusions are the excluded prefixes (without wildcard
// characters) under which no key is in scope for any of the settings.
func governorExclusions(governors []Bucket) []string {
	var candidates []string
	for _, g := range governors {
		for _, pfx := range g.ExcludePrefixes {
			if !strings.ContainsAny(pfx, "*?$") {
				candidates = append(candidates, pfx)
			}
		}
	}
	var out []string
	for _, pfx := range candidates {
		excludedByAll := true
		for _, g := range governors {
			excludedByAll = excludedByAll && g.excludesAllUnder(pfx)
		}
		if excludedByAll {
			out = append(out, pfx)
		}
	}
	return minimalPrefixes(out)
}

// excludesAllUnder reports that no key starting with pfx is in scope: an
// excluded prefix covers it, or no included prefix can start a key under it.
func (b Bucket) excludesAllUnder(pfx string) bool {
	if coveredBy(b.ExcludePrefixes, pfx) {
		return true
	}
	if len(b.IncludePrefixes) == 0 {
		return false
	}
	for _, inc := range b.IncludePrefixes {
		if strings.HasPrefix(pfx, inc) || strings.HasPrefix(inc, pfx) {
			return false
		}
	}
	return true
}
