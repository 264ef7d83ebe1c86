package s3

import (
	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/kms"

	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LegacyUnencryptedHeader makes PutObject store the object without
// encryption (NOT-SSE). Real S3 has encrypted every new object since January
// 2023; this emulator-only header stands in for objects written before then.
const LegacyUnencryptedHeader = "X-Emulator-Legacy-Unencrypted"

var storageClasses = []string{"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
	"INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE"}

// storedHeaders are the representation headers an object keeps.
var storedHeaders = []string{"Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control", "Expires", websiteRedirectHeader}

// websiteRedirectHeader is stored with an object but never copied by
// CopyObject unless the request gives it again (API_CopyObject,
// x-amz-website-redirect-location: "this value is not copied").
const websiteRedirectHeader = "X-Amz-Website-Redirect-Location"

// eventHoldHeader places an Object Lock event hold on an upload
// (PutObject, CopyObject, CreateMultipartUpload): the version is protected
// while the hold is on (API_EventHoldDuration).
const eventHoldHeader = "X-Amz-Object-Lock-Event-Hold"

// sseRequest is what a request's encryption headers ask for.
type sseRequest struct {
	kind        sseKind // "" = bucket default
	kmsKeyID    string
	bucketKey   *bool
	customerKey []byte
}

// parseSSEHeaders reads the SSE headers of a request; prefix is
// "X-Amz-Copy-Source-" for a copy source's SSE-C key.
func parseSSEHeaders(h http.Header, prefix string) (sseRequest, *core.Error) {
	var req sseRequest
	if alg := h.Get(prefix + "X-Amz-Server-Side-Encryption-Customer-Algorithm"); alg != "" || h.Get(prefix+"X-Amz-Server-Side-Encryption-Customer-Key") != "" {
		if alg != "AES256" {
			return req, core.Errorf(http.StatusBadRequest, "InvalidEncryptionAlgorithmError", "The Encryption request you specified is not valid. Supported value: AES256.")
		}
		key, err := base64.StdEncoding.DecodeString(h.Get(prefix + "X-Amz-Server-Side-Encryption-Customer-Key"))
		if err != nil || len(key) != 32 {
			return req, core.Errorf(http.StatusBadRequest, "InvalidArgument", "The secret key was invalid for the specified algorithm.")
		}
		if md := h.Get(prefix + "X-Amz-Server-Side-Encryption-Customer-Key-Md5"); md != customerKeyMD5(key) {
			return req, core.Errorf(http.StatusBadRequest, "InvalidArgument", "The calculated MD5 hash of the key did not match the hash that was provided.")
		}
		req.kind, req.customerKey = sseC, key
	}
	if prefix != "" {
		return req, nil
	}
	sse := h.Get("X-Amz-Server-Side-Encryption")
	keyID := h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
	bucketKey := h.Get("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled")
	if req.kind == sseC && sse != "" {
		return req, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Server Side Encryption with Customer provided key is incompatible with the encryption method specified")
	}
	switch sse {
	case "":
	case "AES256":
		req.kind = sseS3
	case "aws:kms":
		req.kind = sseKMS
	case "aws:kms:dsse":
		req.kind = sseDSSE
	default:
		return req, core.Errorf(http.StatusBadRequest, "InvalidArgument", "The encryption method specified is not supported")
	}
	if keyID != "" && req.kind != sseKMS && req.kind != sseDSSE {
		return req, core.Errorf(http.StatusBadRequest, "InvalidArgument",
			"Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
	}
	req.kmsKeyID = keyID
	if bucketKey != "" {
		v, err := strconv.ParseBool(bucketKey)
		if err != nil {
			return req, core.Errorf(http.StatusBadRequest, "InvalidArgument", "x-amz-server-side-encryption-bucket-key-enabled must be true or false")
		}
		req.bucketKey = &v
	}
	return req, nil
}

// sealNew encrypts a new object body under what the request asks for, or the
// bucket default. It returns the envelope, the stored bytes, and the KMS
// operation S3 made on the caller's behalf ("" for none).
func (s *Service) sealNew(b *bucket, req sseRequest, legacy bool, plaintext []byte) (envelope, []byte, string, *core.Error) {
	if legacy {
		if req.kind != "" {
			return envelope{}, nil, "", core.Errorf(http.StatusBadRequest, "InvalidArgument", LegacyUnencryptedHeader+" cannot be combined with encryption headers")
		}
		return envelope{kind: sseNone}, append([]byte(nil), plaintext...), "", nil
	}
	if req.kind == sseC {
		return envelope{kind: sseC, customerKeyMD5: customerKeyMD5(req.customerKey)}, core.Seal(req.customerKey, plaintext, nil), "", nil
	}
	kind, keyID, bucketKey := req.kind, req.kmsKeyID, false
	if kind == "" {
		kind, keyID = sseS3, ""
		if b.encryption != nil {
			switch b.encryption.algorithm {
			case "aws:kms":
				kind = sseKMS
			case "aws:kms:dsse":
				kind = sseDSSE
			}
			keyID, bucketKey = b.encryption.kmsKeyID, b.encryption.bucketKey
		}
	} else if kind == sseKMS && b.encryption != nil && b.encryption.algorithm == "aws:kms" {
		bucketKey = b.encryption.bucketKey
	}
	if req.bucketKey != nil {
		bucketKey = *req.bucketKey
	}
	dataKey := newDataKey()
	env := envelope{kind: kind}
	var material []byte
	kmsOp := ""
	if kind == sseKMS || kind == sseDSSE {
		var key *kms.Key
		if keyID == "" {
			key = s.kms.AWSManagedS3Key()
		} else if k, ok := s.keyService(keyID).Resolve(keyID); ok {
			key = k
		} else {
			return envelope{}, nil, "", core.Errorf(http.StatusBadRequest, "KMS.NotFoundException", "Invalid keyId "+keyID)
		}
		if apiErr := s.kmsKeyUnusable(key); apiErr != nil {
			return envelope{}, nil, "", apiErr
		}
		env.kmsKeyARN, material = key.ARN, key.Material
		s.keyService(key.ARN).RecordUse(key.ARN, "GenerateDataKey")
		env.bucketKey = bucketKey && kind == sseKMS
		if !env.bucketKey {
			kmsOp = "GenerateDataKey"
		}
	}
	env.wrappedKey = wrap(kind, dataKey, s.masterKey, material, env.kmsKeyARN)
	return env, core.Seal(dataKey, plaintext, nil), kmsOp, nil
}

// openObject decrypts a stored version, given the request's SSE-C headers.
func (s *Service) openObject(v *objectVersion, req sseRequest) ([]byte, *core.Error) {
	switch v.env.kind {
	case sseNone:
		if req.kind == sseC {
			return nil, core.Errorf(http.StatusBadRequest, "InvalidRequest", "The encryption parameters are not applicable to this object.")
		}
		return v.ciphertext, nil
	case sseC:
		if req.kind != sseC {
			return nil, core.Errorf(http.StatusBadRequest, "InvalidRequest", "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.")
		}
		if customerKeyMD5(req.customerKey) != v.env.customerKeyMD5 {
			return nil, core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied")
		}
		plain, err := core.Open(req.customerKey, v.ciphertext, nil)
		if err != nil {
			return nil, core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied")
		}
		return plain, nil
	}
	if req.kind == sseC {
		return nil, core.Errorf(http.StatusBadRequest, "InvalidRequest", "The encryption parameters are not applicable to this object.")
	}
	dataKey, apiErr := s.unwrapDataKey(v.env)
	if apiErr != nil {
		return nil, apiErr
	}
	plain, err := core.Open(dataKey, v.ciphertext, nil)
	if err != nil {
		return nil, core.Errorf(http.StatusInternalServerError, "InternalError", "stored object does not decrypt: "+err.Error())
	}
	return plain, nil
}

func (s *Service) unwrapDataKey(env envelope) ([]byte, *core.Error) {
	var material []byte
	if env.kind == sseKMS || env.kind == sseDSSE {
		ks := s.keyService(env.kmsKeyARN)
		key, ok := ks.Resolve(env.kmsKeyARN)
		if !ok {
			return nil, core.Errorf(http.StatusBadRequest, "KMS.NotFoundException", "Invalid keyId "+env.kmsKeyARN)
		}
		if apiErr := s.kmsKeyUnusable(key); apiErr != nil {
			return nil, apiErr
		}
		material = key.Material
		ks.RecordUse(key.ARN, "Decrypt")
	}
	dataKey, err := unwrap(env, s.masterKey, material)
	if err != nil {
		return nil, core.Errorf(http.StatusInternalServerError, "InternalError", "data key does not unwrap: "+err.Error())
	}
	return dataKey, nil
}

// lockHeaders reads the object lock headers of an upload.
func lockHeaders(h http.Header) (mode string, until time.Time, hold bool, apiErr *core.Error) {
	mode = h.Get("X-Amz-Object-Lock-Mode")
	untilText := h.Get("X-Amz-Object-Lock-Retain-Until-Date")
	if (mode == "") != (untilText == "") {
		return "", time.Time{}, false, core.Errorf(http.StatusBadRequest, "InvalidArgument", "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied")
	}
	if mode != "" {
		if mode != "GOVERNANCE" && mode != "COMPLIANCE" {
			return "", time.Time{}, false, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Unknown wormMode directive.")
		}
		t, err := time.Parse(time.RFC3339, untilText)
		if err != nil {
			return "", time.Time{}, false, core.Errorf(http.StatusBadRequest, "InvalidArgument", "The retain until date must be in ISO 8601 format")
		}
		if !t.After(time.Now()) {
			return "", time.Time{}, false, core.Errorf(http.StatusBadRequest, "InvalidArgument", "The retain until date must be in the future!")
		}
		until = t
	}
	switch h.Get("X-Amz-Object-Lock-Legal-Hold") {
	case "", "OFF":
	case "ON":
		hold = true
	default:
		return "", time.Time{}, false, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Legal Hold must be either of 'ON' or 'OFF'")
	}
	return mode, until, hold, nil
}

// newVersion builds a version from an upload's body and headers; callers
// hold s.mu. It also returns the KMS call S3 made, for the counters.
func (s *Service) newVersion(b *bucket, key string, r *http.Request, plaintext []byte) (*objectVersion, string, *core.Error) {
	if len(key) > 1024 {
		return nil, "", core.Errorf(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
	}
	req, apiErr := parseSSEHeaders(r.Header, "")
	if apiErr != nil {
		return nil, "", apiErr
	}
	legacy := strings.EqualFold(r.Header.Get(LegacyUnencryptedHeader), "true")
	mode, until, hold, apiErr := lockHeaders(r.Header)
	if apiErr != nil {
		return nil, "", apiErr
	}
	eventHold := strings.EqualFold(r.Header.Get(eventHoldHeader), "ON")
	if (mode != "" || hold || eventHold) && !b.objectLock {
		return nil, "", core.Errorf(http.StatusBadRequest, "InvalidRequest", "Bucket is missing Object Lock Configuration")
	}
	if mode == "" && b.lockRule != nil {
		mode, until = b.lockRule.mode, time.Now().UTC().AddDate(0, 0, b.lockRule.days)
	}
	class := r.Header.Get("X-Amz-Storage-Class")
	if class == "" {
		class = "STANDARD"
		if b.directory {
			class = "EXPRESS_ONEZONE"
		}
	}
	if !slices.Contains(storageClasses, class) {
		return nil, "", core.Errorf(http.StatusBadRequest, "InvalidStorageClass", "The storage class you specified is not valid")
	}
	sum := md5.Sum(plaintext)
	if cmd5 := r.Header.Get("Content-Md5"); cmd5 != "" && cmd5 != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, "", core.Errorf(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
	}
	alg, checksum, apiErr := requestChecksum(r.Header, plaintext)
	if apiErr != nil {
		return nil, "", apiErr
	}
	tags, apiErr := headerTags(r.Header)
	if apiErr != nil {
		return nil, "", apiErr
	}
	env, stored, kmsOp, apiErr := s.sealNew(b, req, legacy, plaintext)
	if apiErr != nil {
		return nil, "", apiErr
	}
	v := &objectVersion{
		key: key, versionID: b.newVersionID(), lastModified: time.Now().UTC().Truncate(time.Millisecond),
		size: int64(len(plaintext)), etag: `"` + hex.EncodeToString(sum[:]) + `"`, storageClass: class,
		contentType: r.Header.Get("Content-Type"), headers: map[string]string{}, metadata: userMetadata(r.Header),
		checksumAlg: alg, checksum: checksum, checksumType: "FULL_OBJECT", env: env, ciphertext: stored,
		lockMode: mode, retainUntil: until, legalHold: hold, eventHold: eventHold, tags: tags,
	}
	if v.contentType == "" {
		v.contentType = "binary/octet-stream"
	}
	for _, h := range storedHeaders {
		if val := r.Header.Get(h); val != "" {
			v.headers[h] = val
		}
	}
	return v, kmsOp, nil
}

// requestChecksum verifies a flexible checksum the client sent, or computes
// CRC64NVME, which S3 adds to every upload without one.
func requestChecksum(h http.Header, body []byte) (alg, value string, apiErr *core.Error) {
	for name, compute := range checksumAlgorithms {
		sent := h.Get("X-Amz-Checksum-" + name)
		if sent == "" {
			continue
		}
		if got := compute(body); got != sent {
			return "", "", core.Errorf(http.StatusBadRequest, "BadDigest",
				fmt.Sprintf("The %s you specified did not match the calculated checksum.", strings.ToUpper(name)))
		}
		return name, sent, nil
	}
	return "crc64nvme", checksumAlgorithms["crc64nvme"](body), nil
}

func userMetadata(h http.Header) map[string]string {
	meta := map[string]string{}
	for name, vals := range h {
		if k, ok := strings.CutPrefix(strings.ToLower(name), "x-amz-meta-"); ok && len(vals) > 0 {
			meta[k] = vals[0]
		}
	}
	return meta
}

func readBody(r *http.Request) ([]byte, *core.Error) {
	if r.ContentLength > maxObjectSize {
		return nil, core.Errorf(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the emulator's maximum object size")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxObjectSize+1))
	if err != nil {
		return nil, core.Errorf(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header")
	}
	if len(body) > maxObjectSize {
		return nil, core.Errorf(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the emulator's maximum object size")
	}
	return body, nil
}

// writeVersionHeaders sets x-amz-version-id as S3 does: only on buckets
// that have ever had versioning.
func writeVersionHeaders(w http.ResponseWriter, b *bucket, v *objectVersion) {
	if b.versioning != "" {
		w.Header().Set("x-amz-version-id", v.versionID)
	}
}

func writeEncryptionHeaders(w http.ResponseWriter, env envelope) {
	switch env.kind {
	case sseS3, sseKMS, sseDSSE:
		w.Header().Set("x-amz-server-side-encryption", env.kind.headerValue())
	case sseC:
		w.Header().Set("x-amz-server-side-encryption-customer-algorithm", "AES256")
		w.Header().Set("x-amz-server-side-encryption-customer-key-MD5", env.customerKeyMD5)
	}
	if env.kmsKeyARN != "" {
		w.Header().Set("x-amz-server-side-encryption-aws-kms-key-id", env.kmsKeyARN)
	}
	if env.bucketKey {
		w.Header().Set("x-amz-server-side-encryption-bucket-key-enabled", "true")
	}
}

func (s *Service) putObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	body, apiErr := readBody(r)
	if apiErr != nil {
		return apiErr
	}
	s.mu.Lock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		s.mu.Unlock()
		return apiErr
	}
	v, kmsOp, apiErr := s.newVersion(b, key, r, body)
	if apiErr != nil {
		s.mu.Unlock()
		return apiErr
	}
	if apiErr := s.kmsAccess(r, v.env, "kms:GenerateDataKey"); apiErr != nil {
		s.mu.Unlock()
		return apiErr
	}
	b.addVersion(v)
	ev := b.newEvent("ObjectCreated:Put", "PutObject", v)
	writeVersionHeaders(w, b, v)
	s.mu.Unlock()

	if kmsOp != "" {
		s.counter.Add("kms", kmsOp, bucketName)
	}
	w.Header().Set("ETag", v.etag)
	w.Header().Set("x-amz-checksum-"+v.checksumAlg, v.checksum)
	w.Header().Set("x-amz-checksum-type", v.checksumType)
	writeEncryptionHeaders(w, v.env)
	w.WriteHeader(http.StatusOK)
	s.emit(ev)
	return nil
}

// readableVersion finds the version a GET or HEAD names, answering delete
// markers as S3 does.
func readableVersion(b *bucket, key, versionID string) (*objectVersion, *core.Error) {
	v, apiErr := b.lookupObject(key, versionID)
	if apiErr != nil {
		return nil, apiErr
	}
	if v.deleteMarker {
		hdr := map[string]string{"x-amz-delete-marker": "true", "x-amz-version-id": v.versionID}
		if versionID != "" {
			return nil, &core.Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed",
				Message: "The specified method is not allowed against this resource.", Header: hdr}
		}
		e := errNoSuchKey()
		e.Header = hdr
		return nil, e
	}
	return v, nil
}

// writeObjectHeaders writes a HEAD or GET answer's headers. The Object
// Lock headers appear only to callers allowed to read them (HeadObject:
// "you must have the s3:GetObjectRetention permission" for the mode and
// retain-until date, "s3:GetObjectLegalHold" for the legal hold).
func writeObjectHeaders(w http.ResponseWriter, r *http.Request, b *bucket, v *objectVersion, showRetention, showLegalHold bool) {
	h := w.Header()
	h.Set("ETag", v.etag)
	h.Set("Last-Modified", v.lastModified.Format(http.TimeFormat))
	h.Set("Content-Type", v.contentType)
	h.Set("Accept-Ranges", "bytes")
	for k, val := range v.headers {
		h.Set(k, val)
	}
	for k, val := range v.metadata {
		h.Set("x-amz-meta-"+k, val)
	}
	if v.storageClass != "STANDARD" {
		h.Set("x-amz-storage-class", v.storageClass)
	}
	if len(v.tags) > 0 {
		h.Set("x-amz-tagging-count", tagCount(v))
	}
	writeVersionHeaders(w, b, v)
	writeEncryptionHeaders(w, v.env)
	if v.lockMode != "" && showRetention {
		h.Set("x-amz-object-lock-mode", v.lockMode)
		h.Set("x-amz-object-lock-retain-until-date", v.retainUntil.UTC().Format(time.RFC3339))
	}
	if b.objectLock && showLegalHold {
		h.Set("x-amz-object-lock-legal-hold", map[bool]string{true: "ON", false: "OFF"}[v.legalHold])
	}
	if v.eventHold && showRetention {
		// HeadObject, x-amz-object-lock-event-hold: "only returned if the
		// requester has the s3:GetObjectRetention permission".
		h.Set(eventHoldHeader, "ON")
	}
	if strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") && v.checksum != "" {
		h.Set("x-amz-checksum-"+v.checksumAlg, v.checksum)
		h.Set("x-amz-checksum-type", v.checksumType)
	}
}

func (s *Service) headObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	return s.readObject(w, r, bucketName, key, false)
}

func (s *Service) getObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	return s.readObject(w, r, bucketName, key, true)
}

// visibleVersion finds the version a read names, as the caller may see
// it: HeadObject and GetObject, Permissions: "If you don't have the
// s3:ListBucket permission, Amazon S3 returns an HTTP status code 403
// Forbidden error" for a key that does not exist. Callers hold s.mu.
func (s *Service) visibleVersion(r *http.Request, bucketName, key string) (*bucket, *objectVersion, *core.Error) {
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	v, apiErr := readableVersion(b, key, r.URL.Query().Get("versionId"))
	if apiErr != nil {
		if apiErr.Code == "NoSuchKey" && !s.allowed(r, "s3:ListBucket", BucketARN(bucketName), nil) {
			return nil, nil, errAccessDenied()
		}
		return nil, nil, apiErr
	}
	return b, v, nil
}

// readObject serves GET and HEAD. A HEAD of an SSE-C object needs the
// customer key too, as in S3 (400 otherwise).
func (s *Service) readObject(w http.ResponseWriter, r *http.Request, bucketName, key string, withBody bool) *core.Error {
	req, apiErr := parseSSEHeaders(r.Header, "")
	if apiErr != nil {
		return apiErr
	}
	// Authorized before the lock: the authorizer reads the bucket policy
	// under the same lock, and a read lock taken twice deadlocks once a
	// writer waits between the two (sync.RWMutex).
	retention := s.allowed(r, "s3:GetObjectRetention", ObjectARN(bucketName, key), nil)
	legalHold := s.allowed(r, "s3:GetObjectLegalHold", ObjectARN(bucketName, key), nil)
	s.mu.RLock()
	b, found, apiErr := s.visibleVersion(r, bucketName, key)
	if apiErr != nil {
		s.mu.RUnlock()
		return apiErr
	}
	writeObjectHeaders(w, r, b, found, retention, legalHold)
	v := *found // UpdateObjectEncryption may change the envelope once the lock is released
	s.mu.RUnlock()

	if withBody {
		if apiErr := s.kmsAccess(r, v.env, "kms:Decrypt"); apiErr != nil {
			clearHeaders(w)
			return apiErr
		}
	}
	var plain []byte
	if withBody || v.env.kind == sseC {
		if plain, apiErr = s.openObject(&v, req); apiErr != nil {
			clearHeaders(w)
			return apiErr
		}
	}
	if r.URL.Query().Has("partNumber") {
		return writePart(w, r, &v, plain, withBody)
	}
	if !withBody {
		w.Header().Set("Content-Length", strconv.FormatInt(v.size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if rng := r.Header.Get("Range"); rng != "" {
		start, end, ok := parseRange(rng, int64(len(plain)))
		if !ok {
			clearHeaders(w)
			return core.Errorf(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
		}
		w.Header().Del("x-amz-checksum-" + v.checksumAlg)
		w.Header().Del("x-amz-checksum-type")
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(plain)))
		w.Header().Set("Content-Length", strconv.FormatInt(end-start+1, 10))
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write(plain[start : end+1])
		return nil
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(plain)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(plain)
	return nil
}

// writePart answers a GET or HEAD with partNumber: that part of a
// multipart object (part 1 of any other object is all of it), 206 with
// its range and x-amz-mp-parts-count (API reference, GetObject and
// HeadObject: partNumber).
func writePart(w http.ResponseWriter, r *http.Request, v *objectVersion, plain []byte, withBody bool) *core.Error {
	n, apiErr := partNumber(r)
	if apiErr != nil {
		clearHeaders(w)
		return apiErr
	}
	start, end := int64(0), v.size-1
	switch {
	case len(v.parts) > 0 && n <= len(v.parts):
		for _, p := range v.parts[:n-1] {
			start += p.size
		}
		end = start + v.parts[n-1].size - 1
		w.Header().Set("x-amz-mp-parts-count", strconv.Itoa(len(v.parts)))
	case len(v.parts) > 0 || n != 1:
		clearHeaders(w)
		return core.Errorf(http.StatusRequestedRangeNotSatisfiable, "InvalidPartNumber", "The requested partnumber is not satisfiable")
	}
	w.Header().Del("x-amz-checksum-" + v.checksumAlg)
	w.Header().Del("x-amz-checksum-type")
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, v.size))
	w.Header().Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	w.WriteHeader(http.StatusPartialContent)
	if withBody {
		_, _ = w.Write(plain[start : end+1])
	}
	return nil
}

// copyPreconditions checks x-amz-copy-source-if-match and
// -if-none-match against the source's ETag (CopyObject and
// UploadPartCopy): a failed one answers 412 and copies nothing.
func copyPreconditions(r *http.Request, src *objectVersion) *core.Error {
	failed := core.Errorf(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	etag := strings.Trim(src.etag, `"`)
	if m := r.Header.Get("X-Amz-Copy-Source-If-Match"); m != "" && strings.Trim(m, `"`) != etag {
		return failed
	}
	if m := r.Header.Get("X-Amz-Copy-Source-If-None-Match"); m != "" && strings.Trim(m, `"`) == etag {
		return failed
	}
	return nil
}

func clearHeaders(w http.ResponseWriter) {
	for k := range w.Header() {
		delete(w.Header(), k)
	}
}

// parseRange reads a single "bytes=a-b", "bytes=a-" or "bytes=-n" range.
func parseRange(h string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	var err error
	switch {
	case a == "":
		n, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || n <= 0 {
			return 0, 0, false
		}
		start, end = max(size-n, 0), size-1
	default:
		if start, err = strconv.ParseInt(a, 10, 64); err != nil {
			return 0, 0, false
		}
		end = size - 1
		if b != "" {
			if end, err = strconv.ParseInt(b, 10, 64); err != nil {
				return 0, 0, false
			}
			end = min(end, size-1)
		}
	}
	if start < 0 || start > end || start >= size {
		return 0, 0, false
	}
	return start, end, true
}

// lockedAgainstDelete reports whether Object Lock forbids removing v.
func lockedAgainstDelete(v *objectVersion, bypassGovernance bool, now time.Time) bool {
	if v.legalHold || v.eventHold {
		return true
	}
	if v.lockMode == "" || !v.retainUntil.After(now) {
		return false
	}
	return v.lockMode == "COMPLIANCE" || !bypassGovernance
}

func (s *Service) deleteObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	bypass := strings.EqualFold(r.Header.Get("X-Amz-Bypass-Governance-Retention"), "true")
	s.mu.Lock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		s.mu.Unlock()
		return apiErr
	}
	res, apiErr := b.deleteLocked(key, r.URL.Query().Get("versionId"), bypass)
	s.mu.Unlock()
	if apiErr != nil {
		return apiErr
	}
	if res.versionID != "" {
		w.Header().Set("x-amz-version-id", res.versionID)
	}
	if res.deleteMarker {
		w.Header().Set("x-amz-delete-marker", "true")
	}
	w.WriteHeader(http.StatusNoContent)
	s.emit(res.event)
	return nil
}

// deleted is what one delete did: the version it removed or the delete
// marker it made, and the event to fire.
type deleted struct {
	versionID    string
	deleteMarker bool
	markerMade   bool
	event        *s3Event
}

// deleteLocked deletes a key or one version of it, as DeleteObject does;
// callers hold s.mu.
func (b *bucket) deleteLocked(key, versionID string, bypassGovernance bool) (deleted, *core.Error) {
	var res deleted
	switch {
	case versionID != "":
		v, lookupErr := b.lookupObject(key, versionID)
		if lookupErr != nil {
			if lookupErr.Code == "NoSuchVersion" {
				return deleted{versionID: versionID}, nil // deleting a missing version succeeds
			}
			return res, lookupErr
		}
		if lockedAgainstDelete(v, bypassGovernance, time.Now()) {
			return res, core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied because object protected by object lock.")
		}
		b.removeVersion(key, versionID)
		res = deleted{versionID: versionID, deleteMarker: v.deleteMarker, event: b.newEvent("ObjectRemoved:Delete", "DeleteObject", v)}
	case b.versioning == "":
		if v := b.current(key); v != nil {
			b.removeVersion(key, nullVersion)
			res.event = b.newEvent("ObjectRemoved:Delete", "DeleteObject", v)
		}
	default:
		marker := &objectVersion{key: key, versionID: b.newVersionID(), deleteMarker: true, lastModified: time.Now().UTC().Truncate(time.Millisecond)}
		b.addVersion(marker)
		res = deleted{versionID: marker.versionID, deleteMarker: true, markerMade: true,
			event: b.newEvent("ObjectRemoved:DeleteMarkerCreated", "DeleteObject", marker)}
	}
	return res, nil
}

func (s *Service) copyObject(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	srcBucket, srcKey, srcVersion, apiErr := copySource(r)
	if apiErr != nil {
		return apiErr
	}
	srcReq, apiErr := parseSSEHeaders(r.Header, "X-Amz-Copy-Source-")
	if apiErr != nil {
		return apiErr
	}
	directive := r.Header.Get("X-Amz-Metadata-Directive")
	if directive == "" {
		directive = "COPY"
	}
	if directive != "COPY" && directive != "REPLACE" {
		return core.Errorf(http.StatusBadRequest, "InvalidArgument", "Unknown metadata directive.")
	}
	if srcBucket == bucketName && srcKey == key && directive == "COPY" &&
		r.Header.Get("X-Amz-Server-Side-Encryption") == "" && r.Header.Get("X-Amz-Storage-Class") == "" &&
		r.Header.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") == "" {
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}

	ev, apiErr := s.copyLocked(w, r, srcBucket, srcKey, srcVersion, bucketName, key, directive, srcReq)
	if apiErr != nil {
		return apiErr
	}
	s.emit(ev)
	return nil
}

// copyLocked does the copy under the store lock and answers the request; the
// caller delivers the event after the lock is released.
func (s *Service) copyLocked(w http.ResponseWriter, r *http.Request, srcBucket, srcKey, srcVersion, bucketName, key, directive string, srcReq sseRequest) (*s3Event, *core.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, apiErr := s.bucketLocked(srcBucket)
	if apiErr != nil {
		return nil, apiErr
	}
	sv, apiErr := readableVersion(sb, srcKey, srcVersion)
	if apiErr != nil {
		return nil, apiErr
	}
	if apiErr := copyPreconditions(r, sv); apiErr != nil {
		return nil, apiErr
	}
	db, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return nil, apiErr
	}
	if apiErr := destinationPreconditions(r, db, key); apiErr != nil {
		return nil, apiErr
	}
	annotations, apiErr := s.copiedAnnotations(r, sv, srcBucket, srcKey, bucketName, key)
	if apiErr != nil {
		return nil, apiErr
	}
	plain, apiErr := s.openObject(sv, srcReq)
	if apiErr != nil {
		return nil, apiErr
	}
	// The copy is a new upload: it takes the request's encryption headers or
	// the destination bucket's default, never the source's.
	hdr := r.Header.Clone()
	if directive == "COPY" {
		for k := range hdr {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") {
				hdr.Del(k)
			}
		}
		for k, v := range sv.metadata {
			hdr.Set("x-amz-meta-"+k, v)
		}
		hdr.Set("Content-Type", sv.contentType)
		for k, v := range sv.headers {
			if k != websiteRedirectHeader {
				hdr.Set(k, v)
			}
		}
	}
	hdr.Del("Content-Md5")
	for name := range checksumAlgorithms {
		hdr.Del("X-Amz-Checksum-" + name)
	}
	switch r.Header.Get("X-Amz-Tagging-Directive") {
	case "", "COPY":
		hdr.Del("X-Amz-Tagging")
		if len(sv.tags) > 0 {
			// Copying tags reads them from the source and writes them to
			// the copy (CopyObject, Permissions: s3:GetObjectTagging and
			// s3:PutObjectTagging).
			if !s.allowed(r, "s3:GetObjectTagging", ObjectARN(srcBucket, srcKey), nil) || !s.allowed(r, "s3:PutObjectTagging", ObjectARN(bucketName, key), nil) {
				return nil, errAccessDenied()
			}
			hdr.Set("X-Amz-Tagging", encodeTags(sv.tags))
		}
	case "REPLACE":
	default:
		return nil, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Unknown tagging directive.")
	}
	copyReq := r.Clone(r.Context())
	copyReq.Header = hdr
	v, kmsOp, apiErr := s.newVersion(db, key, copyReq, plain)
	if apiErr != nil {
		return nil, apiErr
	}
	// The copy keeps the source's checksum algorithm unless the request
	// names another (CopyObject: x-amz-checksum-algorithm).
	alg := strings.ToLower(r.Header.Get("X-Amz-Checksum-Algorithm"))
	if _, ok := checksumAlgorithms[alg]; !ok {
		alg = sv.checksumAlg
	}
	if alg != "" && alg != v.checksumAlg {
		v.checksumAlg, v.checksum = alg, checksumAlgorithms[alg](plain)
	}
	v.annotations = annotations
	db.addVersion(v)
	ev := db.newEvent("ObjectCreated:Copy", "CopyObject", v)
	if kmsOp != "" {
		s.counter.Add("kms", kmsOp, bucketName)
	}
	writeVersionHeaders(w, db, v)
	if db.versioning != "" && sb.versioning != "" {
		w.Header().Set("x-amz-copy-source-version-id", sv.versionID)
	}
	writeEncryptionHeaders(w, v.env)
	type result struct {
		XMLName      xml.Name `xml:"CopyObjectResult"`
		ETag         string   `xml:"ETag"`
		LastModified string   `xml:"LastModified"`
	}
	core.WriteXML(w, http.StatusOK, result{ETag: v.etag, LastModified: isoTime(v.lastModified)})
	return ev, nil
}

type retentionXML struct {
	XMLName         xml.Name `xml:"Retention"`
	Xmlns           string   `xml:"xmlns,attr,omitempty"`
	Mode            string   `xml:"Mode,omitempty"`
	RetainUntilDate string   `xml:"RetainUntilDate,omitempty"`
}

func (s *Service) putObjectRetention(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	var in retentionXML
	if err := core.ReadXML(r, maxConfigBody, &in); err != nil {
		return err
	}
	var until time.Time
	if in.Mode != "" || in.RetainUntilDate != "" {
		if in.Mode != "GOVERNANCE" && in.Mode != "COMPLIANCE" {
			return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
		}
		t, err := time.Parse(time.RFC3339, in.RetainUntilDate)
		if err != nil {
			return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
		}
		if !t.After(time.Now()) {
			return core.Errorf(http.StatusBadRequest, "InvalidArgument", "The retain until date must be in the future!")
		}
		until = t
	}
	bypass := strings.EqualFold(r.Header.Get("X-Amz-Bypass-Governance-Retention"), "true")
	s.mu.Lock()
	defer s.mu.Unlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	if !b.objectLock {
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "Bucket is missing Object Lock Configuration")
	}
	v, apiErr := readableVersion(b, key, r.URL.Query().Get("versionId"))
	if apiErr != nil {
		return apiErr
	}
	now := time.Now()
	if v.lockMode != "" && v.retainUntil.After(now) {
		shortens := in.Mode == "" || until.Before(v.retainUntil)
		if v.lockMode == "COMPLIANCE" && (shortens || in.Mode != "COMPLIANCE") {
			return core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied because object protected by object lock.")
		}
		if v.lockMode == "GOVERNANCE" && (shortens || in.Mode != "GOVERNANCE") && !bypass {
			return core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied because object protected by object lock.")
		}
	}
	v.lockMode, v.retainUntil = in.Mode, until
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) getObjectRetention(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	v, apiErr := readableVersion(b, key, r.URL.Query().Get("versionId"))
	if apiErr != nil {
		return apiErr
	}
	if v.lockMode == "" {
		return core.Errorf(http.StatusNotFound, "NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock configuration")
	}
	core.WriteXML(w, http.StatusOK, retentionXML{Xmlns: s3Namespace, Mode: v.lockMode, RetainUntilDate: v.retainUntil.UTC().Format(time.RFC3339)})
	return nil
}

type legalHoldXML struct {
	XMLName xml.Name `xml:"LegalHold"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Status  string   `xml:"Status"`
}

func (s *Service) putObjectLegalHold(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	var in legalHoldXML
	if err := core.ReadXML(r, maxConfigBody, &in); err != nil {
		return err
	}
	if in.Status != "ON" && in.Status != "OFF" {
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	if !b.objectLock {
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "Bucket is missing Object Lock Configuration")
	}
	v, apiErr := readableVersion(b, key, r.URL.Query().Get("versionId"))
	if apiErr != nil {
		return apiErr
	}
	v.legalHold = in.Status == "ON"
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) getObjectLegalHold(w http.ResponseWriter, r *http.Request, bucketName, key string) *core.Error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	if !b.objectLock {
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "Bucket is missing Object Lock Configuration")
	}
	v, apiErr := readableVersion(b, key, r.URL.Query().Get("versionId"))
	if apiErr != nil {
		return apiErr
	}
	core.WriteXML(w, http.StatusOK, legalHoldXML{Xmlns: s3Namespace, Status: map[bool]string{true: "ON", false: "OFF"}[v.legalHold]})
	return nil
}
