package rekey

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// Encryption states, named as S3 Inventory names them.
const (
	EncNone = "NOT-SSE"
	EncS3   = "SSE-S3"
	EncKMS  = "SSE-KMS"
	EncDSSE = "DSSE-KMS"
	EncC    = "SSE-C"
)

// State is what is known of one object version.
type State struct {
	Missing      bool // NoSuchKey / NotFound
	DeleteMarker bool
	Encryption   string // one of the Enc* constants
	KMSKeyARN    string // for SSE-KMS and DSSE-KMS
	BucketKey    bool
	LockMode     string // GOVERNANCE or COMPLIANCE, with RetainUntil
	RetainUntil  time.Time
	LegalHold    bool
	StorageClass string // "" is STANDARD
	// head is the HeadObject answer the state was read from, for a copy,
	// which keeps what it says (metadata, storage class, checksum).
	head *s3.HeadObjectOutput
}

// archived reports storage classes whose objects must be restored before
// they can be read, and so copied.
func archived(class string) bool { return class == "GLACIER" || class == "DEEP_ARCHIVE" }

// Locked reports Object Lock protection in force at now.
func (s State) Locked(now time.Time) bool {
	return s.LegalHold || (s.LockMode != "" && s.RetainUntil.After(now))
}

// Decision is what to do with an object: update it, or stop with Outcome.
type Decision struct {
	Update  bool
	Copy    bool    // copy in place (the bucket opted in for this source type)
	Outcome Outcome // the terminal outcome when neither Update nor Copy
}

// Decide is the decision table. Order matters: a missing object is gone
// whatever else is known; an object already on target is compliant even
// when it is locked; only then do the source type, the lock and dry run
// stop an update.
func Decide(s State, target policy.Bucket, dryRun bool, now time.Time) Decision {
	stop := func(st Status, reason, detail string) Decision {
		return Decision{Outcome: Outcome{Status: st, Reason: reason, Detail: detail}}
	}
	switch {
	case s.Missing || s.DeleteMarker:
		return stop(Gone, "", "")
	case s.Encryption == EncKMS && s.KMSKeyARN == target.KMSKeyARN && s.BucketKey == target.BucketKeyEnabled:
		return stop(Compliant, "", "")
	case s.Encryption == EncNone && !target.CopiesNotEncrypted():
		return stop(Skipped, ReasonNotEncrypted, "")
	case s.Encryption == EncC:
		return stop(Skipped, ReasonSSEC, "")
	case s.Encryption == EncDSSE && !target.CopiesDSSEKMS():
		return stop(Skipped, ReasonDSSEKMS, "")
	case s.Locked(now):
		detail := "legal hold"
		if !s.LegalHold {
			detail = s.LockMode + " retention until " + s.RetainUntil.UTC().Format(time.RFC3339)
		}
		return stop(Skipped, ReasonObjectLock, detail)
	case s.Encryption == EncNone || s.Encryption == EncDSSE:
		// Opted in to copy in place.
		switch {
		case archived(s.StorageClass):
			return stop(Skipped, ReasonArchived, s.StorageClass+" objects must be restored before they can be copied")
		case dryRun:
			return stop(WouldCopy, "", "")
		}
		return Decision{Copy: true}
	case s.Encryption != EncS3 && s.Encryption != EncKMS:
		return stop(Failed, ReasonInvalidRequest, "unknown encryption state "+s.Encryption)
	case dryRun:
		return stop(WouldUpdate, "", "")
	}
	return Decision{Update: true}
}
