package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Job kinds.
const (
	KindInventory = "inventory"
	KindListing   = "listing"
	// KindUploads is the rolling job of one bucket and day that the
	// new-upload path counts into.
	KindUploads = "uploads"
)

// States of a job.
const (
	StatePlanning             = "planning"
	StateRunning              = "running"
	StateComplete             = "complete"
	StateCompleteWithFailures = "complete-with-failures"
	StateRolling              = "rolling" // an uploads job: it never completes
)

// ID is a job's id: its kind's prefix and a short hash of what makes it
// that job, so that the same manifest delivered twice is the same job.
func ID(kind, natural string) string {
	sum := sha256.Sum256([]byte(natural))
	prefix := map[string]string{KindInventory: "inv", KindListing: "lst", KindUploads: "upl"}[kind]
	return prefix + "-" + hex.EncodeToString(sum[:6])
}

// InventoryID is the job of one inventory report.
func InventoryID(manifestURL string) string { return ID(KindInventory, manifestURL) }

// ListingID is the job of one listing backfill started at a time.
func ListingID(bucket, prefix string, versions bool, started time.Time) string {
	return ID(KindListing, fmt.Sprintf("%s/%s|%t|%s", bucket, prefix, versions, started.UTC().Format(time.RFC3339Nano)))
}

// UploadsID is the rolling job of a bucket's uploads on one day (UTC).
func UploadsID(bucket string, day time.Time) string {
	return "upl-" + day.UTC().Format("20060102") + "-" + ID(KindUploads, bucket)[4:]
}

// MessageID is the id of a planner task: a hash of its unit (a data
// file or a listing range) and the position it starts at, so that a
// replayed planner task makes the same ids.
func MessageID(unit, position string) string {
	sum := sha256.Sum256([]byte(unit + "\x00" + position))
	return hex.EncodeToString(sum[:8])
}

// Follow-up kinds: the prefix of a follow-up's id.
const (
	ChildRetry     = "r"
	ChildUnstarted = "u"
	ChildDead      = "d"
)

// ChildID is the id of a follow-up of task parent: its kind and a hash of
// the parent, its kind and its content (its objects, attempt and reason),
// so that two deliveries that send the same follow-up send it under one
// id, and two different follow-ups of one task never share one.
func ChildID(parent, kind string, content []byte) string {
	h := sha256.New()
	h.Write([]byte(parent + "\x00" + kind + "\x00"))
	h.Write(content)
	return kind + "-" + hex.EncodeToString(h.Sum(nil)[:8])
}

var idPattern = regexp.MustCompile(`^(inv|lst)-[0-9a-f]{12}$|^upl-[0-9]{8}-[0-9a-f]{12}$`)

// ValidID reports whether id has the shape of a job id (ID, UploadsID).
func ValidID(id string) bool { return idPattern.MatchString(id) }

var taskPattern = regexp.MustCompile(`^[0-9a-f]{16}$|^[rud]-[0-9a-f]{16}$`)

// ValidTaskID reports whether id has the shape of a task id (MessageID,
// ChildID).
func ValidTaskID(id string) bool { return taskPattern.MatchString(id) }

// Job is what a job record says.
type Job struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Source    string    `json:"source"` // the manifest URL, s3://bucket/prefix, or the bucket
	Created   time.Time `json:"created"`
	State     string    `json:"state"`
	Completed time.Time `json:"completed,omitzero"`
	// UnitsTotal is the number of data files (1 for a listing); UnitsDone
	// how many have been read to the end.
	UnitsTotal int64 `json:"unitsTotal"`
	UnitsDone  int64 `json:"unitsDone"`
	// Rows are the rows (listed entries) counted; RowsExpected the rows the
	// finished units had.
	Rows         int64 `json:"rows"`
	RowsExpected int64 `json:"rowsExpected"`
	// Planned objects were sent to be updated; Done have a terminal outcome.
	Planned int64 `json:"planned"`
	Done    int64 `json:"done"`
	// Outcomes counts every row's terminal outcome ("updated",
	// "skipped: sse-c", ...): the planner's skips and encrypt's outcomes.
	Outcomes map[string]int64 `json:"outcomes"`
	// Report is where the report goes (s3://bucket/prefix/), and
	// ReportManifest its manifest.json once the job is complete.
	Report         string `json:"report,omitempty"`
	ReportManifest string `json:"reportManifest,omitempty"`
	ReportParts    int64  `json:"reportParts"`
	// TerminalState and TerminalReason are a final state written on the
	// job's record (failed, cancelled) and why: the state shows it first.
	TerminalState  string `json:"terminalState,omitempty"`
	TerminalReason string `json:"terminalReason,omitempty"`
	// Ended is when a failed or cancelled job ended (terminal.go);
	// Progressed is the time of its latest commit or count.
	Ended      time.Time `json:"ended,omitzero"`
	Progressed time.Time `json:"progressed,omitzero"`
	// Pending is how many follow-ups (retries, unstarted objects,
	// redriven dead letters) are still to commit.
	Pending int64 `json:"pending"`

	pending         int64  // Pending, for Finished
	digest          string // of what is counted (see derive.go)
	completedDigest string // of what the written report lists
	counted         int64  // task records counted
	parts           []part // the report parts of what is counted
}

// planningDone reports whether every unit has been read and counted.
func (j *Job) planningDone() bool {
	return j.UnitsTotal > 0 && j.UnitsDone >= j.UnitsTotal && j.Rows == j.RowsExpected
}

// Finished reports whether every planned object has its outcome.
func (j *Job) Finished() bool { return j.planningDone() && j.Done == j.Planned && j.pending == 0 }

// Failures is the number of objects that failed.
func (j *Job) Failures() int64 {
	var n int64
	for k, v := range j.Outcomes {
		if strings.HasPrefix(k, "failed") || strings.HasPrefix(k, "rejected") {
			n += v
		}
	}
	return n
}

// derive sets State from what the records say. A terminal state written
// on the job's record (TerminalState, with its reason) comes first; a
// finished job is complete only once its report is written for exactly
// what is counted (its record's digest is the counts' digest).
func (j *Job) derive() {
	switch {
	case j.TerminalState != "":
		j.State = j.TerminalState
	case j.Kind == KindUploads:
		j.State = StateRolling
	case j.Finished() && j.completedDigest == j.digest && j.Failures() > 0:
		j.State = StateCompleteWithFailures
	case j.Finished() && j.completedDigest == j.digest:
		j.State = StateComplete
	case j.UnitsDone < j.UnitsTotal || j.UnitsTotal == 0:
		j.State = StatePlanning
	default:
		j.State = StateRunning
	}
}

// Percent is how far the job is, 0 to 100: rows counted while planning,
// then objects done.
func (j *Job) Percent() float64 {
	switch {
	case j.State == StateComplete || j.State == StateCompleteWithFailures:
		return 100
	case j.Planned == 0:
		return 0
	}
	p := float64(j.Done) / float64(j.Planned) * 100
	if !j.planningDone() {
		p = min(p, 99)
	}
	return min(p, 99.9)
}
