package s3

// KMS keys of other accounts of an organization. S3 takes only keys of the
// bucket owner's account in UpdateObjectEncryption, unless AWS Support has
// approved the account to use keys of its organization's other accounts;
// then the bucket owner must be in an organization, the key's account in
// the same one, and the caller needs organizations:DescribeAccount
// (UpdateObjectEncryption, Permissions and Errors; seeds 000 and 001).

import (
	"net/http"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/kms"
)

// The AccessDenied messages of a key of another account, verbatim from the
// S3 API reference (seeds 000 and 001).
const (
	msgUOEOwnerNotInOrg = "The bucket owner's account was approved to make UpdateObjectEncryption requests that use any Amazon Web Services KMS key in their organization, but the bucket owner's account isn't part of an organization in Organizations. Make sure that the bucket owner's account and the specified KMS key belong to the same organization, and then try again."
	msgUOEKeyOtherOrg   = "The specified Amazon Web Services KMS key must be from the same organization in Organizations as the bucket. Specify a KMS key that belongs to the same organization as the bucket, and then try again."
)

// OrganizationInfo tells the organization of an account ("" for none) and
// the account's ARN in it.
type OrganizationInfo func(account string) (orgID, accountARN string)

// keyService is the KMS that holds a key: the account's own, or for a key
// ARN of another account that account's KMS when ForeignKMS knows it.
func (s *Service) keyService(keyARN string) *kms.Service {
	owner := keyAccount(keyARN)
	if owner == "" || owner == s.account || s.ForeignKMS == nil {
		return s.kms
	}
	if k := s.ForeignKMS(owner); k != nil {
		return k
	}
	return s.kms
}

// keyAccount is the account of a key ARN, "" for anything else.
func keyAccount(ref string) string {
	parts := strings.SplitN(ref, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" || parts[2] != "kms" {
		return ""
	}
	return parts[4]
}

// organizationKey decides whether UpdateObjectEncryption may use a key of
// the account owner: only with the organization approval, both accounts in
// one organization, and organizations:DescribeAccount allowed.
func (s *Service) organizationKey(r *http.Request, owner string) *core.Error {
	if !s.OrganizationKeys.Load() {
		return core.Errorf(http.StatusForbidden, "AccessDenied", msgUOEKeyOtherAccount)
	}
	bucketOrg := ""
	if s.Organization != nil {
		bucketOrg, _ = s.Organization(s.account)
	}
	if bucketOrg == "" {
		return core.Errorf(http.StatusForbidden, "AccessDenied", msgUOEOwnerNotInOrg)
	}
	keyOrg, ownerARN := s.Organization(owner)
	if keyOrg != bucketOrg {
		return core.Errorf(http.StatusForbidden, "AccessDenied", msgUOEKeyOtherOrg)
	}
	if !s.allowed(r, "organizations:DescribeAccount", ownerARN, nil) {
		return core.Errorf(http.StatusForbidden, "AccessDenied",
			"User is not authorized to perform: organizations:DescribeAccount on resource: "+ownerARN+" because no identity-based policy allows the organizations:DescribeAccount action")
	}
	return nil
}
