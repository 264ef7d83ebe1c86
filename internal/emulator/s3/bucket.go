package s3

import (
	"github.com/s3rekey/s3rekey/internal/emulator/core"

	"encoding/xml"
	"net/http"
	"strings"
	"time"
)

const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

func (s *Service) createBucket(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	created, err := s.createBucketOnce(w, r, name)
	if created {
		s.managementEvent("CreateBucket", name)
	}
	return err
}

// createBucketOnce creates the bucket; created is false when it existed.
func (s *Service) createBucketOnce(w http.ResponseWriter, r *http.Request, name string) (created bool, _ *core.Error) {
	directory := isDirectoryBucketName(name)
	if directory && !directoryNamePattern.MatchString(name) || !directory && (!bucketNamePattern.MatchString(name) || strings.Contains(name, "..")) {
		return false, core.Errorf(http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.")
	}
	lock := strings.EqualFold(r.Header.Get("X-Amz-Bucket-Object-Lock-Enabled"), "true")
	if lock && directory {
		return false, core.Errorf(http.StatusBadRequest, "InvalidRequest", "Object Lock is not supported for directory buckets.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.buckets[name]; exists {
		if s.region == "us-east-1" && !directory {
			w.Header().Set("Location", "/"+name)
			w.WriteHeader(http.StatusOK)
			return false, nil
		}
		return false, core.Errorf(http.StatusConflict, "BucketAlreadyOwnedByYou",
			"Your previous request to create the named bucket succeeded and you already own it.")
	}
	// New buckets have ACLs disabled (BucketOwnerEnforced) since April 2023
	// unless the request asks otherwise (userguide about-object-ownership).
	ownership := r.Header.Get("X-Amz-Object-Ownership")
	switch ownership {
	case "":
		ownership = "BucketOwnerEnforced"
	case "BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter":
	default:
		return false, core.Errorf(http.StatusBadRequest, "InvalidArgument", "Invalid x-amz-object-ownership header")
	}
	b := &bucket{name: name, created: time.Now().UTC(), objectLock: lock, directory: directory, ownership: ownership,
		objects: map[string][]*objectVersion{}}
	if lock {
		b.versioning = versioningEnabled
	}
	s.buckets[name] = b
	w.Header().Set("Location", "/"+name)
	w.WriteHeader(http.StatusOK)
	return !directory, nil
}

func (s *Service) deleteBucket(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(name)
	if err != nil {
		return err
	}
	if len(b.objects) > 0 {
		return core.Errorf(http.StatusConflict, "BucketNotEmpty", "The bucket you tried to delete is not empty")
	}
	delete(s.buckets, name)
	s.policyMu.Lock()
	delete(s.policies, name)
	s.policyMu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) headBucket(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, err := s.bucketLocked(name); err != nil {
		return &core.Error{Status: http.StatusNotFound, Code: "NotFound", Message: "Not Found"}
	}
	w.Header().Set("x-amz-bucket-region", s.region)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) listBuckets(w http.ResponseWriter, r *http.Request, _, _ string) *core.Error {
	type entry struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
		BucketRegion string `xml:"BucketRegion"`
	}
	type result struct {
		XMLName           xml.Name `xml:"ListAllMyBucketsResult"`
		Xmlns             string   `xml:"xmlns,attr"`
		OwnerID           string   `xml:"Owner>ID"`
		Buckets           []entry  `xml:"Buckets>Bucket"`
		ContinuationToken string   `xml:"ContinuationToken,omitempty"`
		Prefix            string   `xml:"Prefix,omitempty"`
	}
	s.mu.RLock()
	created := map[string]string{}
	var names []string
	for _, b := range s.buckets {
		if !b.directory {
			names = append(names, b.name)
			created[b.name] = isoTime(b.created)
		}
	}
	s.mu.RUnlock()
	sortBy(names, func(n string) string { return n })
	page, next, apiErr := listBucketsPage(r.URL.Query(), names, s.region)
	if apiErr != nil {
		return apiErr
	}
	out := result{Xmlns: s3Namespace, OwnerID: s.account, ContinuationToken: next, Prefix: r.URL.Query().Get("prefix")}
	for _, n := range page {
		out.Buckets = append(out.Buckets, entry{n, created[n], s.region})
	}
	core.WriteXML(w, http.StatusOK, out)
	return nil
}

func (s *Service) getBucketLocation(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.RLock()
	_, err := s.bucketLocked(name)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	loc := s.region
	if loc == "us-east-1" {
		loc = ""
	}
	core.WriteXML(w, http.StatusOK, struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		Xmlns   string   `xml:"xmlns,attr"`
		Value   string   `xml:",chardata"`
	}{Xmlns: s3Namespace, Value: loc})
	return nil
}

type versioningConfiguration struct {
	XMLName   xml.Name `xml:"VersioningConfiguration"`
	Xmlns     string   `xml:"xmlns,attr,omitempty"`
	Status    string   `xml:"Status,omitempty"`
	MfaDelete string   `xml:"MfaDelete,omitempty"`
}

func (s *Service) putBucketVersioning(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	var in versioningConfiguration
	if err := core.ReadXML(r, maxConfigBody, &in); err != nil {
		return err
	}
	if in.Status != versioningEnabled && in.Status != versioningSuspended {
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(name)
	if err != nil {
		return err
	}
	if b.directory {
		return core.Errorf(http.StatusNotImplemented, "NotImplemented", "Versioning is not supported for directory buckets.")
	}
	if b.objectLock && in.Status == versioningSuspended {
		return core.Errorf(http.StatusConflict, "InvalidBucketState", "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.")
	}
	b.versioning = in.Status
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) getBucketVersioning(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.RLock()
	b, err := s.bucketLocked(name)
	var status string
	if err == nil {
		status = b.versioning
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	core.WriteXML(w, http.StatusOK, versioningConfiguration{Xmlns: s3Namespace, Status: status})
	return nil
}

type encryptionConfiguration struct {
	XMLName xml.Name `xml:"ServerSideEncryptionConfiguration"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Rules   []struct {
		Default *struct {
			SSEAlgorithm   string `xml:"SSEAlgorithm"`
			KMSMasterKeyID string `xml:"KMSMasterKeyID,omitempty"`
		} `xml:"ApplyServerSideEncryptionByDefault"`
		BucketKeyEnabled *bool    `xml:"BucketKeyEnabled"`
		Blocked          []string `xml:"BlockedEncryptionTypes>EncryptionType"`
	} `xml:"Rule"`
}

func (s *Service) putBucketEncryption(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	var in encryptionConfiguration
	if err := core.ReadXML(r, maxConfigBody, &in); err != nil {
		return err
	}
	// A rule may hold only BlockedEncryptionTypes (PutBucketEncryption's
	// "Block SSE-C encryption for a bucket" example): the default stays
	// SSE-S3. The whole configuration is replaced, as the PUT says; the
	// reference does not say that omitted blocked types are kept.
	if len(in.Rules) != 1 || (in.Rules[0].Default == nil && len(in.Rules[0].Blocked) == 0) {
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	rule := in.Rules[0]
	for _, t := range rule.Blocked {
		if t != "SSE-C" && t != "NONE" {
			return core.Errorf(http.StatusBadRequest, "InvalidArgument", "BlockedEncryptionTypes takes SSE-C or NONE")
		}
	}
	if rule.Default == nil {
		rule.Default = &struct {
			SSEAlgorithm   string `xml:"SSEAlgorithm"`
			KMSMasterKeyID string `xml:"KMSMasterKeyID,omitempty"`
		}{SSEAlgorithm: "AES256"}
	}
	enc := &bucketEncryption{algorithm: rule.Default.SSEAlgorithm, kmsKeyID: rule.Default.KMSMasterKeyID, blocked: rule.Blocked}
	if rule.BucketKeyEnabled != nil {
		enc.bucketKey = *rule.BucketKeyEnabled
	}
	switch enc.algorithm {
	case "AES256":
		if enc.kmsKeyID != "" {
			return core.Errorf(http.StatusBadRequest, "InvalidArgument", "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse")
		}
	case "aws:kms", "aws:kms:dsse":
	default:
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(name)
	if err != nil {
		return err
	}
	if b.directory {
		// Directory buckets validate the key, take customer managed keys only,
		// and keep one key for the bucket's lifetime (seeds 002, 004).
		if enc.algorithm == "aws:kms:dsse" {
			return core.Errorf(http.StatusBadRequest, "InvalidArgument", "DSSE-KMS is not supported for directory buckets.")
		}
		if enc.algorithm == "aws:kms" {
			key, ok := s.kms.Resolve(enc.kmsKeyID)
			if !ok || key.AWSManaged || strings.Contains(enc.kmsKeyID, "alias/") {
				return core.Errorf(http.StatusBadRequest, "InvalidArgument", "Directory buckets need the id or ARN of an existing customer managed KMS key.")
			}
			if b.encryption != nil && b.encryption.algorithm == "aws:kms" {
				if old, _ := s.kms.Resolve(b.encryption.kmsKeyID); old != nil && old.ID != key.ID {
					return core.Errorf(http.StatusBadRequest, "InvalidRequest", "The KMS key of a directory bucket cannot be changed.")
				}
			}
			enc.bucketKey = true
		}
	}
	b.encryption = enc
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) getBucketEncryption(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.RLock()
	b, err := s.bucketLocked(name)
	enc := bucketEncryption{algorithm: "AES256"}
	if err == nil && b.encryption != nil {
		enc = *b.encryption
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	type def struct {
		SSEAlgorithm   string `xml:"SSEAlgorithm"`
		KMSMasterKeyID string `xml:"KMSMasterKeyID,omitempty"`
	}
	type rule struct {
		Default          def      `xml:"ApplyServerSideEncryptionByDefault"`
		Blocked          []string `xml:"BlockedEncryptionTypes>EncryptionType,omitempty"`
		BucketKeyEnabled bool     `xml:"BucketKeyEnabled"`
	}
	core.WriteXML(w, http.StatusOK, struct {
		XMLName xml.Name `xml:"ServerSideEncryptionConfiguration"`
		Xmlns   string   `xml:"xmlns,attr"`
		Rule    rule     `xml:"Rule"`
	}{Xmlns: s3Namespace, Rule: rule{def{enc.algorithm, enc.kmsKeyID}, enc.blocked, enc.bucketKey}})
	return nil
}

func (s *Service) deleteBucketEncryption(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(name)
	if err != nil {
		return err
	}
	b.encryption = nil
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type objectLockConfiguration struct {
	XMLName           xml.Name `xml:"ObjectLockConfiguration"`
	Xmlns             string   `xml:"xmlns,attr,omitempty"`
	ObjectLockEnabled string   `xml:"ObjectLockEnabled,omitempty"`
	Rule              *struct {
		Mode  string `xml:"DefaultRetention>Mode,omitempty"`
		Days  int    `xml:"DefaultRetention>Days,omitempty"`
		Years int    `xml:"DefaultRetention>Years,omitempty"`
	} `xml:"Rule,omitempty"`
}

func (s *Service) putObjectLockConfiguration(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	var in objectLockConfiguration
	if err := core.ReadXML(r, maxConfigBody, &in); err != nil {
		return err
	}
	if in.ObjectLockEnabled != "Enabled" {
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "ObjectLockEnabled must be Enabled")
	}
	var rule *lockRule
	if in.Rule != nil {
		days := in.Rule.Days + 365*in.Rule.Years
		if (in.Rule.Mode != "GOVERNANCE" && in.Rule.Mode != "COMPLIANCE") || days <= 0 || (in.Rule.Days > 0 && in.Rule.Years > 0) {
			return core.Errorf(http.StatusBadRequest, "MalformedXML", "DefaultRetention needs a Mode of GOVERNANCE or COMPLIANCE and either Days or Years")
		}
		rule = &lockRule{mode: in.Rule.Mode, days: days}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.bucketLocked(name)
	if err != nil {
		return err
	}
	if !b.objectLock && b.versioning != versioningEnabled {
		return core.Errorf(http.StatusConflict, "InvalidBucketState", "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration")
	}
	b.objectLock, b.lockRule = true, rule
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) getObjectLockConfiguration(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.RLock()
	b, err := s.bucketLocked(name)
	var out objectLockConfiguration
	if err == nil && b.objectLock {
		out = objectLockConfiguration{Xmlns: s3Namespace, ObjectLockEnabled: "Enabled"}
		if b.lockRule != nil {
			out.Rule = &struct {
				Mode  string `xml:"DefaultRetention>Mode,omitempty"`
				Days  int    `xml:"DefaultRetention>Days,omitempty"`
				Years int    `xml:"DefaultRetention>Years,omitempty"`
			}{Mode: b.lockRule.mode, Days: b.lockRule.days}
		}
	}
	lock := err == nil && b.objectLock
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if !lock {
		return core.Errorf(http.StatusNotFound, "ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this bucket")
	}
	core.WriteXML(w, http.StatusOK, out)
	return nil
}

// createSession answers S3 Express's CreateSession, which the SDK calls
// before any object request to a directory bucket.
//
// With an endpoint override the SDK asks for a session even before
// CreateBucket, so any well-formed directory bucket name gets one.
func (s *Service) createSession(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	if !directoryNamePattern.MatchString(name) {
		return core.Errorf(http.StatusBadRequest, "InvalidRequest", "CreateSession is for directory buckets only.")
	}
	type creds struct {
		SessionToken    string `xml:"SessionToken"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		AccessKeyID     string `xml:"AccessKeyId"`
		Expiration      string `xml:"Expiration"`
	}
	core.WriteXML(w, http.StatusOK, struct {
		XMLName     xml.Name `xml:"CreateSessionResult"`
		Xmlns       string   `xml:"xmlns,attr"`
		Credentials creds    `xml:"Credentials"`
	}{Xmlns: s3Namespace, Credentials: creds{core.NewID(16), core.NewID(20), "ASIA" + strings.ToUpper(core.NewID(8)), isoTime(time.Now().Add(5 * time.Minute))}})
	return nil
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

type ownershipControls struct {
	XMLName xml.Name `xml:"OwnershipControls"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Rules   []struct {
		ObjectOwnership string `xml:"ObjectOwnership"`
	} `xml:"Rule"`
}

func (s *Service) putBucketOwnershipControls(w http.ResponseWriter, r *http.Request, name, _ string) *core.Error {
	var in ownershipControls
	if apiErr := core.ReadXML(r, maxConfigBody, &in); apiErr != nil {
		return apiErr
	}
	if len(in.Rules) != 1 {
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	switch o := in.Rules[0].ObjectOwnership; o {
	case "BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter":
		s.mu.Lock()
		defer s.mu.Unlock()
		b, apiErr := s.bucketLocked(name)
		if apiErr != nil {
			return apiErr
		}
		b.ownership = o
	default:
		return core.Errorf(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) getBucketOwnershipControls(w http.ResponseWriter, _ *http.Request, name, _ string) *core.Error {
	s.mu.RLock()
	b, apiErr := s.bucketLocked(name)
	if apiErr != nil {
		s.mu.RUnlock()
		return apiErr
	}
	o := b.ownership
	s.mu.RUnlock()
	if o == "" {
		return core.Errorf(http.StatusNotFound, "OwnershipControlsNotFoundError", "The bucket ownership controls were not found")
	}
	out := ownershipControls{Xmlns: s3Namespace}
	out.Rules = append(out.Rules, struct {
		ObjectOwnership string `xml:"ObjectOwnership"`
	}{o})
	core.WriteXML(w, http.StatusOK, out)
	return nil
}
