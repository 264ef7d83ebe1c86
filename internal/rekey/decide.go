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
	// EventHold is an Object Lock event hold in force; EventHoldReleased
	// an event hold released whose retention (a duration from the
	// release) S3 reported without its end date.
	EventHold, EventHoldReleased bool
	StorageClass                 string // "" is STANDARD
	// ArchiveStatus is ARCHIVE_ACCESS or DEEP_ARCHIVE_ACCESS for an
	// INTELLIGENT_TIERING object in an archive tier (HeadObject,
	// x-amz-archive-status), "" otherwise.
	ArchiveStatus string
	// head is the HeadObject answer the state was read from, for a copy,
	// which keeps what it says (metadata, storage class, checksum).
	head *s3.HeadObjectOutput
}

// archived reports objects that must be restored before they can be read,
// and so copied: the GLACIER and DEEP_ARCHIVE storage classes, and
// INTELLIGENT_TIERING objects in the Archive Access and Deep Archive
// Access tiers (HeadObject, x-amz-archive-status; userguide
// intelligent-tiering-overview: objects in those tiers must be restored).
func (s State) archived() bool {
	return s.StorageClass == "GLACIER" || s.StorageClass == "DEEP_ARCHIVE" || s.ArchiveStatus != ""
}

// Locked reports Object Lock protection in force at now: a legal hold, an
// event hold (protected while it is on; API_EventHoldDuration), a released
// event hold whose retention's end S3 did not report, or retention.
func (s State) Locked(now time.Time) bool {
	return s.LegalHold || s.EventHold || s.EventHoldReleased || (s.LockMode != "" && s.RetainUntil.After(now))
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
		var detail string
		switch {
		case s.LegalHold:
			detail = "legal hold"
		case s.EventHold:
			detail = "event hold"
		case s.EventHoldReleased:
			detail = "event hold released, with a retention from its release whose end date was not reported"
		default:
			detail = s.LockMode + " retention until " + s.RetainUntil.UTC().Format(time.RFC3339)
		}
		return stop(Skipped, ReasonObjectLock, detail)
	case s.Encryption == EncNone || s.Encryption == EncDSSE:
		// Opted in to copy in place.
		switch {
		case s.archived():
			where := s.StorageClass
			if s.ArchiveStatus != "" {
				where += " (" + s.ArchiveStatus + " tier)"
			}
			return stop(Skipped, ReasonArchived, where+" objects must be restored before they can be copied")
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
