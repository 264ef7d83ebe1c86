package rekey

// Status is the kind of terminal outcome of one object task.
type Status string

// The outcome vocabulary shared by logs, metrics, reports and tests.
const (
	Updated     Status = "updated"      // UpdateObjectEncryption applied
	Copied      Status = "copied"       // copied in place onto the target key (opt-in, for sources UpdateObjectEncryption refuses)
	WouldCopy   Status = "would-copy"   // dry run of a copy
	Compliant   Status = "compliant"    // already under the exact target key and bucket-key setting
	Gone        Status = "gone"         // NoSuchKey or a delete marker: nothing to do
	Skipped     Status = "skipped"      // not eligible; Reason says why
	WouldUpdate Status = "would-update" // dry run
	Retry       Status = "retry"        // throttling, 5xx, timeouts: try again later
	Failed      Status = "failed"       // access denied and similar: needs a person
	Rejected    Status = "rejected"     // the message itself could not be decoded
)

// Reasons for Skipped and Failed.
const (
	ReasonNotEncrypted    = "not-encrypted"
	ReasonSSEC            = "sse-c"
	ReasonDSSEKMS         = "dsse-kms"
	ReasonObjectLock      = "object-lock"
	ReasonUnmanagedBucket = "unmanaged-bucket"
	ReasonDirectoryBucket = "directory-bucket"
	ReasonExcludedPrefix  = "excluded-prefix"
	ReasonAccessDenied    = "access-denied"
	ReasonInvalidRequest  = "invalid-request"
	ReasonNotImplemented  = "not-implemented"
	// ReasonArchived: GLACIER and DEEP_ARCHIVE objects, and
	// INTELLIGENT_TIERING objects in the Archive Access or Deep Archive
	// Access tier, need a restore before a copy can read them.
	ReasonArchived = "archived"
	// ReasonACLsEnabled: a copy drops an object's ACL grants, so buckets
	// whose ACLs are not disabled are not copied in.
	ReasonACLsEnabled = "acls-enabled"
	// ReasonNoncurrent: a copy becomes the current version, so only the
	// current version of an object is copied.
	ReasonNoncurrent = "noncurrent-version"
	// ReasonUnreadable: HeadObject answered a bare 400 in a dry run, where
	// no update is sent to learn whether the object is SSE-C.
	ReasonUnreadable = "unreadable"
	// ReasonBudget: the object waited for its budget past the invocation's
	// deadline, or the shared record of the budget's users could not be
	// written; nothing was sent for it, and it is tried again.
	ReasonBudget = "budget"
	// ReasonAnnotations: an object over 5 GB with annotations, which a
	// multipart copy does not carry.
	ReasonAnnotations = "annotations"
	// ReasonTooLarge: an object larger than 10,000 parts of 5 GiB.
	ReasonTooLarge = "too-large"
	// ReasonIncompleteAnswer: S3 answered without what the next request
	// needs (an UploadPartCopy without its CopyPartResult); tried again.
	ReasonIncompleteAnswer = "incomplete-answer"
)

// Outcome is the one terminal result of one object.
type Outcome struct {
	Status Status
	Reason string // for Skipped, Failed, Retry and Rejected
	Detail string // human detail for logs, e.g. the retain-until date
}

// Terminal reports whether the outcome ends the object's task (everything
// but Retry).
func (o Outcome) Terminal() bool { return o.Status != Retry }

func (o Outcome) String() string {
	if o.Reason == "" {
		return string(o.Status)
	}
	return string(o.Status) + ": " + o.Reason
}
