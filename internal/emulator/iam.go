package emulator

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/iam"
)

// BindPolicy makes an IAM identity policy govern every request signed with
// accessKey, across S3, SQS and KMS; nil unbinds it (full access again).
func (e *Emulator) BindPolicy(accessKey string, policyJSON []byte) error {
	if policyJSON == nil {
		e.iam.Bind(accessKey, nil)
		return nil
	}
	p, err := iam.ParsePolicy(policyJSON)
	if err != nil {
		return fmt.Errorf("emulator: policy of %s: %w", accessKey, err)
	}
	e.iam.Bind(accessKey, p)
	return nil
}

// ExpireCredentials makes the next requests to service ("s3", "sqs", "kms"
// or "*") signed with accessKey answer as AWS answers an expired session
// token (S3: 400 ExpiredToken); a negative count means until
// RenewCredentials.
func (e *Emulator) ExpireCredentials(accessKey, service string, requests int) {
	e.iam.Expire(accessKey, service, requests)
}

// RenewCredentials ends an expiry.
func (e *Emulator) RenewCredentials(accessKey string) { e.iam.Renew(accessKey) }

// authorizeS3 answers the permission questions S3 asks inside an
// operation, for the access key that signed the request.
func (e *Emulator) authorizeS3(r *http.Request, action, resource string, context map[string][]string) bool {
	return e.allowed(r, iam.Request{Action: action, Resource: resource, Context: e.resourceAccount(resource, context)})
}

// allowed decides a request. Alone, the emulator asks the identity policy
// bound to the signing key. In an organization the caller is known
// (iam.CallerFrom) and may be of another account: its identity policy and
// the resource's policy (the bucket policy, or the key policy of a KMS
// key) are combined as IAM combines them, both needed across accounts
// (IAM User Guide, "Cross-account policy evaluation logic").
func (e *Emulator) allowed(r *http.Request, req iam.Request) bool {
	caller, inOrg := iam.CallerFrom(r.Context())
	if !inOrg {
		scope, _ := core.ParseSigV4(r)
		return e.iam.Allowed(scope.AccessKey, req)
	}
	resource, owner, required := e.resourcePolicy(req.Resource)
	if required {
		// KMS sees the caller's account, not the key's (kms:CallerAccount).
		req.Context = withKey(req.Context, "kms:CallerAccount", caller.Account)
	}
	identity := req
	identity.Context = caller.Context()
	for k, v := range req.Context {
		identity.Context[k] = v
	}
	return iam.Permit(caller.Identity(identity), resource.EvaluateFor(req, caller), caller.Account == owner, required)
}

// resourcePolicy is the resource-based policy of a resource and the
// account that owns it: a bucket's policy (nil when it has none), or a KMS
// key's policy, which every use of the key needs. A key of another account
// is looked up in that account (foreignKMS); one that cannot be found
// there has a policy that allows nothing.
func (e *Emulator) resourcePolicy(resource string) (policy *iam.Policy, owner string, required bool) {
	if rest, ok := strings.CutPrefix(resource, "arn:aws:s3:::"); ok {
		bucket, _, _ := strings.Cut(rest, "/")
		return e.s3.BucketPolicy(bucket), e.opts.Account, false
	}
	if !strings.HasPrefix(resource, "arn:aws:kms:") {
		return nil, e.opts.Account, false
	}
	owner = strings.SplitN(resource, ":", 6)[4]
	ks := e.kms
	if owner != e.opts.Account {
		if e.foreignKMS == nil || e.foreignKMS(owner) == nil {
			return &iam.Policy{}, owner, true
		}
		ks = e.foreignKMS(owner)
	}
	if p, _, ok := ks.KeyPolicy(resource); ok {
		return p, owner, true
	}
	if owner != e.opts.Account {
		return &iam.Policy{}, owner, true
	}
	return nil, owner, false
}

// withKey is a copy of a request context with one key set.
func withKey(context map[string][]string, key, value string) map[string][]string {
	out := make(map[string][]string, len(context)+1)
	for k, v := range context {
		out[k] = v
	}
	out[key] = []string{value}
	return out
}

// resourceAccount adds aws:ResourceAccount, the account that owns the
// resource (IAM's global condition keys), to a request on a bucket or an
// object: every bucket of the emulator is its account's.
func (e *Emulator) resourceAccount(resource string, context map[string][]string) map[string][]string {
	if !strings.HasPrefix(resource, "arn:aws:s3:::") {
		return context
	}
	out := make(map[string][]string, len(context)+1)
	for k, v := range context {
		out[k] = v
	}
	out["aws:ResourceAccount"] = []string{e.opts.Account}
	return out
}

// notAuthorized is IAM's denial message.
func notAuthorized(accessKey, action, resource string) string {
	return "User: " + accessKey + " is not authorized to perform: " + action + " on resource: " + resource +
		" because no identity-based policy allows the " + action + " action"
}
