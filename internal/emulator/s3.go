package emulator

import (
	"net/http"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/iam"
	"github.com/s3rekey/s3rekey/internal/emulator/s3"
)

// serveS3 checks the signature and expected owner, applies faults and
// counts, then runs the operation.
func (e *Emulator) serveS3(w http.ResponseWriter, r *http.Request) {
	core.SetS3RequestIDs(w)
	bucketName, key, err := s3.SplitPath(r)
	if err != nil {
		core.WriteS3Error(w, r, core.Errorf(http.StatusBadRequest, "InvalidURI", "Couldn't parse the specified URI."))
		return
	}
	op, handler := e.s3.Route(r, bucketName, key)
	if handler == nil {
		core.WriteS3Error(w, r, core.Errorf(http.StatusNotImplemented, "NotImplemented",
			"A header or query you provided implies functionality that the emulator does not implement."))
		return
	}
	scope, ok := core.ParseSigV4(r)
	if !ok {
		if op == "UpdateObjectEncryption" {
			core.WriteS3Error(w, r, core.Errorf(http.StatusBadRequest, "InvalidRequest", s3.MsgUOESigV4))
			return
		}
		core.WriteS3Error(w, r, core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied"))
		return
	}
	if e.iam.Expired(scope.AccessKey, "s3") {
		// S3 answers a request signed with an expired session 400
		// ExpiredToken; a HEAD answer carries the status alone.
		core.WriteS3Error(w, r, core.Errorf(http.StatusBadRequest, "ExpiredToken", "The provided token has expired."))
		return
	}
	fault, err := e.before(r.Context(), "s3", op, bucketName)
	if err != nil {
		return
	}
	if fault != nil {
		core.WriteS3Error(w, r, fault)
		return
	}
	if owner := r.Header.Get("X-Amz-Expected-Bucket-Owner"); owner != "" && owner != e.opts.Account {
		core.WriteS3Error(w, r, core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied"))
		return
	}
	for _, p := range s3.Permissions(op, r, bucketName, key) {
		if !e.allowed(r, iam.Request{Action: p.Action, Resource: p.Resource, Context: e.resourceAccount(p.Resource, s3.RequestConditions(op, r))}) {
			core.WriteS3Error(w, r, core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied"))
			return
		}
	}
	if !e.s3Allowed(r, bucketName, key) {
		core.WriteS3Error(w, r, core.Errorf(http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."))
		return
	}
	if apiErr := handler(w, r, bucketName, key); apiErr != nil {
		core.WriteS3Error(w, r, apiErr)
	}
	e.opts.Logger.Debug("s3", "op", op, "bucket", bucketName, "key", key)
}
