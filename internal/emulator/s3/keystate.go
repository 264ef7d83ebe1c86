package s3

import (
	"net/http"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/kms"
)

// kmsKeyUnusable is S3's answer when the KMS key an operation must use is
// disabled or pending deletion: S3 passes KMS's error on with a "KMS."
// prefix, KMS.DisabledException and KMS.KMSInvalidStateException (the RDS
// user guide lists both among the AmazonS3Exception codes a misconfigured
// key causes, "Failure messages for Amazon S3 export tasks"). The status is
// not documented; the emulator answers 400, KMS's own status for both.
func (s *Service) kmsKeyUnusable(key *kms.Key) *core.Error {
	apiErr := s.keyService(key.ARN).UnusableError(key)
	if apiErr == nil {
		return nil
	}
	return core.Errorf(http.StatusBadRequest, "KMS."+apiErr.Code, apiErr.Message)
}

// keyPolicyAllows asks the key policy of keyARN about a use S3 makes of it
// on the caller's behalf, with the request context S3 calls KMS with.
func (s *Service) keyPolicyAllows(action, keyARN string, context map[string][]string) bool {
	ks := s.keyService(keyARN)
	key, ok := ks.Resolve(keyARN)
	return !ok || ks.KeyPolicyAllows(key, action, context)
}

// overwritingUpdateEncryption serves PUT /key?encryption as an S3-compatible
// server that does not implement UpdateObjectEncryption does: as a
// PutObject of the request's XML body, answered with an ETag.
func (s *Service) overwritingUpdateEncryption(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	return s.putObject(w, r, bucketName, key)
}
