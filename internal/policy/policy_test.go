package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const keyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestParseValid(t *testing.T) {
	p, err := Parse([]byte(`{"dryRun":true,"buckets":{"my-bucket":{"kmsKeyArn":"` + keyARN + `","bucketKeyEnabled":true,"excludePrefixes":["logs/"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, ok := p.Lookup("my-bucket")
	if !ok || !p.DryRun || !b.BucketKeyEnabled || b.ExpectedOwner != "111122223333" || b.Versions != VersionsCurrent {
		t.Errorf("parsed %+v %+v", p, b)
	}
	if _, ok := p.Lookup("other"); ok {
		t.Error("unmanaged bucket found")
	}
	if p.HasBudgets() {
		t.Error("a policy without budgets has budgets")
	}
}

func TestBudgetsParse(t *testing.T) {
	p, err := Parse([]byte(`{"maxKmsRequestsPerSecond":3000,"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","maxObjectsPerSecond":1500.5}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.Lookup("b1b"); b.MaxObjectsPerSecond != 1500.5 || p.MaxKMSRequestsPerSecond != 3000 || !p.HasBudgets() {
		t.Errorf("budgets parsed as %v objects/s and %v KMS requests/s", b.MaxObjectsPerSecond, p.MaxKMSRequestsPerSecond)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	cases := []struct{ name, json, want string }{
		{"no buckets", `{"buckets":{}}`, "buckets: at least one"},
		{"missing key", `{"buckets":{"b1b":{}}}`, "buckets.b1b.kmsKeyArn: required"},
		{"bad alias", `{"buckets":{"b1b":{"kmsKeyArn":"alias/"}}}`, "buckets.b1b.kmsKeyArn"},
		{"alias ARN of another account", `{"buckets":{"b1b":{"kmsKeyArn":"arn:aws:kms:us-east-1:444455556666:alias/mine","expectedOwner":"111122223333"}}}`,
			"buckets.b1b.expectedOwner"},
		{"bare id", `{"buckets":{"b1b":{"kmsKeyArn":"1234abcd-12ab-34cd-56ef-1234567890ab"}}}`, "neither a full KMS key ARN"},
		{"owner differs", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","expectedOwner":"999999999999"}}}`, "buckets.b1b.expectedOwner"},
		{"owner malformed", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","expectedOwner":"12"}}}`, "12-digit"},
		{"versions", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","versions":"some"}}}`, "buckets.b1b.versions"},
		{"empty exclude", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","excludePrefixes":[""]}}}`, "excludePrefixes"},
		{"unknown field", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","bucketKey":true}}}`, "unknown field"},
		{"bad bucket name", `{"buckets":{"B":{"kmsKeyArn":"` + keyARN + `"}}}`, "not a valid bucket name"},
		{"negative object budget", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","maxObjectsPerSecond":-1}}}`, "buckets.b1b.maxObjectsPerSecond"},
		{"negative KMS budget", `{"maxKmsRequestsPerSecond":-5,"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `"}}}`, "maxKmsRequestsPerSecond"},
		{"budget not a number", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","maxObjectsPerSecond":"fast"}}}`, "maxObjectsPerSecond"},
		{"not JSON", `dryRun: true`, "policy:"},
		{"trailing data", `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `"}}} {}`, "trailing data"},
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

func TestInScope(t *testing.T) {
	b := Bucket{IncludePrefixes: []string{"data/", "img/"}, ExcludePrefixes: []string{"data/tmp/"}}
	for key, want := range map[string]bool{"data/x": true, "img/y": true, "data/tmp/z": false, "other": false} {
		if got := b.InScope(key); got != want {
			t.Errorf("InScope(%q) = %v", key, got)
		}
	}
	if !(Bucket{}).InScope("anything") {
		t.Error("empty prefixes must include everything")
	}
}

func TestFromEnv(t *testing.T) {
	doc := `{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `"}}}`
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPolicy, "")
	t.Setenv(EnvPolicyFile, "")
	if _, err := FromEnv(); err == nil {
		t.Error("no policy set: want an error")
	}
	t.Setenv(EnvPolicyFile, path)
	if p, err := FromEnv(); err != nil || len(p.Buckets) != 1 {
		t.Errorf("from file: %v", err)
	}
	t.Setenv(EnvPolicy, doc)
	if _, err := FromEnv(); err == nil {
		t.Error("both set: want an error")
	}
	t.Setenv(EnvPolicyFile, "")
	if p, err := FromEnv(); err != nil || len(p.Buckets) != 1 {
		t.Errorf("inline: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"buckets":{"b1b":{"kmsKeyArn":"` + keyARN + `","versions":"all"}}}`))
	f.Add([]byte(`{"dryRun":1}`))
	f.Add([]byte(rulesPolicy))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		for name, b := range p.Buckets {
			if b.ExpectedOwner == "" || (b.Versions != VersionsCurrent && b.Versions != VersionsAll) || !keyARNPattern.MatchString(b.KMSKeyARN) {
				t.Fatalf("accepted an invalid bucket %s: %+v", name, b)
			}
		}
	})
}

// Keys named by alias (rotation by repointing the alias) are resolved to
// key ARNs before use; the configured policy keeps its aliases, so it can
// be resolved again.
func TestAliasesResolveToKeyARNs(t *testing.T) {
	p, err := Parse([]byte(`{"maxKmsRequestsPerSecond":100,"buckets":{
		"b1b":{"kmsKeyArn":"alias/app-data","maxObjectsPerSecond":50},
		"b2b":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:alias/app-data"},
		"b3b":{"kmsKeyArn":"` + keyARN + `"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Resolved() || strings.Join(p.Aliases(), ",") != "alias/app-data,arn:aws:kms:us-east-1:111122223333:alias/app-data" {
		t.Fatalf("aliases %v, resolved %v", p.Aliases(), p.Resolved())
	}
	target := "arn:aws:kms:us-east-1:111122223333:key/b"
	r, err := p.WithKeys(func(string) (string, error) { return target, nil })
	if err == nil && (r.MaxKMSRequestsPerSecond != 100 || r.Buckets["b1b"].MaxObjectsPerSecond != 50) {
		t.Errorf("resolving aliases lost the budgets: %v KMS requests/s, %v objects/s", r.MaxKMSRequestsPerSecond, r.Buckets["b1b"].MaxObjectsPerSecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"b1b": target, "b2b": target, "b3b": keyARN} {
		if b, _ := r.Lookup(name); b.KMSKeyARN != want || b.ExpectedOwner != "111122223333" {
			t.Errorf("%s: %+v, want %s", name, b, want)
		}
	}
	if !r.Resolved() || p.Buckets["b1b"].KMSKeyARN != "alias/app-data" {
		t.Error("WithKeys changed the configured policy or left an alias")
	}
	if _, err := p.WithKeys(func(string) (string, error) { return "arn:aws:kms:us-east-1:444455556666:key/x", nil }); err == nil ||
		!strings.Contains(err.Error(), "alias arn:aws:kms:us-east-1:111122223333:alias/app-data") {
		t.Errorf("an alias ARN resolving to another account's key: %v", err)
	}
}
