package policy

import (
	"context"
	"fmt"
)

// Finding is something a policy says that the account does not bear out:
// a rule that governs no bucket, a listed bucket that does not exist.
type Finding struct {
	Where   string `json:"where"`
	Problem string `json:"problem"`
}

func (f Finding) String() string { return f.Where + ": " + f.Problem }

// Check resolves every bucket of the account and reports the rules that
// govern none of them, listed buckets and overrides naming buckets the
// account does not have, and overrides whose bucket no rule governs.
// It returns each bucket's match too, in the order given.
func (p *Policy) Check(ctx context.Context, buckets []string) ([]Match, []Finding, error) {
	matches := make([]Match, len(buckets))
	for i, name := range buckets {
		m, err := p.Resolve(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		matches[i] = m
	}
	return matches, p.Findings(buckets, matches), nil
}

// Findings is Check's report for buckets already resolved (matches[i] is
// buckets[i]'s).
func (p *Policy) Findings(buckets []string, matches []Match) []Finding {
	governs := make([]int, len(p.Rules))
	exists := make(map[string]bool, len(buckets))
	for i, name := range buckets {
		exists[name] = true
		for j, r := range p.Rules {
			if matches[i].Rule == r.Name {
				governs[j]++
			}
		}
	}
	var out []Finding
	for j, r := range p.Rules {
		if governs[j] == 0 {
			out = append(out, Finding{fmt.Sprintf("rules[%d] %s", j, r.Name), "governs no bucket of the account"})
		}
	}
	for _, name := range sortedKeys(p.Buckets) {
		if !exists[name] {
			out = append(out, Finding{"buckets." + name, "no such bucket in the account"})
		}
	}
	for _, name := range p.overrideNames {
		if !exists[name] {
			out = append(out, Finding{"overrides." + name, "no such bucket in the account"})
			continue
		}
		for i, b := range buckets {
			if b == name && !matches[i].Override {
				out = append(out, Finding{"overrides." + name, "no rule governs the bucket, so the override does nothing"})
			}
		}
	}
	return out
}
