package iam

import "testing"

// Each case encodes a rule of the IAM User Guide: "AWS JSON policy
// elements: Principal" (an account id stands for its root, a role ARN for
// its sessions), "IAM policy elements: Variables and tags" (variables in
// the Resource and in string conditions, only from Version 2012-10-17; a
// variable with no value matches nothing) and "Cross-account policy
// evaluation logic".
func TestEvaluateFor(t *testing.T) {
	const doc = `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::r/${aws:PrincipalAccount}/*",
	  "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}},
	 {"Effect":"Allow","Principal":{"AWS":"333344445555"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::r/*"},
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:role/reader"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::r"},
	 {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::444455556666:role/reader"},"Action":"s3:*","Resource":"arn:aws:s3:::r/secret/*"}]}`
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	a := Caller{Account: "333344445555", ARN: RootARN("333344445555"), OrgID: "o-1"}
	reader := Caller{Account: "444455556666", ARN: "arn:aws:sts::444455556666:assumed-role/reader/s", RoleARN: "arn:aws:iam::444455556666:role/reader", OrgID: "o-1"}
	user := Caller{Account: "333344445555", ARN: "arn:aws:iam::333344445555:user/u", OrgID: "o-1"}
	outside := Caller{Account: "999988887777", ARN: RootARN("999988887777")}
	cases := []struct {
		name   string
		caller Caller
		req    Request
		want   Grant
	}{
		{"variable resolves to the caller's account", a, Request{Action: "s3:PutObject", Resource: "arn:aws:s3:::r/333344445555/x"}, Grant{Allowed, true}},
		{"variable does not match another account's prefix", a, Request{Action: "s3:PutObject", Resource: "arn:aws:s3:::r/444455556666/x"}, Grant{}},
		{"aws:PrincipalOrgID absent outside an organization", outside, Request{Action: "s3:PutObject", Resource: "arn:aws:s3:::r/999988887777/x"}, Grant{}},
		{"an account id names the account's principals through its root", user, Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::r/k"}, Grant{Allowed, false}},
		{"an account id does not name another account", reader, Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::r/k"}, Grant{}},
		{"a role ARN names its sessions", reader, Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::r"}, Grant{Allowed, true}},
		{"a Deny naming the principal wins", reader, Request{Action: "s3:PutObject", Resource: "arn:aws:s3:::r/secret/444455556666"}, Grant{Decision: ExplicitDeny}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.EvaluateFor(tc.req, tc.caller); got != tc.want {
				t.Fatalf("EvaluateFor = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestVariablesNeedVersion2012(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::r/${aws:PrincipalAccount}/*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := Caller{Account: "333344445555", ARN: RootARN("333344445555")}
	if g := p.EvaluateFor(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::r/333344445555/k"}, c); g.Decision != ImplicitDeny {
		t.Fatalf("2008-10-17 policy resolved a variable: %+v", g)
	}
	if g := p.EvaluateFor(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::r/${aws:PrincipalAccount}/k"}, c); g.Decision != Allowed {
		t.Fatalf("2008-10-17 policy: the variable is literal text: %+v", g)
	}
}

func TestPermit(t *testing.T) {
	cases := []struct {
		name                 string
		identity             Decision
		resource             Grant
		same, resourceNeeded bool
		want                 bool
	}{
		{"cross-account: both allow", Allowed, Grant{Allowed, true}, false, false, true},
		{"cross-account: identity only", Allowed, Grant{}, false, false, false},
		{"cross-account: resource only", ImplicitDeny, Grant{Allowed, true}, false, false, false},
		{"same account: identity alone", Allowed, Grant{}, true, false, true},
		{"same account: a grant to the principal alone", ImplicitDeny, Grant{Allowed, true}, true, false, true},
		{"same account: a grant to the account root delegates to identity", ImplicitDeny, Grant{Allowed, false}, true, false, false},
		{"key policy required: identity alone is not enough", Allowed, Grant{}, true, true, false},
		{"key policy to the root plus identity", Allowed, Grant{Allowed, false}, true, true, true},
		{"explicit deny in the resource policy", Allowed, Grant{Decision: ExplicitDeny}, true, false, false},
		{"explicit deny in the identity policy", ExplicitDeny, Grant{Allowed, true}, true, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Permit(tc.identity, tc.resource, tc.same, tc.resourceNeeded); got != tc.want {
				t.Fatalf("Permit = %v, want %v", got, tc.want)
			}
		})
	}
}
