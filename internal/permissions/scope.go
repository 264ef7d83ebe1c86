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
}
