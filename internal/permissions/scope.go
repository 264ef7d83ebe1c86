package permissions

import (
	"slices"
	"sort"
	"strings"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// MaxListed is how many bucket names and patterns, or target key ARNs, the
// statements list before they grant the account's buckets (conditioned on
// the account) or keys (through S3 only): 3 statements × 2 ARNs × 20 names
// stay far below IAM's 10,240 characters per role, at any bucket count.
const MaxListed = 20

// FromPolicy fills what the statements say about buckets and keys from the
// policy, as the stack deploys it and the emulator binds it: the buckets
// (names and patterns while they are few, the account's buckets
// otherwise), the copy buckets, the target keys by ARN and by alias, and
// whether tags are read.
func (r *Resources) FromPolicy(p *policy.Policy) {
	r.ManagedBuckets, r.AccountWideBuckets, r.CopyBuckets, r.AccountWideCopies = p.BucketScope(MaxListed)
	r.ReadsBucketTags = p.UsesTags()
	r.TargetKeyARNs, r.TargetKeyAliases = nil, nil
	for _, b := range p.Targets() {
		switch {
		case policy.IsAlias(b.KMSKeyARN):
			if a := b.KMSKeyARN[strings.Index(b.KMSKeyARN, "alias/"):]; !slices.Contains(r.TargetKeyAliases, a) {
				r.TargetKeyAliases = append(r.TargetKeyAliases, a)
			}
		case !slices.Contains(r.TargetKeyARNs, b.KMSKeyARN):
			r.TargetKeyARNs = append(r.TargetKeyARNs, b.KMSKeyARN)
		}
	}
	sort.Strings(r.TargetKeyAliases)
	sort.Strings(r.TargetKeyARNs)
	if len(r.TargetKeyARNs) > MaxListed {
		// As many distinct keys as that would outgrow the role's policy:
		// any key of the account, used through S3 of the region only.
		r.TargetKeyARNs = []string{r.anyKey()}
	}
	r.scopeObjects(p)
}

// RolePolicyLimit is IAM's quota on a role's inline policies together, in
// characters, whitespace not counted (IAM User Guide,
// reference_iam-quotas.md); the stack renders each role's statements into
// one inline policy.
const RolePolicyLimit = 10240

// tokenMargin is what the encrypt role's policy keeps free of the limit
// for the ARNs the stack knows only as short CloudFormation tokens when
// it measures (queues, table, report location and key).
const tokenMargin = 1024

// scopeObjects narrows the object grants to the policy's prefixes, with the
// Deny on excluded prefixes, as far as the encrypt role's policy stays
// within RolePolicyLimit: what does not fit falls back, the Deny's list
// or the prefixes (every object of the managed buckets, as the bucket
// grants), whichever lets the other stay, then both.
func (r *Resources) scopeObjects(p *policy.Policy) {
	scope := p.ObjectScope(r.AccountWideBuckets, r.AccountWideCopies)
	for _, try := range []struct{ prefixes, deny bool }{{true, true}, {false, true}, {true, false}, {false, false}} {
		r.ObjectsInScope, r.CopyObjectsInScope, r.ExcludedObjects = nil, nil, nil
		if try.prefixes {
			r.ObjectsInScope, r.CopyObjectsInScope = scope.Objects, scope.Copies
		}
		if try.deny {
			r.ExcludedObjects = scope.Excluded
		}
		if len(PolicyDocument(Encrypt(*r))) <= RolePolicyLimit-tokenMargin {
			return
		}
	}
}
