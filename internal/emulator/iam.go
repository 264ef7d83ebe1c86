package emulator

import (
	"fmt"
	"net/http"

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
	return e.iam.Allowed(scope.AccessKey, iam.Request{Action: action, Resource: resource, Context: context})
}

// notAuthorized is IAM's denial message.
func notAuthorized(accessKey, action, resource string) string {
	return "User: " + accessKey + " is not authorized to perform: " + action + " on resource: " + resource +
		" because no identity-based policy allows the " + action + " action"
}
