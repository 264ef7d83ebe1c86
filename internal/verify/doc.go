// Package verify proves which KMS key every object version of the
// governed buckets is under, compared with the policy, and writes the
// answer as signed evidence.
//
// Sources, best first, chosen per bucket and stated in the result:
//   - the bucket's S3 Metadata live inventory table (package metatable):
//     no request to any object;
//   - the latest S3 Inventory report and a HEAD of each SSE-KMS version
//     (reports carry no key ARN), priced before the HEADs and paced by
//     the bucket's budget;
//   - a listing of every version and a HEAD of each.
//
// Every result says how fresh its source is and what it could not see.
package verify
