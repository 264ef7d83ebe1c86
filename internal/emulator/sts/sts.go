// Package sts models AWS Security Token Service for the emulator's
// organization of accounts: roles with trust policies, AssumeRole, which
// hands out temporary credentials of a role, and GetCallerIdentity. It
// speaks the AWS query protocol (form-encoded Action=…&Version=2011-06-15,
// XML answers), as the SDKs and the AWS CLI send it (STS API reference,
// "AssumeRole", "GetCallerIdentity"; IAM User Guide, "Policy evaluation
// logic", "Cross-account policy evaluation logic").
//
// A role's trust policy is a resource-based policy: AssumeRole is allowed
// when it allows sts:AssumeRole for the caller, with aws:PrincipalOrgID,
// aws:PrincipalAccount, aws:PrincipalArn and sts:ExternalId in the request
// context; across accounts the caller's identity policy must allow it too.
package sts

import (
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/iam"
)

// Namespace is the query protocol's XML namespace for STS.
const Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// The duration limits of AssumeRole (DurationSeconds: 900 to the role's
// maximum session duration, 3600 by default).
const (
	minSessionSeconds     = 900
	defaultSessionSeconds = 3600
)

// Role is an IAM role: who may assume it, and what its sessions may do.
type Role struct {
	Account, Name, ARN string
	// ID is the role's unique id (AROA…), the first part of a session's
	// aws:userid.
	ID string
	// Trust is the role's trust policy; Policy its identity policy (nil
	// allows everything).
	Trust, Policy *iam.Policy
	// MaxSession is the longest session AssumeRole may ask for.
	MaxSession time.Duration
}

// Session is the temporary credentials of a role.
type Session struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time
	Role                                       *Role
	// ARN is arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION; UserID is
	// ROLEID:SESSION.
	ARN, UserID string
}

// Service holds the roles of every account and the sessions issued. It is
// safe for concurrent use.
type Service struct {
	// Caller names who signed a request, by access key; the service
	// knows its own sessions.
	Caller func(r *http.Request) (iam.Caller, bool)
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	mu       sync.RWMutex
	roles    map[string]*Role // by role ARN
	sessions map[string]*Session
}

// New returns a service with no roles.
func New() *Service {
	return &Service{roles: map[string]*Role{}, sessions: map[string]*Session{}}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// RoleARN is the ARN of a role.
func RoleARN(account, name string) string { return "arn:aws:iam::" + account + ":role/" + name }

var roleNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// PutRole creates or replaces a role of account from its trust policy and
// identity policy (JSON documents; a nil policy allows everything).
func (s *Service) PutRole(account, name string, trust, policy []byte) (*Role, error) {
	if !roleNamePattern.MatchString(name) {
		return nil, fmt.Errorf("sts: role name %q is not valid", name)
	}
	t, err := iam.ParsePolicy(trust)
	if err != nil {
		return nil, fmt.Errorf("sts: trust policy of %s: %w", name, err)
	}
	for _, st := range t.Statements {
		if st.Principal == nil {
			return nil, errors.New("sts: trust policy of " + name + ": every statement needs a Principal")
		}
	}
	role := &Role{Account: account, Name: name, ARN: RoleARN(account, name), ID: "AROA" + randomID(17), Trust: t,
		MaxSession: defaultSessionSeconds * time.Second}
	if policy != nil {
		if role.Policy, err = iam.ParsePolicy(policy); err != nil {
			return nil, fmt.Errorf("sts: policy of %s: %w", name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.roles[role.ARN]; ok {
		role.ID = old.ID
	}
	s.roles[role.ARN] = role
	return role, nil
}

// Role is the role of an ARN as it is now: a session's permissions follow
// changes to its role's policy.
func (s *Service) Role(arn string) (*Role, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.roles[arn]
	return r, ok
}

// Session is the live session of an access key.
func (s *Service) Session(accessKey string) (*Session, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.sessions[accessKey]
	return sess, ok
}

// Expired reports whether a session's credentials are past their
// expiration.
func (s *Service) Expired(sess *Session) bool { return !s.now().Before(sess.Expiration) }

// ServeHTTP answers one query-protocol request.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := core.NewUUID()
	r.Body = http.MaxBytesReader(nil, r.Body, core.MaxJSONBody)
	if err := r.ParseForm(); err != nil {
		writeError(w, requestID, core.Errorf(http.StatusBadRequest, "MalformedQueryString", "cannot read the form"))
		return
	}
	caller, ok := s.Caller(r)
	if !ok {
		writeError(w, requestID, core.Errorf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."))
		return
	}
	var out any
	var apiErr *core.Error
	switch action := r.Form.Get("Action"); action {
	case "AssumeRole":
		out, apiErr = s.assumeRole(r, caller)
	case "GetCallerIdentity":
		out = getCallerIdentityResponse{Result: callerIdentity{Arn: caller.ARN, UserID: caller.UserID, Account: caller.Account}}
	case "":
		apiErr = core.Errorf(http.StatusBadRequest, "MissingAction", "Missing Action")
	default:
		apiErr = core.Errorf(http.StatusBadRequest, "InvalidAction", "Could not find operation "+action+" for version 2011-06-15")
	}
	if apiErr != nil {
		writeError(w, requestID, apiErr)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(withRequestID(out, requestID))
}

var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// assumeRole checks the request, the trust policy and the caller's
// identity policy, and issues a session.
func (s *Service) assumeRole(r *http.Request, caller iam.Caller) (any, *core.Error) {
	roleARN, name := r.Form.Get("RoleArn"), r.Form.Get("RoleSessionName")
	if len(roleARN) < 20 {
		return nil, validation("roleArn", roleARN, "Member must have length greater than or equal to 20")
	}
	if len(name) < 2 || len(name) > 64 {
		return nil, validation("roleSessionName", name, "Member must have length between 2 and 64")
	}
	if !sessionNamePattern.MatchString(name) {
		return nil, validation("roleSessionName", name, `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	}
	seconds := defaultSessionSeconds
	if d := r.Form.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < minSessionSeconds {
			return nil, validation("durationSeconds", d, "Member must have value greater than or equal to 900")
		}
		seconds = n
	}
	s.mu.RLock()
	role, found := s.roles[roleARN]
	s.mu.RUnlock()
	req := iam.Request{Action: "sts:AssumeRole", Resource: roleARN, Context: map[string][]string{"sts:RoleSessionName": {name}}}
	if id := r.Form.Get("ExternalId"); id != "" {
		req.Context["sts:ExternalId"] = []string{id}
	}
	// A missing role answers as a refused one: AssumeRole does not tell
	// who is not trusted from what does not exist.
	if !found || !iam.Permit(caller.Identity(withCallerContext(req, caller)), role.Trust.EvaluateFor(req, caller),
		caller.Account == role.Account, true) {
		return nil, core.Errorf(http.StatusForbidden, "AccessDenied",
			"User: "+caller.ARN+" is not authorized to perform: sts:AssumeRole on resource: "+roleARN)
	}
	if time.Duration(seconds)*time.Second > role.MaxSession {
		return nil, validation("durationSeconds", strconv.Itoa(seconds),
			"The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	sess := &Session{
		AccessKeyID: "ASIA" + randomID(16), SecretAccessKey: randomID(40), SessionToken: randomID(64),
		Expiration: s.now().Add(time.Duration(seconds) * time.Second).UTC().Truncate(time.Second), Role: role,
		ARN: "arn:aws:sts::" + role.Account + ":assumed-role/" + role.Name + "/" + name, UserID: role.ID + ":" + name,
	}
	s.mu.Lock()
	s.sessions[sess.AccessKeyID] = sess
	s.mu.Unlock()
	return assumeRoleResponse{Result: assumeRoleResult{
		Credentials: credentials{AccessKeyID: sess.AccessKeyID, SecretAccessKey: sess.SecretAccessKey,
			SessionToken: sess.SessionToken, Expiration: sess.Expiration.Format(time.RFC3339)},
		AssumedRoleUser: assumedRoleUser{Arn: sess.ARN, AssumedRoleID: sess.UserID},
	}}, nil
}

// withCallerContext adds the caller's keys to a request's context, for
// its identity policy.
func withCallerContext(req iam.Request, caller iam.Caller) iam.Request {
	ctx := caller.Context()
	for k, v := range req.Context {
		ctx[k] = v
	}
	req.Context = ctx
	return req
}

func validation(member, value, rule string) *core.Error {
	return core.Errorf(http.StatusBadRequest, "ValidationError",
		"1 validation error detected: Value '"+value+"' at '"+member+"' failed to satisfy constraint: "+rule)
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}
