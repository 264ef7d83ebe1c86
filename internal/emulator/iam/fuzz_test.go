package iam

import "testing"

// FuzzParsePolicy: policy documents come from users (--iam): any input is
// parsed or refused, never a panic, and a parsed policy evaluates.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`))
	f.Add([]byte(`{"Statement":{"Effect":"Deny","Action":["kms:*"],"Resource":"arn:aws:kms:*:*:key/*","Condition":{"ForAnyValue:StringLike":{"kms:ResourceAliases":["alias/*"]}}}}`))
	f.Add([]byte(`{"Statement":[{"Effect":"Allow","Action":"s3:Get?bject*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"a":"b"}}}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := ParsePolicy(doc)
		if err != nil {
			return
		}
		p.Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Context: map[string][]string{"kms:ResourceAliases": {"alias/x"}}})
	})
}
