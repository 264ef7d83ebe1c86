package iam

import "testing"

// FuzzParsePolicy: policy documents come from users (--iam): any input is
// parsed or refused, never a panic, and a parsed policy evaluates.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`))
	f.Add([]byte(`{"Statement":{"Effect":"Deny","Action":["kms:*"],"Resource":"arn:aws:kms:*:*:key/*","Condition":{"ForAnyValue:StringLike":{"kms:ResourceAliases":["alias/*"]}}}}`))
	f.Add([]byte(`{"Statement":[{"Effect":"Allow","Action":"s3:Get?bject*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"a":"b"}}}]}`))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::1:role/r"]},"Action":"s3:PutObject","Resource":"arn:aws:s3:::b/${aws:PrincipalAccount}/${*}"}]}`))
	f.Add([]byte(`{"Statement":[{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := ParsePolicy(doc)
		if err != nil {
			return
		}
		req := Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Context: map[string][]string{"kms:ResourceAliases": {"alias/x"}}}
		p.Evaluate(req)
		p.EvaluateFor(req, Caller{Account: "111122223333", ARN: "arn:aws:sts::111122223333:assumed-role/r/s", RoleARN: "arn:aws:iam::111122223333:role/r", OrgID: "o-1"})
	})
}
