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
	scope, _ := core.ParseSigV4(r)
	return e.iam.Allowed(scope.AccessKey, iam.Request{Action: action, Resource: resource, Context: e.resourceAccount(resource, context)})
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
