package iam

import "testing"

// Each case encodes a rule of the IAM User Guide's policy evaluation
// logic and condition operator pages.
func TestEvaluate(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::data/*"},
		{"Effect":"Allow","Action":"s3:List*","Resource":"arn:aws:s3:::data"},
		{"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::data/secret/*"},
		{"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:us-east-1:111122223333:key/*",
		 "Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}},
		{"Effect":"Allow","Action":"kms:Encrypt","Resource":"arn:aws:kms:us-east-1:111122223333:key/*",
		 "Condition":{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/app-data"}}},
		{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:111122223333:q?",
		 "Condition":{"StringNotEqualsIfExists":{"aws:SourceAccount":"999999999999"}}}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	s3 := map[string][]string{"kms:ViaService": {"s3.us-east-1.amazonaws.com"}}
	cases := []struct {
		name string
		req  Request
		want Decision
	}{
		{"allowed action", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::data/a.txt"}, Allowed},
		{"action names are case-insensitive", Request{Action: "S3:getobject", Resource: "arn:aws:s3:::data/a.txt"}, Allowed},
		{"resources are case-sensitive", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::DATA/a.txt"}, ImplicitDeny},
		{"action not listed", Request{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::data/a.txt"}, ImplicitDeny},
		{"action wildcard", Request{Action: "s3:ListBucketVersions", Resource: "arn:aws:s3:::data"}, Allowed},
		{"bucket ARN is not an object ARN", Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::data/x"}, ImplicitDeny},
		{"explicit deny wins", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::data/secret/k"}, ExplicitDeny},
		{"condition holds", Request{Action: "kms:Decrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/k1", Context: s3}, Allowed},
		{"condition key absent", Request{Action: "kms:Decrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/k1"}, ImplicitDeny},
		{"condition key differs", Request{Action: "kms:Decrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/k1",
			Context: map[string][]string{"kms:viaservice": {"ec2.us-east-1.amazonaws.com"}}}, ImplicitDeny},
		{"? matches one character", Request{Action: "sqs:SendMessage", Resource: "arn:aws:sqs:us-east-1:111122223333:q1"}, Allowed},
		{"? matches exactly one", Request{Action: "sqs:SendMessage", Resource: "arn:aws:sqs:us-east-1:111122223333:q12"}, ImplicitDeny},
		{"ForAnyValue: one alias matches", Request{Action: "kms:Encrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/k9",
			Context: map[string][]string{"kms:ResourceAliases": {"alias/other", "alias/app-data"}}}, Allowed},
		{"ForAnyValue: no alias matches", Request{Action: "kms:Encrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/k9",
			Context: map[string][]string{"kms:ResourceAliases": {"alias/other"}}}, ImplicitDeny},
		{"ForAnyValue: no aliases at all", Request{Action: "kms:Encrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/k9"}, ImplicitDeny},
		{"negated IfExists with the key", Request{Action: "sqs:SendMessage", Resource: "arn:aws:sqs:us-east-1:111122223333:q1",
			Context: map[string][]string{"aws:SourceAccount": {"999999999999"}}}, ImplicitDeny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Evaluate(tc.req); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStoreUnboundKeysMayDoEverything(t *testing.T) {
	s := NewStore()
	req := Request{Action: "s3:DeleteBucket", Resource: "arn:aws:s3:::b"}
	if !s.Allowed("ADMIN", req) {
		t.Error("an unbound key was denied")
	}
	p, _ := ParsePolicy([]byte(`{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}`))
	s.Bind("FN", p)
	if s.Allowed("FN", req) || !s.Allowed("FN", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}) {
		t.Error("a bound key is not governed by its policy")
	}
	s.Expire("FN", "s3", 2)
	if s.Expired("FN", "sqs") || s.Expired("ADMIN", "s3") || !s.Expired("FN", "s3") || !s.Expired("FN", "s3") || s.Expired("FN", "s3") {
		t.Error("expiry is not per key, per service and for the number of requests given")
	}
	s.Expire("FN", "*", -1)
	for range 3 {
		if !s.Expired("FN", "kms") {
			t.Fatal("an expiry until renewed ended")
		}
	}
	s.Renew("FN")
	if s.Expired("FN", "kms") {
		t.Error("renewed session still expired")
	}
}

func TestParsePolicyRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":         `{`,
		"bad effect":       `{"Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}`,
		"no resource":      `{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}`,
		"unknown operator": `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"a":"1"}}}]}`,
	} {
		if _, err := ParsePolicy([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
