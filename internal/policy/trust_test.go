package policy

import (
	"strings"
	"testing"
)

func TestTrustedKeys(t *testing.T) {
	const key = "arn:aws:kms:us-east-1:111122223333:key/a"
	for _, tc := range []struct {
		name, doc, wantErr string
	}{
		{"allowlist", `{"trustedKeys":{"keyArns":["` + key + `"]},"buckets":{"bkt":{"kmsKeyArn":"alias/x"}}}`, ""},
		{"tag", `{"trustedKeys":{"tag":{"key":"s3rekey-target","value":"yes"}},"buckets":{"bkt":{"kmsKeyArn":"alias/x"}}}`, ""},
		{"empty", `{"trustedKeys":{},"buckets":{"bkt":{"kmsKeyArn":"alias/x"}}}`, "set keyArns, tag or both"},
		{"alias in the allowlist", `{"trustedKeys":{"keyArns":["alias/x"]},"buckets":{"bkt":{"kmsKeyArn":"alias/x"}}}`, "trustedKeys.keyArns[0]"},
		{"tag without a key", `{"trustedKeys":{"tag":{"key":"","value":"v"}},"buckets":{"bkt":{"kmsKeyArn":"alias/x"}}}`, "trustedKeys.tag"},
		{"misspelt field", `{"trustedKeys":{"keyArn":["` + key + `"]},"buckets":{"bkt":{"kmsKeyArn":"alias/x"}}}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if tc.wantErr == "" {
				if err != nil || !p.Pinned() {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse: %v, want %q", err, tc.wantErr)
			}
		})
	}
	p, _ := Parse([]byte(`{"trustedKeys":{"keyArns":["` + key + `"]},"buckets":{"bkt":{"kmsKeyArn":"alias/x"}}}`))
	if !p.TrustsKeyARN(key) || p.TrustsKeyARN(key+"b") || p.TrustTag() != nil {
		t.Error("TrustsKeyARN / TrustTag")
	}
}
