package s3

// Bucket policies: PutBucketPolicy, GetBucketPolicy and DeleteBucketPolicy
// (S3 API reference), stored as parsed IAM documents for the emulator to
// evaluate with the caller's identity policy (S3 User Guide, "Bucket
// policies for Amazon S3"; IAM User Guide, "Cross-account policy
// evaluation logic").

import (
	"io"
	"net/http"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/iam"
)

// maxPolicyBody is S3's limit on a bucket policy: 20 KB.
const maxPolicyBody = 20 << 10

func (s *Service) policyRoute(method string) (string, s3Handler) {
	switch method {
	case http.MethodPut:
		return "PutBucketPolicy", s.putBucketPolicy
	case http.MethodGet:
		return "GetBucketPolicy", s.getBucketPolicy
	case http.MethodDelete:
		return "DeleteBucketPolicy", s.deleteBucketPolicy
	}
	return "", nil
}

func malformedPolicy(msg string) *core.Error {
	return core.Errorf(http.StatusBadRequest, "MalformedPolicy", msg)
}

// putBucketPolicy stores a policy: a JSON document of at most 20 KB whose
// every statement names a Principal, as a resource-based policy must.
func (s *Service) putBucketPolicy(w http.ResponseWriter, r *http.Request, bucketName, _ string) *core.Error {
	doc, err := io.ReadAll(io.LimitReader(r.Body, maxPolicyBody+1))
	if err != nil {
		return core.Errorf(http.StatusBadRequest, "IncompleteBody", "reading body: "+err.Error())
	}
	if len(doc) > maxPolicyBody {
		return core.Errorf(http.StatusBadRequest, "PolicyTooLarge", "Policy exceeds the maximum allowed document size.")
	}
	p, err := iam.ParsePolicy(doc)
	if err != nil {
		return malformedPolicy("Policies must be valid JSON and the first byte must be '{': " + err.Error())
	}
	for _, st := range p.Statements {
		if st.Principal == nil {
			return malformedPolicy("Missing required field Principal")
		}
	}
	return s.setBucketPolicy(w, bucketName, p, doc)
}

// setBucketPolicy replaces a bucket's policy (nil removes it) and answers
// 204 No Content, as PutBucketPolicy and DeleteBucketPolicy do.
func (s *Service) setBucketPolicy(w http.ResponseWriter, bucketName string, p *iam.Policy, doc []byte) *core.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	b.policy, b.policyDoc = p, doc
	s.policyMu.Lock()
	if s.policies == nil {
		s.policies = map[string]*iam.Policy{}
	}
	s.policies[bucketName] = p
	s.policyMu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) getBucketPolicy(w http.ResponseWriter, _ *http.Request, bucketName, _ string) *core.Error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return apiErr
	}
	if b.policy == nil {
		return core.Errorf(http.StatusNotFound, "NoSuchBucketPolicy", "The bucket policy does not exist")
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.policyDoc)
	return nil
}

func (s *Service) deleteBucketPolicy(w http.ResponseWriter, _ *http.Request, bucketName, _ string) *core.Error {
	return s.setBucketPolicy(w, bucketName, nil, nil)
}

// BucketPolicy is a bucket's policy, nil when it has none or the bucket
// does not exist.
func (s *Service) BucketPolicy(bucketName string) *iam.Policy {
	s.policyMu.RLock()
	defer s.policyMu.RUnlock()
	return s.policies[bucketName]
}
