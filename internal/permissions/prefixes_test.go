package permissions

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/emulator/iam"
	"github.com/s3rekey/s3rekey/internal/policy"
)

const account = "111122223333"

func encryptPolicy(t *testing.T, r Resources) *iam.Policy {
	t.Helper()
	p, err := iam.ParsePolicy(PolicyDocument(Encrypt(r)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func resourcesOf(t *testing.T, doc string) Resources {
	t.Helper()
	r := Resources{Partition: "aws", Region: "us-east-1", Account: account, WorkQueueARN: "w", WorkDLQARN: "d"}
	r.FromPolicy(mustParse(t, doc))
	return r
}

func statement(stmts []Statement, sid string) (Statement, bool) {
	for _, st := range stmts {
		if st.Sid == sid {
			return st, true
		}
	}
	return Statement{}, false
}

// decide is the encrypt role's answer for an action on bucket/key, in the
// deployment's account.
func decide(p *iam.Policy, action, bucket, key string) iam.Decision {
	return p.Evaluate(iam.Request{Action: action, Resource: "arn:aws:s3:::" + bucket + "/" + key,
		Context: map[string][]string{"aws:ResourceAccount": {account}}})
}

// The object grants follow the prefixes in scope, and an explicit Deny
// covers the excluded prefixes of exactly named buckets, never a key in
// scope (IAM's * spans "/", docs/IAM/latest/UserGuide/reference_policies_elements_resource.md,
// so patterns get no Deny).
func TestObjectGrantsFollowPrefixes(t *testing.T) {
	names := func(n int) string {
		var b []string
		for i := range n {
			b = append(b, fmt.Sprintf("%q", fmt.Sprintf("named-%02d", i)))
		}
		return strings.Join(b, ",")
	}
	cases := []struct {
		name, policy string
		objects      []string // UpdateObjectEncryption's resources
		copies       []string // CopyInPlace's (nil: no statement)
		denied       []string // DenyExcludedPrefixes' (nil: no statement)
		accountWide  bool
	}{
		{"listed with prefixes", `{"buckets":{
			"b1b":{"kmsKeyArn":"` + key + `","includePrefixes":["data/","logs/"],"excludePrefixes":["data/tmp/"]},
			"b2b":{"kmsKeyArn":"` + key + `","excludePrefixes":["tmp/","cache"],"unsupportedSources":{"notEncrypted":"copy"}}}}`,
			[]string{"arn:aws:s3:::b1b/data/*", "arn:aws:s3:::b1b/logs/*", "arn:aws:s3:::b2b/*"},
			[]string{"arn:aws:s3:::b2b/*"},
			[]string{"arn:aws:s3:::b1b/data/tmp/*", "arn:aws:s3:::b2b/cache*", "arn:aws:s3:::b2b/tmp/*"}, false},
		{"name rule with prefixes", `{"rules":[{"name":"p","select":{"names":["prod-*","billing"]},
			"settings":{"kmsKeyArn":"` + key + `","includePrefixes":["in/"],"excludePrefixes":["in/tmp/"]}}]}`,
			[]string{"arn:aws:s3:::billing/in/*", "arn:aws:s3:::prod-*/in/*"}, nil,
			[]string{"arn:aws:s3:::billing/in/tmp/*"}, false},
		{"a later all rule keeps the prefix in scope for a tag-and-name rule's bucket", `{"rules":[
			{"name":"t","select":{"names":["billing"],"tags":{"k":"v"}},"settings":{"kmsKeyArn":"` + key + `","excludePrefixes":["tmp/"]}},
			{"name":"a","select":{"all":true},"settings":{"kmsKeyArn":"` + key + `"}}]}`,
			[]string{"arn:aws:s3:::*/*"}, nil, nil, true},
		{"an override that drops the exclusion", `{"rules":[{"name":"p","select":{"names":["billing","ledger"]},
			"settings":{"kmsKeyArn":"` + key + `","excludePrefixes":["tmp/"]}}],"overrides":{"ledger":{"excludePrefixes":["old/"]}}}`,
			[]string{"arn:aws:s3:::billing/*", "arn:aws:s3:::ledger/*"}, nil,
			[]string{"arn:aws:s3:::billing/tmp/*", "arn:aws:s3:::ledger/old/*"}, false},
		{"tag rule with prefixes, copying", `{"rules":[{"name":"t","select":{"tags":{"k":"v"}},
			"settings":{"kmsKeyArn":"` + key + `","includePrefixes":["data/"],"excludePrefixes":["data/tmp/"],"unsupportedSources":{"dsseKms":"copy-downgrade"}}}]}`,
			[]string{"arn:aws:s3:::*/data/*"}, []string{"arn:aws:s3:::*/data/*"}, nil, true},
		{"an all rule that copies", `{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"}},"rules":[{"name":"a","select":{"all":true},
			"settings":{"kmsKeyArn":"` + key + `","unsupportedSources":{"notEncrypted":"copy"}}}]}`,
			[]string{"arn:aws:s3:::*/*"}, []string{"arn:aws:s3:::*/*"}, nil, true},
		{"an override that copies one bucket of a name rule", `{"rules":[{"name":"p","select":{"names":["prod-*"]},
			"settings":{"kmsKeyArn":"` + key + `","includePrefixes":["in/"]}}],"overrides":{"prod-legacy":{"unsupportedSources":{"notEncrypted":"copy"}}}}`,
			[]string{"arn:aws:s3:::prod-*/in/*"}, []string{"arn:aws:s3:::prod-legacy/in/*"}, nil, false},
		{"more than 20 names, with prefixes", `{"rules":[{"name":"p","select":{"names":[` + names(MaxListed+1) + `]},
			"settings":{"kmsKeyArn":"` + key + `","includePrefixes":["in/"],"excludePrefixes":["in/tmp/"]}}]}`,
			[]string{"arn:aws:s3:::*/in/*"}, nil,
			func() []string {
				var out []string
				for i := range MaxListed + 1 {
					out = append(out, fmt.Sprintf("arn:aws:s3:::named-%02d/in/tmp/*", i))
				}
				return out
			}(), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := resourcesOf(t, tc.policy)
			if r.AccountWideBuckets != tc.accountWide {
				t.Errorf("account-wide %v, want %v", r.AccountWideBuckets, tc.accountWide)
			}
			stmts := Encrypt(r)
			for _, sid := range []string{"ReadObjectState", "UpdateObjectEncryption"} {
				st, _ := statement(stmts, sid)
				if !slices.Equal(st.Resources, tc.objects) {
					t.Errorf("%s on %v, want %v", sid, st.Resources, tc.objects)
				}
				if got := st.Condition["StringEquals"]["aws:ResourceAccount"]; tc.accountWide != slices.Equal(got, []string{account}) {
					t.Errorf("%s's condition %v, account-wide %v", sid, st.Condition, tc.accountWide)
				}
			}
			if st, ok := statement(stmts, "CopyInPlace"); ok != (tc.copies != nil) || !slices.Equal(st.Resources, tc.copies) {
				t.Errorf("CopyInPlace on %v, want %v", st.Resources, tc.copies)
			}
			deny, ok := statement(stmts, DenyExcludedSid)
			if ok != (tc.denied != nil) || !slices.Equal(deny.Resources, tc.denied) {
				t.Errorf("the Deny on %v, want %v", deny.Resources, tc.denied)
			}
			if ok {
				if deny.Effect != EffectDeny || len(deny.Condition) != 0 {
					t.Errorf("the Deny is %q with condition %v", deny.Effect, deny.Condition)
				}
				for _, a := range deny.Actions {
					if !strings.Contains(a, "Object") && a != "s3:AbortMultipartUpload" {
						t.Errorf("the Deny refuses %s, not an object action", a)
					}
				}
				for _, sid := range objectStatements {
					st, _ := statement(stmts, sid)
					for _, a := range st.Actions {
						if !slices.Contains(deny.Actions, a) {
							t.Errorf("the Deny does not refuse %s (%s)", a, sid)
						}
					}
				}
			}
		})
	}
}

// What the rendered statements decide, evaluated as IAM does (the
// emulator's IAM): in scope allowed, excluded refused explicitly, copies
// only in copy buckets, listings never refused by the Deny.
func TestObjectGrantsDecide(t *testing.T) {
	r := resourcesOf(t, `{"buckets":{
		"b1b":{"kmsKeyArn":"`+key+`","includePrefixes":["data/"],"excludePrefixes":["data/tmp/"]},
		"b2b":{"kmsKeyArn":"`+key+`","excludePrefixes":["tmp/"],"unsupportedSources":{"notEncrypted":"copy"}}}}`)
	r.ReadsBucketTags = true
	p := encryptPolicy(t, r)
	for _, tc := range []struct {
		action, bucket, key string
		want                iam.Decision
	}{
		{"s3:UpdateObjectEncryption", "b1b", "data/x", iam.Allowed},
		{"s3:PutObject", "b1b", "data/tmp2/x", iam.Allowed},
		{"s3:PutObject", "b1b", "data/tmp/x", iam.ExplicitDeny},
		{"s3:GetObject", "b1b", "other/x", iam.ImplicitDeny},
		{"s3:GetObject", "b2b", "x/tmp/y", iam.Allowed},
		{"s3:GetObjectVersion", "b2b", "tmp/y", iam.ExplicitDeny},
		{"s3:PutObjectTagging", "b2b", "a", iam.Allowed},
		{"s3:PutObjectTagging", "b2b", "tmp/a", iam.ExplicitDeny},
		{"s3:PutObjectTagging", "b1b", "data/x", iam.ImplicitDeny},
		{"s3:AbortMultipartUpload", "b1b", "data/x", iam.ImplicitDeny},
		{"s3:UpdateObjectEncryption", "other", "x", iam.ImplicitDeny},
	} {
		if got := decide(p, tc.action, tc.bucket, tc.key); got != tc.want {
			t.Errorf("%s on %s/%s: %v, want %v", tc.action, tc.bucket, tc.key, got, tc.want)
		}
	}
	for _, bucket := range []string{"b1b", "b2b"} {
		if got := p.Evaluate(iam.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + bucket,
			Context: map[string][]string{"s3:prefix": {"tmp/"}}}); got != iam.Allowed {
			t.Errorf("ListBucket of %s with prefix tmp/: %v", bucket, got)
		}
	}
}

// A Deny pattern that overlaps the report location is left out: report
// parts are always written.
func TestDenyLeavesTheReportLocation(t *testing.T) {
	r := Resources{Partition: "aws", Region: "us-east-1", Account: account, WorkQueueARN: "w", WorkDLQARN: "d",
		JobsTableARN: "t", ReportObjectsARN: "arn:aws:s3:::reports-bkt/s3rekey/*", ReportKeyARN: "k"}
	r.FromPolicy(mustParse(t, `{"buckets":{"reports-bkt":{"kmsKeyArn":"`+key+`","excludePrefixes":["s3r","tmp/"]}}}`))
	deny, _ := statement(Encrypt(r), DenyExcludedSid)
	if !slices.Equal(deny.Resources, []string{"arn:aws:s3:::reports-bkt/tmp/*"}) {
		t.Errorf("the Deny on %v", deny.Resources)
	}
	p := encryptPolicy(t, r)
	if got := decide(p, "s3:PutObject", "reports-bkt", "s3rekey/job/part-1"); got != iam.Allowed {
		t.Errorf("a report part: %v", got)
	}
}

// At any bucket count, with prefixes, the role's policy stays within IAM's
// 10,240 characters for a role's inline policies (whitespace not counted;
// docs/IAM/latest/UserGuide/reference_iam-quotas.md; a managed policy's
// 6,144 does not apply, the stack's grants are inline): the Deny's list,
// then the prefixes, fall back when they do not fit.
func TestPrefixedGrantsWithinThePolicyLimit(t *testing.T) {
	// estate is n buckets with settings, in which OWN is the bucket's number.
	estate := func(n int, settings string) string {
		var b []string
		for i := range n {
			own := strings.ReplaceAll(settings, "OWN", fmt.Sprintf("%05d", i))
			b = append(b, fmt.Sprintf(`"bucket-with-a-rather-long-name-%05d":{"kmsKeyArn":%q,%s}`, i, key, own))
		}
		return `{"buckets":{` + strings.Join(b, ",") + `}}`
	}
	for _, tc := range []struct {
		name, policy string
		deny         bool
		objects      string
	}{
		{"5,000 buckets, the same prefixes", estate(5000, `"includePrefixes":["data/"],"excludePrefixes":["data/tmp/"]`), false, "arn:aws:s3:::*/data/*"},
		{"5,000 buckets, their own prefixes", estate(5000, `"includePrefixes":["data/OWN/"],"excludePrefixes":["logs/"]`), false, "arn:aws:s3:::*/*"},
		{"20 buckets, long prefixes", estate(20, `"includePrefixes":["`+strings.Repeat("p", 200)+`/"],"excludePrefixes":["`+strings.Repeat("p", 200)+`/tmp/"]`),
			false, ""},
		{"20 buckets, short prefixes", estate(20, `"excludePrefixes":["tmp/"]`), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := resourcesOf(t, tc.policy)
			r.TargetKeyAliases = []string{"alias/a", "alias/b"}
			r.JobsTableARN, r.ReportObjectsARN, r.ReportKeyARN = "t", "arn:aws:s3:::r/p/*", "k"
			stmts := Encrypt(r)
			for role, doc := range map[string][]byte{"encrypt": PolicyDocument(stmts), "planner": PolicyDocument(Planner(r)), "enroll": PolicyDocument(Enroll(r))} {
				if len(doc) > RolePolicyLimit {
					t.Errorf("%s's policy is %d characters", role, len(doc))
				}
			}
			if _, ok := statement(stmts, DenyExcludedSid); ok != tc.deny {
				t.Errorf("Deny %v, want %v", ok, tc.deny)
			}
			st, _ := statement(stmts, "UpdateObjectEncryption")
			if tc.objects != "" && !slices.Equal(st.Resources, []string{tc.objects}) {
				t.Errorf("UpdateObjectEncryption on %v, want %s", st.Resources, tc.objects)
			}
			t.Logf("encrypt's policy: %d characters", len(PolicyDocument(stmts)))
		})
	}
}

// tags is a TagSource of fixed tags.
type tags map[string]map[string]string

// Random policies over a few names, prefixes and tags: every object in
// scope under the policy's own resolution (first rule, overrides, tags) is
// allowed by the rendered statements, and none is explicitly denied; an
// object a copy setting governs may be copied. Bounded by count.
func TestObjectGrantsNeverRefuseWhatIsInScope(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 1))
	bucketNames := []string{"aa1", "aa2", "ab1", "bb1", "bb2"}
	patterns := append([]string{"aa*", "a?1", "*1"}, bucketNames...)
	prefixes := []string{"a/", "a/b/", "b/", "tmp/", "t", "x/tmp/"}
	keys := []string{"a/x", "a/b/x", "b/x", "tmp/x", "tx", "x/tmp/y", "c", "a/tmp/x"}
	pick := func(from []string, max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			if p := from[rng.IntN(len(from))]; !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return out
	}
	settings := func() map[string]any {
		s := map[string]any{"kmsKeyArn": key}
		if inc := pick(prefixes, 2); len(inc) > 0 {
			s["includePrefixes"] = inc
		}
		if exc := pick(prefixes, 2); len(exc) > 0 {
			s["excludePrefixes"] = exc
		}
		if rng.IntN(3) == 0 {
			s["unsupportedSources"] = map[string]string{"notEncrypted": "copy"}
		}
		return s
	}
	valid, denials := 0, 0
	for range 400 {
		doc := map[string]any{}
		listed := map[string]any{}
		for _, b := range pick(bucketNames, 2) {
			listed[b] = settings()
		}
		if len(listed) > 0 {
			doc["buckets"] = listed
		}
		var rules []any
		for i := range rng.IntN(4) {
			sel := map[string]any{}
			switch rng.IntN(4) {
			case 0:
				sel["names"] = pick(patterns, 2)
			case 1:
				sel["tags"] = map[string]string{"k": "v"}
			case 2:
				sel["names"], sel["tags"] = pick(patterns, 2), map[string]string{"k": "v"}
			default:
				sel["all"] = true
			}
			rules = append(rules, map[string]any{"name": fmt.Sprintf("r%d", i), "select": sel, "settings": settings()})
		}
		if len(rules) > 0 {
			doc["rules"] = rules
			overrides := map[string]any{}
			for _, b := range pick(bucketNames, 2) {
				if _, ok := listed[b]; !ok {
					overrides[b] = settings()
				}
			}
			if len(overrides) > 0 {
				doc["overrides"] = overrides
			}
		}
		raw, _ := json.Marshal(doc)
		pol, err := policy.Parse(raw)
		if err != nil {
			continue // a rule after an all rule, an empty selector...
		}
		valid++
		r := Resources{Partition: "aws", Region: "us-east-1", Account: account, WorkQueueARN: "w", WorkDLQARN: "d"}
		r.FromPolicy(pol)
		p := encryptPolicy(t, r)
		bucketTags := tags{}
		for _, b := range bucketNames {
			if rng.IntN(2) == 0 {
				bucketTags[b] = map[string]string{"k": "v"}
			}
		}
		for _, b := range bucketNames {
			m := pol.ResolveWithTags(b, bucketTags[b])
			for _, k := range keys {
				inScope := m.Managed && m.Bucket.InScope(k)
				for _, action := range []string{"s3:GetObject", "s3:UpdateObjectEncryption", "s3:PutObject"} {
					got := decide(p, action, b, k)
					if got == iam.ExplicitDeny {
						denials++
					}
					if inScope && got != iam.Allowed {
						t.Fatalf("policy %s, tags %v: %s on %s/%s (in scope) is %v", raw, bucketTags, action, b, k, got)
					}
				}
				if inScope && m.Bucket.CopiesAny() {
					if got := decide(p, "s3:PutObjectTagging", b, k); got != iam.Allowed {
						t.Fatalf("policy %s, tags %v: copying %s/%s (in scope) is %v", raw, bucketTags, b, k, got)
					}
				}
			}
		}
	}
	if valid < 150 || denials == 0 {
		t.Fatalf("%d valid policies, %d explicit denials: the generator is broken", valid, denials)
	}
}
