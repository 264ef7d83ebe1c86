// Package iam evaluates IAM identity policies the way AWS does for a
// single account: a request is allowed when some statement allows it and
// none denies it (IAM User Guide, "Policy evaluation logic"). It models
// what the emulator needs: Allow and Deny, Action and Resource with the
// wildcards * and ?, and the condition operators String*, Arn* and Bool
// with their Not and IfExists forms.
//
// An access key with no policy bound is allowed everything, so that hand
// tries and demos need no setup; binding a policy to a key makes every
// request signed with it subject to that policy.
package iam

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Policy is a parsed identity policy.
type Policy struct {
	Statements []Statement
	// variables is set by Version 2012-10-17, the first to resolve policy
	// variables such as ${aws:PrincipalAccount}; in older policies they
	// are literal text (IAM User Guide, "IAM policy elements: Variables and
	// tags").
	variables bool
}

// Statement is one policy statement.
type Statement struct {
	Sid       string
	Effect    string // Allow or Deny
	Actions   []string
	Resources []string
	// Conditions: operator → condition key → values.
	Conditions map[string]map[string][]string
	// Principal is the statement's Principal element, as in resource-based
	// policies (bucket, key and trust policies); nil when it has none.
	Principal *Principal
}

// stringOrList is IAM's "a string or a list of strings".
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*s = many
	return nil
}

type statementJSON struct {
	Sid       string                             `json:"Sid"`
	Effect    string                             `json:"Effect"`
	Action    stringOrList                       `json:"Action"`
	Resource  stringOrList                       `json:"Resource"`
	Condition map[string]map[string]stringOrList `json:"Condition"`
	Principal json.RawMessage                    `json:"Principal"`
	// NotPrincipal is refused: AWS advises against it and nothing here
	// needs it.
	NotPrincipal json.RawMessage `json:"NotPrincipal"`
}

// ParsePolicy reads an IAM policy document.
func ParsePolicy(doc []byte) (*Policy, error) {
	var raw struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var stmts []statementJSON
	if err := json.Unmarshal(raw.Statement, &stmts); err != nil {
		var one statementJSON
		if err2 := json.Unmarshal(raw.Statement, &one); err2 != nil {
			return nil, fmt.Errorf("policy: Statement: %w", err)
		}
		stmts = []statementJSON{one}
	}
	p := &Policy{variables: raw.Version == "2012-10-17"}
	for i, st := range stmts {
		if st.NotPrincipal != nil {
			return nil, fmt.Errorf("policy: statement %d: NotPrincipal is not modelled", i)
		}
		var principal *Principal
		if st.Principal != nil {
			pr, err := parsePrincipal(st.Principal)
			if err != nil {
				return nil, fmt.Errorf("policy: statement %d: Principal: %w", i, err)
			}
			principal = &pr
		}
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return nil, fmt.Errorf("policy: statement %d: Effect %q is not Allow or Deny", i, st.Effect)
		}
		if len(st.Resource) == 0 && st.Principal != nil {
			// A role's trust policy has no Resource: it is the role
			// (IAM User Guide, "Role trust policy").
			st.Resource = stringOrList{"*"}
		}
		if len(st.Action) == 0 || len(st.Resource) == 0 {
			return nil, fmt.Errorf("policy: statement %d: Action and Resource are required", i)
		}
		conds := map[string]map[string][]string{}
		for op, kv := range st.Condition {
			if !knownOperator(op) {
				return nil, fmt.Errorf("policy: statement %d: condition operator %q is not modelled", i, op)
			}
			conds[op] = map[string][]string{}
			for k, v := range kv {
				conds[op][strings.ToLower(k)] = v
			}
		}
		p.Statements = append(p.Statements, Statement{Sid: st.Sid, Effect: st.Effect, Actions: st.Action, Resources: st.Resource, Conditions: conds, Principal: principal})
	}
	return p, nil
}

// Request is one authorization question: may the caller do Action on
// Resource, with these condition keys in the request context?
type Request struct {
	Action   string
	Resource string
	Context  map[string][]string // condition key (any case) → values (one, or several for a multivalued key)
}

// Decision is the result of evaluating a request.
type Decision int

// Decisions, as IAM names them.
const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

// Evaluate decides a request: an explicit deny wins, then an allow, and
// nothing else allows.
func (p *Policy) Evaluate(req Request) Decision {
	ctx := make(map[string][]string, len(req.Context))
	for k, v := range req.Context {
		ctx[strings.ToLower(k)] = v
	}
	d := ImplicitDeny
	for _, st := range p.Statements {
		if !st.matches(req, ctx, p.variables) {
			continue
		}
		if st.Effect == "Deny" {
			return ExplicitDeny
		}
		d = Allowed
	}
	return d
}

func (st Statement) matches(req Request, ctx map[string][]string, variables bool) bool {
	resources := st.Resources
	if variables {
		resources = substituteAll(resources, ctx)
	}
	if !anyMatch(st.Actions, req.Action, true) || !anyMatch(resources, req.Resource, false) {
		return false
	}
	for op, kv := range st.Conditions {
		for key, values := range kv {
			if variables && substitutable(op) {
				values = substituteAll(values, ctx)
			}
			if !conditionHolds(op, ctx, key, values) {
				return false
			}
		}
	}
	return true
}

func anyMatch(patterns []string, s string, foldCase bool) bool {
	for _, p := range patterns {
		if foldCase {
			if glob(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if glob(p, s) {
			return true
		}
	}
	return false
}

// glob matches IAM's wildcards: * any run of characters, ? any one.
func glob(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if glob(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		}
	}
	return s == ""
}

var operators = map[string]func(value, want string) bool{
	"StringEquals":           func(v, w string) bool { return v == w },
	"StringEqualsIgnoreCase": strings.EqualFold,
	"StringLike":             func(v, w string) bool { return glob(w, v) },
	"ArnEquals":              func(v, w string) bool { return v == w },
	"ArnLike":                func(v, w string) bool { return glob(w, v) },
	"Bool":                   strings.EqualFold,
}

// operator splits the set qualifier, IfExists and Not off an operator
// name.
func operator(op string) (base string, negated, ifExists bool) {
	_, op, _ = cutSetQualifier(op)
	base, ifExists = strings.CutSuffix(op, "IfExists")
	if b, ok := strings.CutPrefix(base, "StringNot"); ok {
		return "String" + b, true, ifExists
	}
	if b, ok := strings.CutPrefix(base, "ArnNot"); ok {
		return "Arn" + b, true, ifExists
	}
	return base, false, ifExists
}

func knownOperator(op string) bool {
	base, _, _ := operator(op)
	_, ok := operators[base]
	return ok
}

// cutSetQualifier splits ForAnyValue: or ForAllValues: off an operator.
func cutSetQualifier(op string) (qualifier, rest string, found bool) {
	for _, q := range []string{"ForAnyValue:", "ForAllValues:"} {
		if r, ok := strings.CutPrefix(op, q); ok {
			return strings.TrimSuffix(q, ":"), r, true
		}
	}
	return "", op, false
}

// conditionHolds applies one operator to one key: any of the policy's
// values may match. A key absent from the request fails a positive
// operator and passes a negated or IfExists one; for a multivalued key,
// ForAnyValue asks that one request value match, ForAllValues that every
// one does (and holds for an absent key) (IAM User Guide, "Condition
// operators" and "Multivalued context keys").
func conditionHolds(op string, ctx map[string][]string, key string, values []string) bool {
	qualifier, _, _ := cutSetQualifier(op)
	base, negated, ifExists := operator(op)
	got, present := ctx[key]
	if !present || len(got) == 0 {
		return negated || ifExists || qualifier == "ForAllValues"
	}
	one := func(v string) bool {
		for _, w := range values {
			if operators[base](v, w) {
				return !negated
			}
		}
		return negated
	}
	if qualifier == "ForAllValues" {
		for _, v := range got {
			if !one(v) {
				return false
			}
		}
		return true
	}
	for _, v := range got {
		if one(v) {
			return true
		}
	}
	return false
}

// Store holds the policies bound to access keys and the keys whose
// session has expired. It is safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	policies map[string]*Policy
	expired  map[string]*expiry
}

// expiry is an expired session: for one service or "*", for the next
// requests (or for good when requests is negative).
type expiry struct {
	service  string
	requests int
}

// NewStore returns a store with no bindings: every key may do everything.
func NewStore() *Store {
	return &Store{policies: map[string]*Policy{}, expired: map[string]*expiry{}}
}

// Bind makes p govern every request signed with accessKey; nil unbinds.
func (s *Store) Bind(accessKey string, p *Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == nil {
		delete(s.policies, accessKey)
		return
	}
	s.policies[accessKey] = p
}

// Allowed decides a request made with accessKey.
func (s *Store) Allowed(accessKey string, req Request) bool {
	s.mu.RLock()
	p, bound := s.policies[accessKey]
	s.mu.RUnlock()
	return !bound || p.Evaluate(req) == Allowed
}

// Expire makes the session of accessKey expired for the next requests to
// service ("s3", "sqs", "kms" or "*"); a negative count means until
// Renew. AWS answers such requests ExpiredToken.
func (s *Store) Expire(accessKey, service string, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired[accessKey] = &expiry{service: service, requests: requests}
}

// Renew makes accessKey's session valid again.
func (s *Store) Renew(accessKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.expired, accessKey)
}

// Expired reports whether a request to service signed with accessKey
// meets an expired session, and counts it.
func (s *Store) Expired(accessKey, service string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.expired[accessKey]
	if !ok || (e.service != "*" && e.service != service) {
		return false
	}
	if e.requests > 0 {
		if e.requests--; e.requests == 0 {
			delete(s.expired, accessKey)
		}
	}
	return true
}

// Policy is the identity policy bound to accessKey, nil when none is.
func (s *Store) Policy(accessKey string) *Policy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.policies[accessKey]
}
