package inventory

import (
	"time"

	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// Reasons a row is not enqueued, besides rekey's skip reasons.
const (
	SkipDeleteMarker = "delete-marker"
	SkipNoncurrent   = "noncurrent-version"
)

// NullVersion is the version id S3 gives objects written while
// versioning was never enabled or suspended.
const NullVersion = "null"

// Filter decides which inventory rows of one managed bucket become work.
type Filter struct {
	Bucket policy.Bucket
	Now    time.Time
}

// Apply returns the object to enqueue, with the facts the row proves, or
// the reason it is not enqueued. Rows whose encryption or lock state rules
// them out are counted, not sent: the consumer would only skip them.
func (f Filter) Apply(r Row) (obj messages.Object, skip string) {
	switch {
	case r.IsDeleteMarker:
		return obj, SkipDeleteMarker
	case !r.IsLatest && f.Bucket.Versions != policy.VersionsAll:
		return obj, SkipNoncurrent
	case !f.Bucket.InScope(r.Key):
		return obj, rekey.ReasonExcludedPrefix
	}
	facts := &messages.Facts{}
	if r.HasEncryption {
		switch {
		case r.EncryptionStatus == rekey.EncNone && !f.Bucket.CopiesNotEncrypted():
			return obj, rekey.ReasonNotEncrypted
		case r.EncryptionStatus == rekey.EncC:
			return obj, rekey.ReasonSSEC
		case r.EncryptionStatus == rekey.EncDSSE && !f.Bucket.CopiesDSSEKMS():
			return obj, rekey.ReasonDSSEKMS
		case r.EncryptionStatus == rekey.EncS3, r.EncryptionStatus == rekey.EncKMS, r.EncryptionStatus == rekey.EncNone, r.EncryptionStatus == rekey.EncDSSE:
			// Unencrypted and DSSE-KMS rows reach here only when the bucket
			// opted in to copy them in place.
			facts.Encryption = r.EncryptionStatus
		}
	}
	if r.HasBucketKey && r.BucketKeyStatus != "" {
		bk := r.BucketKeyStatus == "ENABLED"
		facts.BucketKey = &bk
	}
	if r.HasLock {
		locked := r.LegalHold == "ON" || (r.LockMode != "" && r.RetainUntil.After(f.Now))
		if locked {
			return obj, rekey.ReasonObjectLock
		}
		facts.Locked = &locked
	}
	obj = messages.Object{Bucket: r.Bucket, Key: r.Key}
	if f.Bucket.Versions == policy.VersionsAll {
		obj.VersionID = r.VersionID
		if obj.VersionID == "" && r.HasIsLatest {
			// An all-versions report leaves the VersionId of the null
			// version (written before versioning was enabled) empty
			// (storage-inventory.md). Empty would address the current
			// version instead; S3 names the null version "null".
			obj.VersionID = NullVersion
		}
	}
	if facts.Encryption != "" || facts.BucketKey != nil || facts.Locked != nil {
		obj.Facts = facts
	}
	return obj, ""
}
