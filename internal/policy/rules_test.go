package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
)

const otherKey = "arn:aws:kms:us-east-1:111122223333:key/other"

// fakeTags is a TagSource counting its reads.
type fakeTags struct {
	tags  map[string]map[string]string
	err   error
	reads int
}

func (f *fakeTags) BucketTags(_ context.Context, bucket string) (map[string]string, error) {
	f.reads++
	return f.tags[bucket], f.err
}

const rulesPolicy = `{
 "maxKmsRequestsPerSecond": 500,
 "defaults": {"bucketKeyEnabled": true, "excludePrefixes": ["tmp/"], "unsupportedSources": {"notEncrypted": "copy"}},
 "exclude": [{"names": ["*-tfstate"]}, {"tags": {"s3rekey": "off"}}],
 "rules": [
  {"name": "confidential", "select": {"tags": {"data-classification": "confidential"}},
   "settings": {"kmsKeyArn": "` + otherKey + `", "versions": "all", "maxObjectsPerSecond": 100, "unsupportedSources": {"dsseKms": "copy-downgrade"}}},
  {"name": "prod", "select": {"names": ["prod-*", "billing"]}, "settings": {"kmsKeyArn": "alias/prod", "bucketKeyEnabled": false,
   "setDefaultEncryption": true, "inventory": {"format": "CSV"}}},
  {"name": "everything", "select": {"all": true}, "settings": {"kmsKeyArn": "` + keyARN + `", "includePrefixes": ["data/"]}}
 ],
 "buckets": {"listed": {"kmsKeyArn": "` + keyARN + `"}, "prod-listed": {"kmsKeyArn": "` + otherKey + `"}},
 "overrides": {"prod-web": {"excludePrefixes": ["static/"], "maxObjectsPerSecond": 5}}
}`

func TestRulesResolveInOrder(t *testing.T) {
	p, err := Parse([]byte(rulesPolicy))
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeTags{tags: map[string]map[string]string{
		"hr-files":   {"data-classification": "confidential"},
		"prod-off":   {"s3rekey": "off"},
		"listed":     {"s3rekey": "off"},
		"prod-mixed": {"data-classification": "confidential"},
	}}
	p = p.WithTags(src)
	cases := []struct {
		bucket, by, key string
		managed         bool
		check           func(Bucket) bool
	}{
		{"hr-files", "rules[0] confidential", otherKey, true, func(b Bucket) bool {
			// defaults, then the rule's settings; nested objects merge.
			return b.Versions == VersionsAll && b.BucketKeyEnabled && b.MaxObjectsPerSecond == 100 && b.CopiesNotEncrypted() && b.CopiesDSSEKMS() &&
				!b.InScope("tmp/x")
		}},
		{"prod-mixed", "rules[0] confidential", otherKey, true, nil}, // the tag rule comes first
		{"prod-api", "rules[1] prod", "alias/prod", true, func(b Bucket) bool {
			return !b.BucketKeyEnabled && b.BucketKeyConfigured && b.SetDefaultEncryption && b.Inventory.Format == "CSV" && b.Inventory.Frequency == "Daily"
		}},
		{"billing", "rules[1] prod", "alias/prod", true, nil},
		{"prod-web", "rules[1] prod", "alias/prod", true, func(b Bucket) bool {
			return !b.InScope("static/a.css") && b.InScope("tmp/") == true && b.MaxObjectsPerSecond == 5
		}},
		{"misc", "rules[2] everything", keyARN, true, func(b Bucket) bool { return !b.InScope("other/x") && b.InScope("data/x") }},
		{"prod-listed", "buckets.prod-listed", otherKey, true, func(b Bucket) bool { return b.BucketKeyEnabled && b.InScope("data/x") }},
		{"app-tfstate", "exclude[0]", "", false, nil},
		{"prod-off", "exclude[1]", "", false, nil},
		{"listed", "exclude[1]", "", false, nil}, // an exclusion wins over the explicit list
	}
	for _, tc := range cases {
		t.Run(tc.bucket, func(t *testing.T) {
			m, err := p.Resolve(context.Background(), tc.bucket)
			if err != nil {
				t.Fatal(err)
			}
			if m.By != tc.by || m.Managed != tc.managed || (tc.managed && m.Bucket.KMSKeyARN != tc.key) {
				t.Fatalf("resolved %+v, want %s by %s", m, tc.key, tc.by)
			}
			if tc.check != nil && !tc.check(m.Bucket) {
				t.Errorf("settings %+v", m.Bucket)
			}
		})
	}
	if m, _ := p.Resolve(context.Background(), "prod-web"); !m.Override {
		t.Error("prod-web's override not reported")
	}
}

func TestTagsReadOnlyWhenNeeded(t *testing.T) {
	p, err := Parse([]byte(`{"rules":[{"name":"prod","select":{"names":["prod-*"]},"settings":{"kmsKeyArn":"` + keyARN + `"}},
		{"name":"tagged","select":{"tags":{"team":"*"}},"settings":{"kmsKeyArn":"` + keyARN + `"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.UsesTags() {
		t.Error("a tag rule: UsesTags false")
	}
	src := &fakeTags{tags: map[string]map[string]string{"a-team": {"team": ""}}}
	p = p.WithTags(src)
	if m, _ := p.Resolve(context.Background(), "prod-a"); m.Rule != "prod" || src.reads != 0 {
		t.Errorf("a name rule before the tag rule read tags %d times (%+v)", src.reads, m)
	}
	if m, _ := p.Resolve(context.Background(), "a-team"); m.Rule != "tagged" || src.reads != 1 {
		t.Errorf("tag value * matches any value, read once: %+v, %d reads", m, src.reads)
	}
	if m, _ := p.Resolve(context.Background(), "untagged"); m.Managed {
		t.Errorf("a bucket without the tag was selected: %+v", m)
	}
	src.err = errors.New("AccessDenied")
	if _, err := p.Resolve(context.Background(), "other"); err == nil || !strings.Contains(err.Error(), "tags of bucket other") {
		t.Errorf("unreadable tags: %v", err)
	}
	if _, ok := p.Lookup("other"); ok {
		t.Error("Lookup of a bucket whose tags cannot be read reported it managed")
	}
	bare, _ := Parse([]byte(`{"rules":[{"name":"tagged","select":{"tags":{"team":"*"}},"settings":{"kmsKeyArn":"` + keyARN + `"}}]}`))
	if _, err := bare.Resolve(context.Background(), "x-y"); !errors.Is(err, ErrNoTagSource) {
		t.Errorf("no tag source: %v", err)
	}
	if m := bare.ResolveWithTags("x-y", map[string]string{"team": "a"}); m.Rule != "tagged" {
		t.Errorf("ResolveWithTags: %+v", m)
	}
}

func TestRuleErrorsNameWhere(t *testing.T) {
	rule := func(s string) string { return `{"rules":[` + s + `]}` }
	good := `"settings":{"kmsKeyArn":"` + keyARN + `"}`
	cases := []struct{ name, json, want string }{
		{"case variant at top", `{"dryrun":true,"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `"}}}`, `unknown field "dryrun" (field names are case-sensitive: did you mean "dryRun"?)`},
		{"case variant in a bucket", `{"buckets":{"b1b":{"KMSKEYARN":"` + keyARN + `"}}}`, `buckets.b1b: unknown field "KMSKEYARN"`},
		{"case variant in a rule", rule(`{"name":"a","select":{"all":true},"settings":{"kmsKeyArn":"` + keyARN + `","BucketKeyEnabled":true}}`),
			`rules[0].settings: unknown field "BucketKeyEnabled"`},
		{"case variant in defaults", `{"defaults":{"Versions":"all"},"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `"}}}`, `defaults: unknown field "Versions"`},
		{"case variant nested", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","unsupportedSources":{"NotEncrypted":"copy"}}}}`,
			`buckets.b1b.unsupportedSources: unknown field "NotEncrypted"`},
		{"case variant in select", rule(`{"name":"a","select":{"ALL":true},` + good + `}`), `rules[0].select: unknown field "ALL"`},
		{"unknown rule field", rule(`{"name":"a","select":{"all":true},"kmsKeyArn":"x"}`), `rules[0]: unknown field "kmsKeyArn"`},
		{"rule without key", rule(`{"name":"a","select":{"all":true}}`), "rules[0].settings.kmsKeyArn: required (rule a, over defaults)"},
		{"rule selects nothing", rule(`{"name":"a","select":{},` + good + `}`), "rules[0].select: selects nothing"},
		{"all and names", rule(`{"name":"a","select":{"all":true,"names":["x*"]},` + good + `}`), "rules[0].select.all"},
		{"bad pattern", rule(`{"name":"a","select":{"names":["Prod[0-9]"]},` + good + `}`), "rules[0].select.names[0]"},
		{"bad exact name", rule(`{"name":"a","select":{"names":["-x"]},` + good + `}`), "not a valid bucket name"},
		{"empty tag value", rule(`{"name":"a","select":{"tags":{"k":""}},` + good + `}`), "rules[0].select.tags.k"},
		{"no name", rule(`{"select":{"all":true},` + good + `}`), "rules[0].name"},
		{"duplicate name", rule(`{"name":"a","select":{"all":true},` + good + `},{"name":"a","select":{"names":["b*"]},` + good + `}`), "rules[1].name"},
		{"shadowed rule", rule(`{"name":"a","select":{"all":true},` + good + `},{"name":"b","select":{"names":["b*"]},` + good + `}`),
			"rules[1] (b): never governs a bucket: rules[0] (a) selects all buckets first"},
		{"bad rule settings", rule(`{"name":"a","select":{"all":true},"settings":{"kmsKeyArn":"` + keyARN + `","versions":"some"}}`), "rules[0].settings.versions"},
		{"bad override", `{"rules":[{"name":"a","select":{"all":true},` + good + `}],"overrides":{"b1b":{"versions":"x"}}}`, "overrides.b1b.versions"},
		{"override of a listed bucket", `{"rules":[{"name":"a","select":{"all":true},` + good + `}],"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `"}},"overrides":{"b1b":{}}}`,
			"overrides.b1b: the bucket is listed"},
		{"override without rules", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `"}},"overrides":{"b2b":{}}}`, "overrides.b2b: there are no rules"},
		{"bad exclusion", `{"exclude":[{}],"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `"}}}`, "exclude[0]: selects nothing"},
		{"inventory format", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","inventory":{"format":"json"}}}}`, "buckets.b1b.inventory.format"},
		{"defaults not an object", `{"defaults":[],"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `"}}}`, "defaults"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckReportsRulesMatchingNothing(t *testing.T) {
	p, err := Parse([]byte(rulesPolicy))
	if err != nil {
		t.Fatal(err)
	}
	p = p.WithTags(&fakeTags{})
	matches, findings, err := p.Check(context.Background(), []string{"prod-api", "misc", "listed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) != 3 || matches[0].Rule != "prod" || matches[2].By != "buckets.listed" {
		t.Errorf("matches %+v", matches)
	}
	var got []string
	for _, f := range findings {
		got = append(got, f.String())
	}
	want := []string{"rules[0] confidential: governs no bucket of the account", "buckets.prod-listed: no such bucket in the account",
		"overrides.prod-web: no such bucket in the account"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRuleAliasesResolve(t *testing.T) {
	p, err := Parse([]byte(rulesPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if p.Resolved() || strings.Join(p.Aliases(), ",") != "alias/prod" || !p.HasBudgets() {
		t.Fatalf("aliases %v resolved %v", p.Aliases(), p.Resolved())
	}
	target := "arn:aws:kms:us-east-1:111122223333:key/prod"
	calls := 0
	r, err := p.WithKeys(func(string) (string, error) { calls++; return target, nil })
	if err != nil {
		t.Fatal(err)
	}
	if !r.Resolved() || calls != 1 {
		t.Errorf("resolved %v after %d DescribeKey calls (one per alias)", r.Resolved(), calls)
	}
	r = r.WithTags(&fakeTags{})
	if m, _ := r.Resolve(context.Background(), "prod-web"); m.Bucket.KMSKeyARN != target || m.Bucket.MaxObjectsPerSecond != 5 {
		t.Errorf("an override's alias was not resolved: %+v", m.Bucket)
	}
	if p.Rules[1].Settings.KMSKeyARN != "alias/prod" {
		t.Error("WithKeys changed the configured policy")
	}
}

// The deployment's own buckets are never managed, whatever selects them.
func TestExcludingOwnBuckets(t *testing.T) {
	p, err := Parse([]byte(`{"rules":[{"name":"all","select":{"all":true},"settings":{"kmsKeyArn":"` + keyARN + `"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	p = p.Excluding("inventory-bkt", "", "reports-bkt")
	for bucket, managed := range map[string]bool{"inventory-bkt": false, "reports-bkt": false, "data": true} {
		if m, _ := p.Resolve(context.Background(), bucket); m.Managed != managed || (!managed && m.By != "s3rekey's own bucket") {
			t.Errorf("%s: %+v", bucket, m)
		}
	}
	t.Setenv(EnvPolicy, `{"rules":[{"name":"all","select":{"all":true},"settings":{"kmsKeyArn":"`+keyARN+`"}}]}`)
	t.Setenv(EnvPolicyFile, "")
	t.Setenv(EnvExcludeBuckets, "inventory-bkt,reports-bkt")
	fromEnv, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fromEnv.Lookup("reports-bkt"); ok {
		t.Errorf("%s does not exclude the report bucket", EnvExcludeBuckets)
	}
}
