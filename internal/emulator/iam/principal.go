package iam

// Principals, callers and the cross-account evaluation of identity and
// resource-based policies (IAM User Guide, "AWS JSON policy elements:
// Principal", "Policy evaluation logic" and "Cross-account policy
// evaluation logic"), and policy variables ("IAM policy elements:
// Variables and tags").

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
)

// Principal is a statement's Principal element: the AWS principals it
// names ("*" for everyone). Service and Federated principals are kept
// but match no caller: the emulator's callers are accounts and roles.
type Principal struct {
	AWS   []string
	Other []string
}

// parsePrincipal reads "*" or an object of principal types to a string or
// a list of strings. A 12-digit account id is the account's root ARN.
func parsePrincipal(raw json.RawMessage) (Principal, error) {
	var star string
	if err := json.Unmarshal(raw, &star); err == nil {
		if star != "*" {
			return Principal{}, errors.New(`a string Principal must be "*"`)
		}
		return Principal{AWS: []string{"*"}}, nil
	}
	var typed map[string]stringOrList
	if err := json.Unmarshal(raw, &typed); err != nil {
		return Principal{}, errors.New(`want "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}`)
	}
	var p Principal
	for kind, values := range typed {
		if kind != "AWS" {
			p.Other = append(p.Other, values...)
			continue
		}
		for _, v := range values {
			if IsAccountID(v) {
				v = RootARN(v)
			}
			p.AWS = append(p.AWS, v)
		}
	}
	return p, nil
}

// RootARN is the principal ARN that stands for a whole account.
func RootARN(account string) string { return "arn:aws:iam::" + account + ":root" }

// IsAccountID reports a 12-digit AWS account id.
func IsAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Caller is who signed a request: an account's root or an assumed-role
// session, with the identity policy that governs it.
type Caller struct {
	Account string
	// ARN is the principal: the account's root ARN, or a session's
	// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
	ARN string
	// RoleARN is the role of a session, arn:aws:iam::ACCOUNT:role/ROLE;
	// empty for the root. A Principal naming the role matches its sessions.
	RoleARN string
	UserID  string
	// OrgID is the organization of the caller's account; empty outside one.
	OrgID string
	// Policy is the caller's identity policy; nil allows everything (the
	// root, or an unbound access key).
	Policy *Policy
}

// Context is the caller's part of the request context: aws:PrincipalAccount,
// aws:PrincipalArn (a session's role ARN), aws:PrincipalOrgID when its
// account is in an organization, aws:userid and aws:PrincipalType (IAM
// User Guide, "AWS global condition context keys").
func (c Caller) Context() map[string][]string {
	arn, kind := c.ARN, "Account"
	if c.RoleARN != "" {
		arn, kind = c.RoleARN, "AssumedRole"
	}
	ctx := map[string][]string{
		"aws:PrincipalAccount": {c.Account}, "aws:PrincipalArn": {arn},
		"aws:userid": {c.UserID}, "aws:PrincipalType": {kind},
	}
	if c.OrgID != "" {
		ctx["aws:PrincipalOrgID"] = []string{c.OrgID}
	}
	return ctx
}

// Identity decides a request by the caller's identity policy alone.
func (c Caller) Identity(req Request) Decision {
	if c.Policy == nil {
		return Allowed
	}
	return c.Policy.Evaluate(req)
}

type callerKey struct{}

// WithCaller records the caller of a request in its context.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom is the caller recorded by WithCaller.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Grant is a resource-based policy's answer for one caller.
type Grant struct {
	Decision Decision
	// ToPrincipal is set when an allowing statement names the caller
	// itself (its session, its role, or "*") rather than its account's
	// root: only such a grant stands without an identity policy.
	ToPrincipal bool
}

// EvaluateFor decides a request of caller against a resource-based policy:
// only statements whose Principal matches the caller apply, and the
// caller's keys join the request context.
func (p *Policy) EvaluateFor(req Request, caller Caller) Grant {
	if p == nil {
		return Grant{}
	}
	ctx := make(map[string][]string, len(req.Context)+6)
	for k, v := range caller.Context() {
		ctx[strings.ToLower(k)] = v
	}
	for k, v := range req.Context {
		ctx[strings.ToLower(k)] = v
	}
	g := Grant{}
	for _, st := range p.Statements {
		if st.Principal == nil || !st.matches(req, ctx, p.variables) {
			continue
		}
		named, whole := st.Principal.names(caller)
		if !named {
			continue
		}
		if st.Effect == "Deny" {
			return Grant{Decision: ExplicitDeny}
		}
		g.Decision = Allowed
		g.ToPrincipal = g.ToPrincipal || !whole
	}
	return g
}

// names reports whether the principal names the caller, and whether it
// does so through the caller's account root only.
func (p *Principal) names(c Caller) (named, accountOnly bool) {
	for _, v := range p.AWS {
		switch {
		case v == "*", v == c.ARN, c.RoleARN != "" && v == c.RoleARN:
			return true, false
		case v == RootARN(c.Account):
			named, accountOnly = true, true
		}
	}
	return named, accountOnly
}

// Permit combines the identity and resource-based decisions as IAM does.
// An explicit deny in either wins. Across accounts both must allow
// ("Cross-account policy evaluation logic"). Within one account either
// suffices, except that a grant to the account root delegates to the
// identity policy; when the resource policy is required (KMS key
// policies: "no principal has any permission on a KMS key unless the key
// policy allows it", key-policies.md) it must allow in any case.
func Permit(identity Decision, resource Grant, sameAccount, resourceRequired bool) bool {
	if identity == ExplicitDeny || resource.Decision == ExplicitDeny {
		return false
	}
	granted := resource.Decision == Allowed
	switch {
	case !sameAccount:
		return identity == Allowed && granted
	case resourceRequired:
		return granted && (resource.ToPrincipal || identity == Allowed)
	default:
		return identity == Allowed || granted && resource.ToPrincipal
	}
}

var variablePattern = regexp.MustCompile(`\$\{([^}]*)\}`)

// unresolved stands in for a variable with no value: it matches nothing a
// request can hold ("Policy variables with no value").
const unresolved = "\x00unresolved\x00"

// substituteAll replaces ${key} by the request's single value of key, and
// the special ${*}, ${?} and ${$} by the literal characters.
func substituteAll(values []string, ctx map[string][]string) []string {
	var out []string
	for i, v := range values {
		if !strings.Contains(v, "${") {
			if out != nil {
				out[i] = v
			}
			continue
		}
		if out == nil {
			out = append([]string(nil), values...)
		}
		out[i] = variablePattern.ReplaceAllStringFunc(v, func(m string) string {
			name := m[2 : len(m)-1]
			switch name {
			case "*", "?", "$":
				return name
			}
			got := ctx[strings.ToLower(name)]
			if len(got) != 1 {
				return unresolved
			}
			return got[0]
		})
	}
	if out == nil {
		return values
	}
	return out
}

// substitutable reports whether policy variables apply to an operator's
// values: the string and ARN operators only.
func substitutable(op string) bool {
	base, _, _ := operator(op)
	return strings.HasPrefix(base, "String") || strings.HasPrefix(base, "Arn")
}
