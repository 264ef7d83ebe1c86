package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// generated is a policy of n explicit buckets (each with prefixes and a
// budget, as a real estate has) and, with rules, three rules and two
// exclusions in front of the list.
func generated(n int, rules bool) []byte {
	var b strings.Builder
	b.WriteString(`{"maxKmsRequestsPerSecond":1000,"defaults":{"bucketKeyEnabled":true},`)
	if rules {
		b.WriteString(`"exclude":[{"names":["*-tfstate"]},{"tags":{"s3rekey":"off"}}],"rules":[` +
			`{"name":"confidential","select":{"tags":{"data-classification":"confidential"}},"settings":{"kmsKeyArn":"` + otherKey + `"}},` +
			`{"name":"prod","select":{"names":["prod-*"]},"settings":{"kmsKeyArn":"` + keyARN + `"}},` +
			`{"name":"everything","select":{"all":true},"settings":{"kmsKeyArn":"` + keyARN + `"}}],`)
	}
	b.WriteString(`"buckets":{`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"bucket-%05d":{"kmsKeyArn":%q,"excludePrefixes":["tmp/"],"maxObjectsPerSecond":500}`, i, keyARN)
	}
	b.WriteString("}}")
	return []byte(b.String())
}

// BenchmarkPolicyLoad is the cold start's one read of the policy.
func BenchmarkPolicyLoad(b *testing.B) {
	for _, n := range []int{2, 5000} {
		data := generated(n, true)
		b.Run(fmt.Sprintf("buckets=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPolicyLookup is the per-object lookup: a listed bucket, a bucket
// a name rule governs, and one governed by the last rule after a tag rule
// (the tag source's cache is a map lookup, as buckettags' is).
func BenchmarkPolicyLookup(b *testing.B) {
	for _, n := range []int{2, 5000} {
		p, err := Parse(generated(n, true))
		if err != nil {
			b.Fatal(err)
		}
		p = p.WithTags(&fakeTags{tags: map[string]map[string]string{}})
		for _, bucket := range []string{"bucket-00001", "prod-api", "misc-data"} {
			b.Run(fmt.Sprintf("buckets=%d/%s", n, bucket), func(b *testing.B) {
				ctx := context.Background()
				for b.Loop() {
					if m, err := p.Resolve(ctx, bucket); err != nil || !m.Managed {
						b.Fatal(m, err)
					}
				}
			})
		}
	}
}
