package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/emulator/iam"
	"github.com/s3rekey/s3rekey/internal/permissions"
)

const (
	testAccount = "111122223333"
	testKey     = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// resolved is a template value with the pseudo parameters replaced (aws,
// us-east-1, the account) and every other reference named by its logical
// id, so that a policy document of the template can be evaluated.
func resolved(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if parts, ok := x["Fn::Join"].([]any); ok && len(parts) == 2 {
			var b strings.Builder
			for i, p := range asList(parts[1]) {
				if i > 0 {
					b.WriteString(parts[0].(string))
				}
				b.WriteString(fmt.Sprint(resolved(p)))
			}
			return b.String()
		}
		if ref, ok := x["Ref"].(string); ok {
			switch ref {
			case "AWS::Partition":
				return "aws"
			case "AWS::Region":
				return "us-east-1"
			case "AWS::AccountId":
				return testAccount
			}
			return "ref-" + ref
		}
		if att, ok := x["Fn::GetAtt"].([]any); ok {
			return fmt.Sprintf("ref-%v-%v", att[0], att[1])
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = resolved(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolved(e)
		}
		return out
	}
	return v
}

// encryptGrants is the encrypt role's policy document of the template,
// resolved, and parsed as IAM evaluates it.
func encryptGrants(t *testing.T, tmpl map[string]any) (map[string]map[string]any, *iam.Policy) {
	t.Helper()
	for _, p := range resourcesOf(tmpl, "AWS::IAM::Policy") {
		if !strings.Contains(js(p["Roles"]), "EncryptServiceRole") {
			continue
		}
		doc := resolved(p["PolicyDocument"])
		raw, _ := json.Marshal(doc)
		parsed, err := iam.ParsePolicy(raw)
		if err != nil {
			t.Fatal(err)
		}
		bySid := map[string]map[string]any{}
		for _, st := range asList(doc.(map[string]any)["Statement"]) {
			m := st.(map[string]any)
			if sid, ok := m["Sid"].(string); ok {
				bySid[sid] = m
			}
		}
		return bySid, parsed
	}
	t.Fatal("no policy of the encrypt role")
	return nil, nil
}

func stringsOf(v any) []string {
	var out []string
	for _, e := range asList(v) {
		out = append(out, fmt.Sprint(e))
	}
	slices.Sort(out)
	return out
}

// onObject is the encrypt role's decision on an object of the account.
func onObject(p *iam.Policy, action, bucket, key string) iam.Decision {
	return p.Evaluate(iam.Request{Action: action, Resource: "arn:aws:s3:::" + bucket + "/" + key,
		Context: map[string][]string{"aws:ResourceAccount": {testAccount}}})
}

// The synthesized template's object grants follow the policy's prefixes,
// deny the excluded ones, and grant copy actions only where copies are
// on, for listed buckets and for buckets selected by rule.
func TestObjectGrantsOnTheTemplate(t *testing.T) {
	copyAction := []string{"s3:PutObjectTagging", "s3:GetObjectTagging", "s3:AbortMultipartUpload", "s3:PutObjectAnnotation"}
	type decision struct {
		action, bucket, key string
		want                iam.Decision
	}
	cases := []struct {
		name      string
		edit      func(map[string]any)
		objects   []string // UpdateObjectEncryption's resources
		denied    []string // DenyExcludedPrefixes' (nil: none)
		decisions []decision
	}{
		{"the example: listed buckets, one copying, one excluding logs/", func(map[string]any) {},
			[]string{"arn:aws:s3:::example-archive/*", "arn:aws:s3:::example-customer-uploads/*"},
			[]string{"arn:aws:s3:::example-customer-uploads/logs/*"},
			[]decision{
				{"s3:UpdateObjectEncryption", "example-customer-uploads", "in/a", iam.Allowed},
				{"s3:UpdateObjectEncryption", "example-customer-uploads", "logs/a", iam.ExplicitDeny},
				{"s3:GetObject", "example-customer-uploads", "logs/a", iam.ExplicitDeny},
				{"s3:GetObject", "example-customer-uploads", "app/logs/a", iam.Allowed},
				{"s3:PutObjectTagging", "example-archive", "a", iam.Allowed},
				{"s3:PutObjectTagging", "example-customer-uploads", "a", iam.ImplicitDeny},
				{"s3:UpdateObjectEncryption", "another-bucket", "a", iam.ImplicitDeny},
			}},
		{"included prefixes", func(c map[string]any) {
			uploads := c["buckets"].(map[string]any)["example-customer-uploads"].(map[string]any)
			uploads["includePrefixes"] = []string{"incoming/", "shared/"}
			uploads["excludePrefixes"] = []string{"incoming/tmp/"}
		},
			[]string{"arn:aws:s3:::example-archive/*", "arn:aws:s3:::example-customer-uploads/incoming/*", "arn:aws:s3:::example-customer-uploads/shared/*"},
			[]string{"arn:aws:s3:::example-customer-uploads/incoming/tmp/*"},
			[]decision{
				{"s3:PutObject", "example-customer-uploads", "incoming/a", iam.Allowed},
				{"s3:PutObject", "example-customer-uploads", "incoming/tmp/a", iam.ExplicitDeny},
				{"s3:PutObject", "example-customer-uploads", "other/a", iam.ImplicitDeny},
			}},
		{"rules: a copying name pattern, a tag rule that does not copy", func(c map[string]any) {
			delete(c, "buckets")
			c["rules"] = []any{
				map[string]any{"name": "legacy", "select": map[string]any{"names": []string{"legacy-*"}},
					"settings": map[string]any{"kmsKeyArn": testKey, "includePrefixes": []string{"data/"}, "unsupportedSources": map[string]string{"notEncrypted": "copy"}}},
				map[string]any{"name": "tagged", "select": map[string]any{"tags": map[string]string{"team": "a"}}, "settings": map[string]any{"kmsKeyArn": testKey}},
			}
		},
			[]string{"arn:aws:s3:::*/*"}, nil,
			[]decision{
				{"s3:PutObjectTagging", "legacy-1", "data/a", iam.Allowed},
				{"s3:PutObjectTagging", "legacy-1", "other/a", iam.ImplicitDeny},
				{"s3:PutObjectTagging", "tagged-bucket", "data/a", iam.ImplicitDeny},
				{"s3:UpdateObjectEncryption", "tagged-bucket", "a", iam.Allowed},
			}},
		{"more than 20 names, with prefixes: account-wide under aws:ResourceAccount", func(c map[string]any) {
			delete(c, "buckets")
			var names []string
			for i := range permissions.MaxListed + 1 {
				names = append(names, fmt.Sprintf("team-%02d", i))
			}
			c["rules"] = []any{map[string]any{"name": "teams", "select": map[string]any{"names": names},
				"settings": map[string]any{"kmsKeyArn": testKey, "includePrefixes": []string{"in/"}, "excludePrefixes": []string{"in/tmp/"}}}}
		},
			[]string{"arn:aws:s3:::*/in/*"},
			func() []string {
				var out []string
				for i := range permissions.MaxListed + 1 {
					out = append(out, fmt.Sprintf("arn:aws:s3:::team-%02d/in/tmp/*", i))
				}
				return out
			}(),
			[]decision{
				{"s3:UpdateObjectEncryption", "team-07", "in/a", iam.Allowed},
				{"s3:UpdateObjectEncryption", "team-07", "in/tmp/a", iam.ExplicitDeny},
				{"s3:UpdateObjectEncryption", "team-07", "out/a", iam.ImplicitDeny},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, _ := synth(t, configWith(t, tc.edit))
			bySid, p := encryptGrants(t, tmpl)
			if got := stringsOf(bySid["UpdateObjectEncryption"]["Resource"]); !slices.Equal(got, tc.objects) {
				t.Errorf("UpdateObjectEncryption on %v, want %v", got, tc.objects)
			}
			if got := stringsOf(bySid["ReadObjectState"]["Resource"]); !slices.Equal(got, tc.objects) {
				t.Errorf("ReadObjectState on %v, want %v", got, tc.objects)
			}
			wide := tc.objects[0] == "arn:aws:s3:::*/*" || strings.HasPrefix(tc.objects[0], "arn:aws:s3:::*/")
			if cond := js(bySid["UpdateObjectEncryption"]["Condition"]); wide != strings.Contains(cond, `"aws:ResourceAccount":["`+testAccount+`"]`) {
				t.Errorf("UpdateObjectEncryption's condition %s, account-wide %v", cond, wide)
			}
			deny, ok := bySid[permissions.DenyExcludedSid]
			if ok != (tc.denied != nil) {
				t.Fatalf("Deny statement %v, want %v", ok, tc.denied != nil)
			}
			if ok {
				if got := stringsOf(deny["Resource"]); deny["Effect"] != "Deny" || !slices.Equal(got, tc.denied) || deny["Condition"] != nil {
					t.Errorf("the Deny: %s, want on %v", js(deny), tc.denied)
				}
				for _, a := range append([]string{"s3:PutObject", "s3:UpdateObjectEncryption", "s3:GetObject"}, copyAction...) {
					if _, copies := bySid["CopyInPlace"]; (copies || !slices.Contains(copyAction, a)) && !strings.Contains(js(deny["Action"]), `"`+a+`"`) {
						t.Errorf("the Deny does not refuse %s", a)
					}
				}
				if strings.Contains(js(deny["Action"]), "s3:ListBucket") {
					t.Error("the Deny refuses listings")
				}
			}
			for _, d := range tc.decisions {
				if got := onObject(p, d.action, d.bucket, d.key); got != d.want {
					t.Errorf("%s on %s/%s: %v, want %v", d.action, d.bucket, d.key, got, d.want)
				}
			}
			// The stack's report location stays writable.
			report := strings.TrimSuffix(fmt.Sprint(bySid["WriteReports"]["Resource"]), "*") + "part"
			if got := p.Evaluate(iam.Request{Action: "s3:PutObject", Resource: report}); got != iam.Allowed {
				t.Errorf("a report part %s: %v", report, got)
			}
		})
	}
}

// At 5,000 buckets, each with included and excluded prefixes, the roles'
// policies stay within IAM's 10,240 characters for a role's inline
// policies (whitespace not counted; docs/IAM/latest/UserGuide/reference_iam-quotas.md;
// the stack's grants are inline, so a managed policy's 6,144 does not
// apply): the object grants fall back to account-wide, under
// aws:ResourceAccount, and the Deny's list, which would not fit, is left
// out.
func TestPrefixedGrantsFitAt5000Buckets(t *testing.T) {
	buckets := map[string]any{}
	for i := range 5000 {
		buckets[fmt.Sprintf("estate-bucket-%05d", i)] = map[string]any{"kmsKeyArn": testKey,
			"includePrefixes": []string{fmt.Sprintf("data/%05d/", i)}, "excludePrefixes": []string{fmt.Sprintf("data/%05d/tmp/", i)}}
	}
	cfg := configWith(t, func(c map[string]any) { c["buckets"] = buckets })
	sh := shapeOf(t, cfg)
	for role, n := range sh.rolePolicy {
		if n > permissions.RolePolicyLimit {
			t.Errorf("role %s's policies are %d characters, over IAM's 10,240", role, n)
		}
	}
	tmpl, _ := synth(t, cfg)
	bySid, p := encryptGrants(t, tmpl)
	if got := stringsOf(bySid["UpdateObjectEncryption"]["Resource"]); !slices.Equal(got, []string{"arn:aws:s3:::*/*"}) ||
		!strings.Contains(js(bySid["UpdateObjectEncryption"]["Condition"]), "aws:ResourceAccount") {
		t.Errorf("UpdateObjectEncryption: %s", js(bySid["UpdateObjectEncryption"]))
	}
	if _, ok := bySid[permissions.DenyExcludedSid]; ok {
		t.Error("a Deny of 5,000 prefixes")
	}
	if got := p.Evaluate(iam.Request{Action: "s3:UpdateObjectEncryption", Resource: "arn:aws:s3:::estate-bucket-00001/data/00001/a",
		Context: map[string][]string{"aws:ResourceAccount": {"444455556666"}}}); got == iam.Allowed {
		t.Error("an object of another account is allowed")
	}
	t.Logf("largest role policy %d characters", maxOf(sh.rolePolicy))
}
