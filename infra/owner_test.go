package main

import (
	"strings"
	"testing"
)

// TestFunctionsKnowTheirBucketsOwners: every function is told the
// deployment's account (the inventory bucket's owner) and the report
// bucket's owner, which its requests to those buckets name as
// ExpectedBucketOwner; a configured owner replaces the account.
func TestFunctionsKnowTheirBucketsOwners(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(map[string]any)
		want string
	}{
		"default: the deployment's account": {func(map[string]any) {}, `"S3REKEY_REPORT_BUCKET_OWNER":{"Ref":"AWS::AccountId"}`},
		"a configured report bucket's owner": {func(c map[string]any) {
			c["jobs"].(map[string]any)["reports"] = map[string]any{"bucket": "audit-reports", "expectedOwner": "444455556666",
				"kmsKeyArn": "arn:aws:kms:us-east-1:444455556666:key/abcd"}
		}, `"S3REKEY_REPORT_BUCKET_OWNER":"444455556666"`},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl, _ := synth(t, configWith(t, tc.edit))
			fns := resourcesOf(tmpl, "AWS::Lambda::Function")
			n := 0
			for id, f := range fns {
				if f["Handler"] != "bootstrap" {
					continue // CDK's own custom-resource handlers
				}
				n++
				env := js(f["Environment"])
				for _, want := range []string{`"S3REKEY_ACCOUNT_ID":{"Ref":"AWS::AccountId"}`, tc.want} {
					if !strings.Contains(env, want) {
						t.Errorf("function %s lacks %s: %s", id, want, env)
					}
				}
			}
			if n != 3 {
				t.Errorf("%d s3rekey functions, want 3", n)
			}
		})
	}
	for name, raw := range map[string]string{
		"not an account":         `{"buckets":{"b1b":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k"}},"jobs":{"reports":{"bucket":"audit","kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k","expectedOwner":"audit-account"}}}`,
		"without its own bucket": `{"buckets":{"b1b":{"kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k"}},"jobs":{"reports":{"expectedOwner":"444455556666"}}}`,
	} {
		if _, err := ParseConfig(raw); err == nil || !strings.Contains(err.Error(), "jobs.reports.expectedOwner") {
			t.Errorf("%s: %v, want an error naming jobs.reports.expectedOwner", name, err)
		}
	}
}
