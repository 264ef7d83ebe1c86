package s3

import (
	"github.com/s3rekey/s3rekey/internal/emulator/core"

	"encoding/xml"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// The error messages of UpdateObjectEncryption, verbatim from the S3 API
// reference (seeds 000 and 001).
const (
	msgUOEUnencryptedSource = "The UpdateObjectEncryption operation doesn't supported unencrypted source objects. Only source objects encrypted with SSE-S3 or SSE-KMS are supported."
	msgUOEUnsupportedSource = "The UpdateObjectEncryption operation doesn't support source objects with the encryption type DSSE-KMS or SSE-C. Only source objects encrypted with SSE-S3 or SSE-KMS are supported."
	msgUOEUnsupportedTarget = "The UpdateObjectEncryption operation doesn't support updating the encryption type to DSSE-KMS or SSE-C. Modify the request to specify SSE-KMS for the updated encryption type, and then try again."
	MsgUOESigV4             = "Requests that modify an object encryption configuration require Amazon Web Services Signature Version 4. Modify the request to use Amazon Web Services Signature Version 4, and then try again."
	msgUOEInvalidType       = "Requests that modify an object encryption configuration require a valid new encryption type. Valid values are SSEKMS. Modify the request to specify SSE-KMS for the updated encryption type, and then try again."
	msgUOEMissingKeyARN     = "Requests that modify an object's encryption type to SSE-KMS require an Amazon Web Services KMS key Amazon Resource Name (ARN). Modify the request to specify a KMS key ARN, and then try again."
	msgUOEInvalidKeyARN     = "Requests that modify an object's encryption type to SSE-KMS require a valid Amazon Web Services KMS key Amazon Resource Name (ARN). Confirm that you have a correctly formatted KMS key ARN in your request, and then try again."
	msgUOEInvalidBucketKey  = "The BucketKeyEnabled value isn't valid. Valid values are true or false. Modify the request to specify a valid value, and then try again."
	msgUOEKeyOtherAccount   = "The Amazon Web Services KMS key in the request must be owned by the same account as the bucket. Modify the request to specify a KMS key from the same account, and then try again."
	msgUOEObjectLock        = "The encryption type for the specified object can’t be updated because that object is protected by S3 Object Lock. If the object has a governance-mode retention period or a legal hold, you must first remove the Object Lock status on the object before you issue your UpdateObjectEncryption request. You can't use the UpdateObjectEncryption operation with objects that have an Object Lock compliance mode retention period applied to them."
	// Not in the reference: the answer for a key ARN of the bucket owner's
	// account that KMS does not know (or that is in another region).
	msgUOEUnknownKey = "The Amazon Web Services KMS key in the request does not exist or is not accessible to the bucket owner."
)

// UOEOnCompliant counts UpdateObjectEncryption calls on objects already
// under the requested key and bucket-key setting (a pseudo-operation in
// Counts; S3 bills them as ordinary requests).
const UOEOnCompliant = "UpdateObjectEncryption(already-compliant)"

// KeyARNPattern is the pattern the API reference gives for KMSKeyArn.
var KeyARNPattern = regexp.MustCompile(`^arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:[0-9]{12}:key/.+$`)

// objectEncryptionXML is the request body: one member of the union.
type objectEncryptionXML struct {
	XMLName xml.Name   `xml:"ObjectEncryption"`
	SSEKMS  *sseKMSXML `xml:"SSE-KMS"`
	SSES3   *struct{}  `xml:"SSE-S3"`
	DSSEKMS *struct{}  `xml:"DSSE-KMS"`
	SSEC    *struct{}  `xml:"SSE-C"`
}

type sseKMSXML struct {
	KMSKeyArn        *string `xml:"KMSKeyArn"`
	BucketKeyEnabled *string `xml:"BucketKeyEnabled"`
}

func invalidUOE(msg string) *core.Error {
	return core.Errorf(http.StatusBadRequest, "InvalidRequest", msg)
}

// uoeTarget validates the request body and returns the target key ARN and
// bucket-key setting.
func uoeTarget(r *http.Request) (keyARN string, bucketKey bool, apiErr *core.Error) {
	var in objectEncryptionXML
	if apiErr := core.ReadXML(r, maxConfigBody, &in); apiErr != nil {
		if apiErr.Code == "MissingRequestBodyError" {
			return "", false, invalidUOE(msgUOEInvalidType)
		}
		return "", false, apiErr
	}
	if in.DSSEKMS != nil || in.SSEC != nil {
		return "", false, invalidUOE(msgUOEUnsupportedTarget)
	}
	if in.SSEKMS == nil {
		return "", false, invalidUOE(msgUOEInvalidType)
	}
	if in.SSEKMS.KMSKeyArn == nil || strings.TrimSpace(*in.SSEKMS.KMSKeyArn) == "" {
		return "", false, invalidUOE(msgUOEMissingKeyARN)
	}
	keyARN = strings.TrimSpace(*in.SSEKMS.KMSKeyArn)
	if !KeyARNPattern.MatchString(keyARN) {
		return "", false, invalidUOE(msgUOEInvalidKeyARN)
	}
	if in.SSEKMS.BucketKeyEnabled != nil {
		switch strings.TrimSpace(*in.SSEKMS.BucketKeyEnabled) {
		case "true":
			bucketKey = true
		case "false":
		default:
			return "", false, invalidUOE(msgUOEInvalidBucketKey)
		}
	}
	return keyARN, bucketKey, nil
}

// targetKeyActions are the KMS permissions UpdateObjectEncryption needs on
// its target key (UpdateObjectEncryption, Permissions: kms:Encrypt,
// kms:Decrypt, kms:GenerateDataKey, kms:ReEncrypt*; seeds 000 and 001).
var targetKeyActions = []string{"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptTo"}

// uoeKMSAccess checks the caller's KMS permissions, as S3 uses them on the
// caller's behalf (kms:ViaService is S3 of the region): every target-key
// action, and kms:Decrypt on the key of an SSE-KMS source.
func (s *Service) uoeKMSAccess(r *http.Request, source envelope, targetARN string) *core.Error {
	for _, action := range targetKeyActions {
		if err := s.kmsAllowed(r, action, targetARN); err != nil {
			return err
		}
	}
	if source.kind == sseKMS {
		return s.kmsAllowed(r, "kms:Decrypt", source.kmsKeyARN)
	}
	return nil
}

// kmsAccess checks the KMS permission S3 uses on the caller's behalf to
// write (kms:GenerateDataKey) or read (kms:Decrypt) an object under SSE-KMS
// or DSSE-KMS (UsingKMSEncryption.md: "Permissions"); other objects need
// none.
func (s *Service) kmsAccess(r *http.Request, env envelope, action string) *core.Error {
	if env.kind != sseKMS && env.kind != sseDSSE {
		return nil
	}
	return s.kmsAllowed(r, action, env.kmsKeyARN)
}

// kmsAllowed asks IAM about one KMS action S3 takes for the caller
// (kms:ViaService is S3 of the region).
func (s *Service) kmsAllowed(r *http.Request, action, keyARN string) *core.Error {
	ctx := map[string][]string{"kms:ViaService": {"s3." + s.region + ".amazonaws.com"}, "kms:CallerAccount": {s.account},
		"kms:ResourceAliases": s.keyService(keyARN).Aliases(keyARN)}
	if !s.allowed(r, action, keyARN, ctx) {
		return core.Errorf(http.StatusForbidden, "AccessDenied",
			"User is not authorized to perform: "+action+" on resource: "+keyARN+" because no identity-based policy allows the "+action+" action")
	}
	if !s.keyPolicyAllows(action, keyARN, ctx) {
		return core.Errorf(http.StatusForbidden, "AccessDenied",
			"User is not authorized to perform: "+action+" on resource: "+keyARN+" because no resource-based policy allows the "+action+" action")
	}
	return nil
}

// updateObjectEncryption re-wraps an object's data key under the target KMS
// key. The stored ciphertext, ETag, Last-Modified, storage class, checksum,
// metadata and version id are left exactly as they were, and no event fires.
//
// Where the reference is silent the emulator answers: NoSuchKey for a
// missing key, a missing version or a delete marker (the reference lists
// NoSuchKey as the only not-found error), and 501 NotImplemented for
// directory buckets, as S3 Express answers operations it does not support.
func (s *Service) updateObjectEncryption(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	keyARN, bucketKey, apiErr := uoeTarget(r)
	s.mu.Lock()
	b, bucketErr := s.bucketLocked(bucketName)
	if bucketErr != nil {
		s.mu.Unlock()
		return bucketErr
	}
	if b.directory {
		s.mu.Unlock()
		return core.Errorf(http.StatusNotImplemented, "NotImplemented", "UpdateObjectEncryption is not supported for directory buckets.")
	}
	s.mu.Unlock()
	if apiErr != nil {
		return apiErr
	}
	if owner := strings.SplitN(keyARN, ":", 6)[4]; owner != s.account {
		if apiErr := s.organizationKey(r, owner); apiErr != nil {
			return apiErr
		}
	}
	target, ok := s.keyService(keyARN).Resolve(keyARN)
	if !ok {
		return core.Errorf(http.StatusForbidden, "AccessDenied", msgUOEUnknownKey)
	}
	if apiErr := s.kmsKeyUnusable(target); apiErr != nil {
		return apiErr
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	b, apiErr = s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	versionID := r.URL.Query().Get("versionId")
	v, apiErr := b.lookupObject(key, versionID)
	if apiErr != nil {
		if apiErr.Code == "NoSuchVersion" {
			return errNoSuchKey()
		}
		return apiErr
	}
	if v.deleteMarker {
		e := errNoSuchKey()
		e.Header = map[string]string{"x-amz-delete-marker": "true", "x-amz-version-id": v.versionID}
		return e
	}
	if v.legalHold || v.eventHold || (v.lockMode != "" && v.retainUntil.After(time.Now())) {
		return core.Errorf(http.StatusForbidden, "AccessDenied", msgUOEObjectLock)
	}
	switch v.env.kind {
	case sseNone:
		return invalidUOE(msgUOEUnencryptedSource)
	case sseC, sseDSSE:
		return invalidUOE(msgUOEUnsupportedSource)
	}
	if apiErr := s.uoeKMSAccess(r, v.env, target.ARN); apiErr != nil {
		return apiErr
	}
	dataKey, apiErr := s.unwrapDataKey(v.env)
	if apiErr != nil {
		return apiErr
	}
	// S3 calls KMS to decrypt an SSE-KMS source's data key and to encrypt
	// it under the target, each without a bucket key; throttled by KMS,
	// S3 answers 503 SlowDown.
	kmsCalls := 0
	if v.env.kind == sseKMS && !v.env.bucketKey {
		kmsCalls++
	}
	if !bucketKey {
		kmsCalls++
	}
	if kmsCalls > 0 && s.KMSQuota != nil && !s.KMSQuota(kmsCalls) {
		return core.Errorf(http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate for operations involving AWS KMS.")
	}
	if v.env.kind == sseKMS && v.env.kmsKeyARN == target.ARN && v.env.bucketKey == bucketKey {
		// Already exactly this: allowed, but a wasted PUT-class request.
		s.counter.Add("s3", UOEOnCompliant, bucketName)
	}
	if v.env.kind == sseKMS && !v.env.bucketKey {
		s.counter.Add("kms", "Decrypt", bucketName)
	}
	if !bucketKey {
		s.counter.Add("kms", "Encrypt", bucketName)
	}
	v.env = envelope{
		kind: sseKMS, kmsKeyARN: target.ARN, bucketKey: bucketKey,
		wrappedKey: wrap(sseKMS, dataKey, s.masterKey, target.Material, target.ARN),
	}
	s.changedLocked(b, key)
	writeVersionHeaders(w, b, v)
	w.WriteHeader(http.StatusOK)
	return nil
}
