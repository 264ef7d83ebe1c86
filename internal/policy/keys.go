package policy

import "fmt"

// targets calls f on every resolved target the policy holds (listed
// buckets, rules, overrides), in a stable order, with where it is.
func (p *Policy) targets(f func(where string, b *Bucket) error) error {
	for _, name := range sortedKeys(p.Buckets) {
		b := p.Buckets[name]
		if err := f("buckets."+name, &b); err != nil {
			return err
		}
		p.Buckets[name] = b
	}
	for i := range p.Rules {
		if err := f(fmt.Sprintf("rules[%d].settings", i), &p.Rules[i].Settings); err != nil {
			return err
		}
	}
	for _, name := range p.overrideNames {
		for i := range p.overrides[name] {
			if err := f(fmt.Sprintf("overrides.%s (over rule %s)", name, p.Rules[i].Name), &p.overrides[name][i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// clone copies what targets may change, so that a derived policy leaves
// the configured one as it is.
func (p *Policy) clone() *Policy {
	out := *p
	out.Buckets = make(map[string]Bucket, len(p.Buckets))
	for k, v := range p.Buckets {
		out.Buckets[k] = v
	}
	out.Rules = append([]Rule(nil), p.Rules...)
	if p.overrides != nil {
		out.overrides = make(map[string][]Bucket, len(p.overrides))
		for k, v := range p.overrides {
			out.overrides[k] = append([]Bucket(nil), v...)
		}
	}
	return &out
}

// HasBudgets reports a budget of objects or KMS requests a second.
func (p *Policy) HasBudgets() bool {
	if p.MaxKMSRequestsPerSecond > 0 {
		return true
	}
	found := false
	_ = p.clone().targets(func(_ string, b *Bucket) error {
		found = found || b.MaxObjectsPerSecond > 0
		return nil
	})
	return found
}

// Aliases lists the aliases the policy names keys by, each once.
func (p *Policy) Aliases() []string {
	seen := map[string]bool{}
	var out []string
	_ = p.clone().targets(func(_ string, b *Bucket) error {
		if a := b.KeyAlias; a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
		return nil
	})
	return out
}

// Resolved reports that every target is a key ARN.
func (p *Policy) Resolved() bool {
	ok := true
	_ = p.clone().targets(func(_ string, b *Bucket) error {
		ok = ok && keyARNPattern.MatchString(b.KMSKeyARN)
		return nil
	})
	return ok
}

// WithKeys returns a copy of the policy whose aliases are replaced by the
// key ARNs keyOf gives (as KMS DescribeKey resolves them), checked as a
// configured key ARN is. The policy itself is unchanged, so that it can be
// resolved again when an alias is repointed.
func (p *Policy) WithKeys(keyOf func(alias string) (string, error)) (*Policy, error) {
	out := p.clone() // every setting, then the targets with their keys resolved
	resolved := map[string]string{}
	err := out.targets(func(where string, b *Bucket) error {
		if b.KeyAlias == "" {
			return nil
		}
		arn, ok := resolved[b.KeyAlias]
		if !ok {
			var err error
			if arn, err = keyOf(b.KeyAlias); err != nil {
				return fmt.Errorf("policy: %s.kmsKeyArn: alias %s: %w", where, b.KeyAlias, err)
			}
			resolved[b.KeyAlias] = arn
		}
		m := keyARNPattern.FindStringSubmatch(arn)
		if m == nil {
			return fmt.Errorf("policy: %s.kmsKeyArn: alias %s resolved to %q, not a key ARN", where, b.KeyAlias, arn)
		}
		if b.ExpectedOwner != "" && b.ExpectedOwner != m[1] {
			return fmt.Errorf("policy: %s.kmsKeyArn: alias %s names a key of account %s, not the bucket owner %s", where, b.KeyAlias, m[1], b.ExpectedOwner)
		}
		b.KMSKeyARN, b.ExpectedOwner = arn, m[1]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
