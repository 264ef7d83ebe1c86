package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/iam"
	"github.com/s3rekey/s3rekey/internal/emulator/organizations"
	"github.com/s3rekey/s3rekey/internal/emulator/s3"
	"github.com/s3rekey/s3rekey/internal/emulator/sqs"
	"github.com/s3rekey/s3rekey/internal/emulator/sts"
)

// ServeHTTP routes a request to STS, Organizations or the account that
// serves it, with its caller recorded for the policies evaluated there.
func (o *Organization) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		o.serveAdmin(w, r)
		return
	}
	scope, signed := core.ParseSigV4(r)
	if !signed {
		// The management account answers as a lone emulator does.
		o.Account(o.opts.Management).ServeHTTP(w, r)
		return
	}
	caller, known := o.callerOf(r)
	if !known {
		o.refuse(w, r, scope, "the access key is unknown")
		return
	}
	if sess, ok := o.sts.Session(scope.AccessKey); ok && o.sts.Expired(sess) {
		o.refuse(w, r, scope, "expired")
		return
	}
	r = r.WithContext(iam.WithCaller(r.Context(), caller))
	target := r.Header.Get("X-Amz-Target")
	switch {
	case scope.Service == "sts":
		o.sts.ServeHTTP(w, r)
	case strings.HasPrefix(target, organizations.TargetPrefix):
		o.serveOrganizations(w, r, caller, strings.TrimPrefix(target, organizations.TargetPrefix))
	case strings.HasPrefix(target, kmsTargetPrefix):
		o.accountOfKey(r, caller.Account).ServeHTTP(w, r)
	case target != "" || scope.Service != "s3":
		o.Account(caller.Account).ServeHTTP(w, r)
	default:
		o.serveS3(w, r, caller)
	}
}

// serveS3 sends an S3 request to the bucket's owner; a request naming no
// existing bucket (ListBuckets, CreateBucket) is the caller's account's.
// CreateBucket of a name another account holds answers 409
// BucketAlreadyExists: bucket names are global (S3 User Guide, "General
// purpose bucket naming rules").
func (o *Organization) serveS3(w http.ResponseWriter, r *http.Request, caller iam.Caller) {
	bucket, key, err := s3.SplitPath(r)
	if err != nil || bucket == "" {
		o.Account(caller.Account).ServeHTTP(w, r)
		return
	}
	q := r.URL.Query()
	q.Del("x-id")
	creating := key == "" && r.Method == http.MethodPut && len(q) == 0
	if creating {
		o.createMu.Lock()
		defer o.createMu.Unlock()
	}
	owner := o.bucketOwner(bucket)
	switch {
	case owner == nil:
		o.Account(caller.Account).ServeHTTP(w, r)
	case creating && owner.Account() != caller.Account:
		core.SetS3RequestIDs(w)
		core.WriteS3Error(w, r, core.Errorf(http.StatusConflict, "BucketAlreadyExists",
			"The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."))
	default:
		owner.ServeHTTP(w, r)
	}
}

// bucketOwner is the account that holds a bucket, nil when none does.
func (o *Organization) bucketOwner(bucket string) *Emulator {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, e := range o.accounts {
		if e.s3.HasBucket(bucket) {
			return e
		}
	}
	return nil
}

// accountOfKey is the account a KMS request is for: the account of a key
// ARN it names, or of the key that sealed its ciphertext; otherwise the
// caller's. KMS takes a key of another account by ARN only (KMS Developer
// Guide, "Allowing users in other accounts to use a KMS key").
func (o *Organization) accountOfKey(r *http.Request, home string) *Emulator {
	body, err := io.ReadAll(io.LimitReader(r.Body, core.MaxJSONBody+1))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return o.Account(home)
	}
	var in struct {
		KeyId, TargetKeyId, DestinationKeyId string
		CiphertextBlob                       []byte
	}
	_ = json.Unmarshal(body, &in)
	for _, ref := range []string{in.KeyId, in.TargetKeyId} {
		if parts := strings.SplitN(ref, ":", 6); len(parts) == 6 && parts[0] == "arn" {
			if e := o.Account(parts[4]); e != nil {
				return e
			}
		}
	}
	if id, _, ok := bytes.Cut(in.CiphertextBlob, []byte(blobSeparator)); ok {
		o.mu.RLock()
		defer o.mu.RUnlock()
		for _, e := range o.accounts {
			if _, found := e.kms.Resolve(string(id)); found {
				return e
			}
		}
	}
	return o.Account(home)
}

// blobSeparator ends the key id a KMS ciphertext blob starts with.
const blobSeparator = "\x00"

// serveOrganizations answers an Organizations request after the caller's
// identity policy allows its action.
func (o *Organization) serveOrganizations(w http.ResponseWriter, r *http.Request, caller iam.Caller, op string) {
	resp := jsonResponder(w, r, organizations.ErrorCodes)
	body, err := io.ReadAll(io.LimitReader(r.Body, core.MaxJSONBody))
	if err != nil {
		resp.err(http.StatusBadRequest, "InvalidInputException", "reading body: "+err.Error())
		return
	}
	action := "organizations:" + op
	if caller.Identity(iam.Request{Action: action, Resource: "*", Context: caller.Context()}) != iam.Allowed {
		resp.err(http.StatusBadRequest, "AccessDeniedException", notAuthorized(caller.ARN, action, "*"))
		return
	}
	out, apiErr := o.org.Dispatch(caller.Account, op, body)
	if apiErr != nil {
		resp.fail(apiErr)
		return
	}
	resp.ok(out)
}

// refuse answers a request whose credentials are unknown or expired, in
// its service's protocol.
func (o *Organization) refuse(w http.ResponseWriter, r *http.Request, scope core.Scope, why string) {
	expired := why == "expired"
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		code, msg := "UnrecognizedClientException", "The security token included in the request is invalid."
		if expired {
			code, msg = "ExpiredTokenException", "The security token included in the request is expired"
		}
		core.WriteJSONError(w, http.StatusBadRequest, code, msg, nil)
	case scope.Service == "sts":
		e := core.Errorf(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		if expired {
			e = core.Errorf(http.StatusBadRequest, "ExpiredToken", "The security token included in the request is expired")
		}
		sts.WriteError(w, e)
	case scope.Service == "sqs":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(sqs.QueryError("InvalidClientTokenId", "The security token included in the request is invalid.", core.NewID(16)))
	default:
		e := core.Errorf(http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		if expired {
			e = core.Errorf(http.StatusBadRequest, "ExpiredToken", "The provided token has expired.")
		}
		core.WriteS3Error(w, r, e)
	}
}

// serveAdmin sends an admin request to the account its ?account= names,
// the management account by default.
func (o *Organization) serveAdmin(w http.ResponseWriter, r *http.Request) {
	account := r.URL.Query().Get("account")
	if account == "" {
		account = o.opts.Management
	}
	e := o.Account(account)
	if e == nil {
		http.Error(w, "unknown account "+account, http.StatusNotFound)
		return
	}
	e.serveAdmin(w, r)
}
