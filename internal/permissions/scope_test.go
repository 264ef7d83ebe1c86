package permissions

import (
	"fmt"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/policy"
)

const key = "arn:aws:kms:us-east-1:111122223333:key/k"

func mustParse(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The grants follow the policy without a statement per bucket: names and
// patterns while they are few, the account's buckets (conditioned on
// aws:ResourceAccount) for an all or tag rule or many names, so that a
// role's policy stays within IAM's 10,240 characters
// (docs/IAM/latest/UserGuide/reference_iam-quotas.md).
func TestGrantsFollowThePolicy(t *testing.T) {
	many := `{"buckets":{`
	for i := range 5000 {
		if i > 0 {
			many += ","
		}
		many += fmt.Sprintf(`"bucket-%05d":{"kmsKeyArn":%q}`, i, key)
	}
	many += "}}"
	cases := []struct {
		name, policy string
		accountWide  bool
		resources    []string // in the UpdateObjectEncryption statement
		copies       string   // in the copy statement ("" none)
	}{
		{"listed", `{"buckets":{"b1b":{"kmsKeyArn":"` + key + `"},"b2b":{"kmsKeyArn":"` + key + `","unsupportedSources":{"notEncrypted":"copy"}}}}`,
			false, []string{"arn:aws:s3:::b1b/*", "arn:aws:s3:::b2b/*"}, "arn:aws:s3:::b2b/*"},
		{"name rule", `{"rules":[{"name":"p","select":{"names":["prod-*","billing"]},"settings":{"kmsKeyArn":"` + key + `"}}]}`,
			false, []string{"arn:aws:s3:::billing/*", "arn:aws:s3:::prod-*/*"}, ""},
		{"all rule", `{"rules":[{"name":"a","select":{"all":true},"settings":{"kmsKeyArn":"` + key + `"}}]}`, true, []string{"arn:aws:s3:::*/*"}, ""},
		{"tag rule copying", `{"rules":[{"name":"t","select":{"tags":{"k":"v"}},"settings":{"kmsKeyArn":"` + key + `","unsupportedSources":{"dsseKms":"copy-downgrade"}}}]}`,
			true, []string{"arn:aws:s3:::*/*"}, "arn:aws:s3:::*/*"},
		{"5,000 listed", many, true, []string{"arn:aws:s3:::*/*"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Resources{Partition: "aws", Region: "us-east-1", Account: "111122223333", WorkQueueARN: "w", WorkDLQARN: "d"}
			r.FromPolicy(mustParse(t, tc.policy))
			if r.AccountWideBuckets != tc.accountWide {
				t.Errorf("account-wide %v, want %v", r.AccountWideBuckets, tc.accountWide)
			}
			stmts := Encrypt(r)
			for _, st := range stmts {
				switch {
				case st.Sid == "UpdateObjectEncryption":
					if strings.Join(st.Resources, " ") != strings.Join(tc.resources, " ") {
						t.Errorf("UpdateObjectEncryption on %v, want %v", st.Resources, tc.resources)
					}
					if got := st.Condition["StringEquals"]["aws:ResourceAccount"]; tc.accountWide != (len(got) == 1 && got[0] == "111122223333") {
						t.Errorf("condition %v, account-wide %v", st.Condition, tc.accountWide)
					}
				case st.Sid == "CopyInPlace":
					if strings.Join(st.Resources, " ") != tc.copies {
						t.Errorf("copies on %v, want %s", st.Resources, tc.copies)
					}
				}
			}
			if n := len(PolicyDocument(append(stmts, Enroll(r)...))); n > 10240 {
				t.Errorf("the statements are %d characters", n)
			}
			if tc.copies == "" {
				for _, st := range stmts {
					if st.Sid == "CopyInPlace" {
						t.Errorf("copy grants without a copy opt-in: %v", st.Resources)
					}
				}
			}
		})
	}
}
