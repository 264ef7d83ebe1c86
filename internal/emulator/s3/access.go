package s3

import (
	"net/http"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// Authorizer decides whether the caller of r may do action on resource,
// with the given condition keys in the request context.
type Authorizer func(r *http.Request, action, resource string, context map[string][]string) bool

// allowed asks the authorizer; with none, everything is allowed.
func (s *Service) allowed(r *http.Request, action, resource string, context map[string][]string) bool {
	return s.Authorize == nil || s.Authorize(r, action, resource, context)
}

// BucketARN is the IAM resource of a bucket.
func BucketARN(bucket string) string { return "arn:aws:s3:::" + bucket }

// ObjectARN is the IAM resource of an object.
func ObjectARN(bucket, key string) string { return "arn:aws:s3:::" + bucket + "/" + key }

func errAccessDenied() *core.Error {
	return core.Errorf(http.StatusForbidden, "AccessDenied", "Access Denied")
}

// Permission is an IAM action on a resource.
type Permission struct{ Action, Resource string }

// bucketActions are the actions of bucket operations on the bucket ARN
// (Service Authorization Reference, "Actions defined by Amazon S3").
var bucketActions = map[string]string{
	"CreateBucket": "s3:CreateBucket", "DeleteBucket": "s3:DeleteBucket", "HeadBucket": "s3:ListBucket",
	"ListObjectsV2": "s3:ListBucket", "ListObjectVersions": "s3:ListBucketVersions", "GetBucketLocation": "s3:GetBucketLocation",
	"PutBucketVersioning": "s3:PutBucketVersioning", "GetBucketVersioning": "s3:GetBucketVersioning",
	"PutBucketEncryption": "s3:PutEncryptionConfiguration", "GetBucketEncryption": "s3:GetEncryptionConfiguration",
	"DeleteBucketEncryption":             "s3:PutEncryptionConfiguration",
	"PutBucketNotificationConfiguration": "s3:PutBucketNotification", "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
	"PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration", "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
	"CreateSession": "s3express:CreateSession",
	"ListObjects":   "s3:ListBucket", "ListMultipartUploads": "s3:ListBucketMultipartUploads",
	"PutBucketOwnershipControls": "s3:PutBucketOwnershipControls", "GetBucketOwnershipControls": "s3:GetBucketOwnershipControls",
	"PutBucketTagging": "s3:PutBucketTagging", "GetBucketTagging": "s3:GetBucketTagging", "DeleteBucketTagging": "s3:PutBucketTagging",
	"PutBucketInventoryConfiguration": "s3:PutInventoryConfiguration", "GetBucketInventoryConfiguration": "s3:GetInventoryConfiguration",
	"DeleteBucketInventoryConfiguration": "s3:PutInventoryConfiguration",
	"PutBucketReplication":               "s3:PutReplicationConfiguration", "GetBucketReplication": "s3:GetReplicationConfiguration",
	"PutBucketPolicy": "s3:PutBucketPolicy", "GetBucketPolicy": "s3:GetBucketPolicy", "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
	// DeleteObjects authorizes each key as s3:DeleteObject inside.
	"DeleteObjects": "",
}

// objectActions are the actions of object operations on the object ARN;
// the second is the one for a request naming a version.
var objectActions = map[string][2]string{
	"GetObject": {"s3:GetObject", "s3:GetObjectVersion"}, "HeadObject": {"s3:GetObject", "s3:GetObjectVersion"},
	"PutObject": {"s3:PutObject", "s3:PutObject"}, "CopyObject": {"s3:PutObject", "s3:PutObject"},
	"DeleteObject":       {"s3:DeleteObject", "s3:DeleteObjectVersion"},
	"PutObjectRetention": {"s3:PutObjectRetention", "s3:PutObjectRetention"}, "GetObjectRetention": {"s3:GetObjectRetention", "s3:GetObjectRetention"},
	"PutObjectLegalHold": {"s3:PutObjectLegalHold", "s3:PutObjectLegalHold"}, "GetObjectLegalHold": {"s3:GetObjectLegalHold", "s3:GetObjectLegalHold"},
	// Multipart upload and permissions: every part operation is s3:PutObject.
	"CreateMultipartUpload": {"s3:PutObject", "s3:PutObject"}, "UploadPart": {"s3:PutObject", "s3:PutObject"},
	"UploadPartCopy": {"s3:PutObject", "s3:PutObject"}, "CompleteMultipartUpload": {"s3:PutObject", "s3:PutObject"},
	"AbortMultipartUpload": {"s3:AbortMultipartUpload", "s3:AbortMultipartUpload"},
	"ListParts":            {"s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts"},
	"GetObjectAttributes":  {"s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"},
	"PutObjectTagging":     {"s3:PutObjectTagging", "s3:PutObjectVersionTagging"},
	"GetObjectTagging":     {"s3:GetObjectTagging", "s3:GetObjectVersionTagging"},
}

// Permissions lists what the caller must be allowed for a request to run
// at all. What depends on the object (404 or 403, Object Lock headers, the
// KMS keys of UpdateObjectEncryption) is decided inside the operation.
func Permissions(op string, r *http.Request, bucket, key string) []Permission {
	if op == "ListBuckets" {
		return []Permission{{"s3:ListAllMyBuckets", "*"}}
	}
	if a, ok := bucketActions[op]; ok {
		if a == "" {
			return nil
		}
		return []Permission{{a, BucketARN(bucket)}}
	}
	object := ObjectARN(bucket, key)
	if op == "UpdateObjectEncryption" {
		// UpdateObjectEncryption, Permissions: "s3:PutObject" and
		// "s3:UpdateObjectEncryption" (seeds 000 and 001).
		return []Permission{{"s3:PutObject", object}, {"s3:UpdateObjectEncryption", object}}
	}
	a, ok := objectActions[op]
	if !ok {
		return []Permission{{"s3:" + op, object}}
	}
	action := a[0]
	if r.URL.Query().Get("versionId") != "" {
		action = a[1]
	}
	out := []Permission{{action, object}}
	if (op == "PutObject" || op == "CreateMultipartUpload") && r.Header.Get("X-Amz-Tagging") != "" {
		// Tags on upload: s3:PutObjectTagging too (PutObject, Permissions).
		out = append(out, Permission{"s3:PutObjectTagging", object})
	}
	if op == "CopyObject" || op == "UploadPartCopy" {
		// A malformed source is the operation's own error to answer.
		if srcBucket, srcKey, version, apiErr := copySource(r); apiErr == nil {
			read := "s3:GetObject"
			if version != "" {
				read = "s3:GetObjectVersion"
			}
			out = append(out, Permission{read, ObjectARN(srcBucket, srcKey)})
		}
	}
	return out
}

// RequestConditions are the S3 condition keys a write's headers set:
// s3:x-amz-server-side-encryption and
// s3:x-amz-server-side-encryption-aws-kms-key-id, as given (Service
// Authorization Reference, "Condition keys for Amazon S3"). A request
// without the header has no such key, so a policy's StringNotEquals on it
// matches (IAM User Guide, "Condition operators").
func RequestConditions(op string, r *http.Request) map[string][]string {
	switch op {
	case "PutObject", "CopyObject", "CreateMultipartUpload":
	default:
		return nil
	}
	out := map[string][]string{}
	for header, key := range map[string]string{
		"X-Amz-Server-Side-Encryption":                "s3:x-amz-server-side-encryption",
		"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "s3:x-amz-server-side-encryption-aws-kms-key-id",
	} {
		if v := r.Header.Get(header); v != "" {
			out[key] = []string{v}
		}
	}
	return out
}
