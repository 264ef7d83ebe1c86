package encrypt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3rekey/s3rekey/internal/rekey"
)

// The answers that show the circuit breaker (breaker.go) a scope, not an
// object, is broken.

// S3's messages for a KMS key of another account or organization
// (UpdateObjectEncryption, Errors: AccessDenied; seeds 000 and 001).
var otherAccountMessages = []string{
	"must be owned by the same account as the bucket",
	"isn't part of an organization",
	"must be from the same organization",
}

// tripSign reads an object's outcome for a sign that its scope, not the
// object, is broken: the scope to pause, the reason, and whether a probe
// may end it.
//
// S3 passes KMS's refusals on: KMS.DisabledException and
// KMS.KMSInvalidStateException for a key disabled or pending deletion
// (key-state.md; the codes the RDS user guide lists among
// AmazonS3Exception's), KMS.NotFoundException for a deleted key, and 403
// AccessDenied naming the key (or kms:) when a key policy does not let S3
// use it. Whether the message names the key is not documented: a message
// naming another key is about the object's source key and stays the
// object's; one naming no key is taken as the target's (a probe ends the
// pause if it was not).
//
// The status S3 answers them with is not documented either: as a 5xx they
// come back as retries named by their code, and pause all the same.
func tripSign(o rekey.Outcome, target, bucket string) (scope, reason string, probes bool) {
	d := o.Detail
	switch {
	case o.Status == rekey.Retry && strings.HasPrefix(o.Reason, "KMS."):
		d = o.Reason + ": " + o.Detail
	case o.Status != rekey.Failed:
		return "", "", false
	}
	if strings.HasPrefix(d, NotS3Code) {
		return ScopeAll, PauseNotS3, false
	}
	keyScope := ScopeKeyPrefix + target
	if target == "" {
		keyScope = ScopeBucketPrefix + bucket
	}
	aboutTarget := target != "" && strings.Contains(d, target) || !strings.Contains(d, ":key/")
	switch {
	case strings.Contains(d, "KMS.DisabledException") && aboutTarget:
		return keyScope, PauseKeyDisabled, true
	case strings.Contains(d, "KMS.KMSInvalidStateException") && aboutTarget:
		return keyScope, PauseKeyPendingDeletion, true
	case strings.Contains(d, "KMS.NotFoundException") && aboutTarget:
		return keyScope, PauseKeyNotFound, true
	}
	if o.Status != rekey.Failed || o.Reason != rekey.ReasonAccessDenied {
		return "", "", false
	}
	for _, m := range otherAccountMessages {
		if strings.Contains(d, m) {
			return keyScope, PauseKeyOtherAccount, true
		}
	}
	if target != "" && strings.Contains(d, target) || strings.Contains(d, "kms:") {
		return keyScope, PauseKeyAccessDenied, true
	}
	return "", "", false
}

// DetectNotS3 makes UpdateObjectEncryption fail when its answer is not
// S3's. S3 answers it with no body and no ETag (UpdateObjectEncryption,
// Response Syntax: RequestCharged only); servers that do not implement it
// treat PUT /key?encryption as a PutObject of the request body, and answer
// as PutObject does, with an ETag (and checksums). Such an answer means the
// object was just overwritten: the breaker stops everything on it.
//
// Until one UpdateObjectEncryption of the client has been answered as only
// S3 answers it (see answeredAsS3), its UpdateObjectEncryption requests go
// one at a time (other requests are not held), so that an endpoint that is
// not S3 overwrites one object, not a window of them.
func DetectNotS3(o *s3.Options) {
	var verified atomic.Bool
	var first sync.Mutex
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("S3RekeyDetectNotS3",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				if middleware.GetOperationName(ctx) != "UpdateObjectEncryption" {
					return next.HandleDeserialize(ctx, in)
				}
				if !verified.Load() {
					first.Lock()
					if verified.Load() {
						first.Unlock() // verified while this one waited: go at once
					} else {
						defer first.Unlock()
					}
				}
				out, md, err := next.HandleDeserialize(ctx, in)
				resp, ok := out.RawResponse.(*smithyhttp.Response)
				if !ok {
					return out, md, err
				}
				if etag := resp.Header.Get("ETag"); etag != "" {
					return out, md, &smithy.GenericAPIError{Code: NotS3Code, Fault: smithy.FaultUnknown,
						Message: fmt.Sprintf("UpdateObjectEncryption was answered with ETag %s, as a PutObject is: the endpoint is not S3 and has probably overwritten the object with the request body", etag)}
				}
				if answeredAsS3(resp, err) {
					verified.Store(true)
				}
				return out, md, err
			}), middleware.After)
	})
}

// answeredAsS3 reports an UpdateObjectEncryption answer only S3 gives: 200
// without an ETag, or a refusal whose message is one of the operation's
// own (every message of its reference's Errors names UpdateObjectEncryption
// or the object's encryption, seeds 000 and 001), which a server that does
// not implement the operation has no reason to send.
func answeredAsS3(resp *smithyhttp.Response, err error) bool {
	if err == nil {
		return resp.StatusCode == 200
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	msg := ae.ErrorMessage()
	return strings.Contains(msg, "UpdateObjectEncryption") || strings.Contains(msg, "object encryption configuration")
}
