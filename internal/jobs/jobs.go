package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// MessageID is the id of a planner message: a hash of the unit (a data
// file or a listing) and the message's position in it.
func MessageID(unit, position string) string {
	sum := sha256.Sum256([]byte(unit + "\x00" + position))
	return hex.EncodeToString(sum[:8])
}

// Follow-up kinds, appended to the parent's id.
const (
	ChildRetry     = "r"
	ChildUnstarted = "u"
	ChildDead      = "d-" // and the reason
)

// ChildID is the id of a follow-up of a message.
func ChildID(parent, kind, reason string) string {
	return parent + "." + kind + strings.ReplaceAll(reason, ".", "_")
}

// parentOf is the id of a follow-up's parent ("" for a planner message).
func parentOf(id string) string {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return ""
	}
	return id[:i]
}

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
	// Reason is why a failed or cancelled job ended, and Ended when
	// (terminal.go); Progressed is the time of its latest count.
	Reason     string    `json:"reason,omitempty"`
	Ended      time.Time `json:"ended,omitzero"`
	Progressed time.Time `json:"progressed,omitzero"`
	terminal   string
}

// planningDone reports whether every unit has been read and counted.
func (j *Job) planningDone() bool {
	return j.UnitsTotal > 0 && j.UnitsDone >= j.UnitsTotal && j.Rows == j.RowsExpected
}

// Finished reports whether every planned object has its outcome.
func (j *Job) Finished() bool { return j.planningDone() && j.Done == j.Planned }

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

// derive sets State from the counts (a complete job's state is stored).
func (j *Job) derive() {
	switch {
	case j.Kind == KindUploads:
		j.State = StateRolling
	case j.Finished() && j.Failures() > 0:
		j.State = StateCompleteWithFailures
	case j.Finished():
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
	case j.Finished():
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
