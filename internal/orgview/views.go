package orgview

import (
	"fmt"
	"maps"
	"time"

	"github.com/s3rekey/s3rekey/internal/encrypt"
	"github.com/s3rekey/s3rekey/internal/estate"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// Jobs is the jobs view of one deployment (List and Pauses set) or the
// totals of several (List and Pauses empty).
type Jobs struct {
	Jobs    int            `json:"jobs"`
	ByState map[string]int `json:"byState"`
	Planned int64          `json:"planned"`
	Done    int64          `json:"done"`
	// Failed counts failed jobs and those complete with failures; Stalled
	// those with no progress for the view's stall time.
	Failed  int             `json:"failed"`
	Stalled int             `json:"stalled"`
	Paused  int             `json:"paused"`
	List    []*jobs.Job     `json:"list,omitempty"`
	Pauses  []encrypt.Pause `json:"pauses,omitempty"`
}

// Add is the totals of j and o.
func (j Jobs) Add(o Jobs) Jobs {
	sum := Jobs{Jobs: j.Jobs + o.Jobs, ByState: map[string]int{}, Planned: j.Planned + o.Planned, Done: j.Done + o.Done,
		Failed: j.Failed + o.Failed, Stalled: j.Stalled + o.Stalled, Paused: j.Paused + o.Paused}
	maps.Copy(sum.ByState, j.ByState)
	for k, n := range o.ByState {
		sum.ByState[k] += n
	}
	return sum
}

// SummarizeJobs is the jobs view of one deployment from what the
// single-account jobs command reads: its jobs (stalled ones marked) and
// its pauses. A failed job, or one complete with failures, makes it
// failing; a stalled job or a pause of the circuit breaker behind.
func SummarizeJobs(list []*jobs.Job, paused []encrypt.Pause) (Jobs, Finding) {
	v := Jobs{Jobs: len(list), ByState: map[string]int{}, Paused: len(paused), List: list, Pauses: paused}
	var f Finding
	for _, j := range list {
		v.ByState[j.State]++
		v.Planned += j.Planned
		v.Done += j.Done
		switch j.State {
		case jobs.StateFailed:
			v.Failed++
			f.Failing = append(f.Failing, fmt.Sprintf("job %s failed: %s", j.ID, j.TerminalReason))
		case jobs.StateCompleteWithFailures:
			v.Failed++
			f.Failing = append(f.Failing, fmt.Sprintf("job %s complete with failures", j.ID))
		case jobs.StateStalled:
			v.Stalled++
			f.Behind = append(f.Behind, fmt.Sprintf("job %s stalled: no progress since %s", j.ID, j.LastProgress().Format(time.RFC3339)))
		}
	}
	f.Behind = append(f.Behind, pauseFindings(paused)...)
	return v, f
}

func pauseFindings(paused []encrypt.Pause) []string {
	var out []string
	for _, p := range paused {
		out = append(out, fmt.Sprintf("paused by the circuit breaker: %s (%s) since %s", p.Scope, p.Reason, p.Since.Format(time.RFC3339)))
	}
	return out
}

// Status is the status view of one deployment (Queues and Pauses set)
// or the totals of several.
type Status struct {
	// Backlog is every message of the work and control queues; DeadLetters
	// every message of their dead-letter queues.
	Backlog     int64                 `json:"backlog"`
	DeadLetters int64                 `json:"deadLetters"`
	Paused      int                   `json:"paused"`
	Queues      []pipeline.QueueDepth `json:"queues,omitempty"`
	Pauses      []encrypt.Pause       `json:"pauses,omitempty"`
}

// Add is the totals of s and o.
func (s Status) Add(o Status) Status {
	return Status{Backlog: s.Backlog + o.Backlog, DeadLetters: s.DeadLetters + o.DeadLetters, Paused: s.Paused + o.Paused}
}

// SummarizeStatus is the status view of one deployment from what the
// single-account status command reads. Dead letters make it failing; a
// pause of the circuit breaker behind. A backlog alone is work being
// done: the jobs view says whether it moves (a stalled job).
func SummarizeStatus(depths []pipeline.QueueDepth, paused []encrypt.Pause) (Status, Finding) {
	v := Status{Paused: len(paused), Queues: depths, Pauses: paused}
	var f Finding
	for _, d := range depths {
		switch d.Name {
		case pipeline.DepthWorkDLQ, pipeline.DepthControlDLQ:
			v.DeadLetters += d.Messages()
			if d.Messages() > 0 {
				f.Failing = append(f.Failing, fmt.Sprintf("%d dead letters in the %s (s3rekey redrive)", d.Messages(), d.Name))
			}
		default:
			v.Backlog += d.Messages()
		}
	}
	f.Behind = pauseFindings(paused)
	return v, f
}

// Estate is the estate view of one deployment (Buckets set) or the totals
// of several.
type Estate struct {
	Buckets int `json:"buckets"`
	Managed int `json:"managed"`
	// Enrolled managed buckets have EventBridge on: their new uploads are
	// enforced.
	Enrolled int     `json:"enrolled"`
	Objects  int64   `json:"objects"`
	Bytes    int64   `json:"bytes"`
	Cost     float64 `json:"costUSD"`
	// Problems are buckets that could not be read; Findings the policy's
	// findings (a rule that governs no bucket).
	Problems int            `json:"problems"`
	Findings int            `json:"findings"`
	Report   *estate.Report `json:"report,omitempty"`
}

// Add is the totals of e and o.
func (e Estate) Add(o Estate) Estate {
	return Estate{Buckets: e.Buckets + o.Buckets, Managed: e.Managed + o.Managed, Enrolled: e.Enrolled + o.Enrolled,
		Objects: e.Objects + o.Objects, Bytes: e.Bytes + o.Bytes, Cost: e.Cost + o.Cost, Problems: e.Problems + o.Problems, Findings: e.Findings + o.Findings}
}

// SummarizeEstate is the estate view of one deployment from the
// single-account estate command's report. A managed bucket whose
// EventBridge notifications are off makes it behind (its new uploads are
// not enforced); a bucket that could not be read failing.
func SummarizeEstate(rep *estate.Report) (Estate, Finding) {
	v := Estate{Buckets: len(rep.Buckets), Managed: rep.Managed, Enrolled: rep.Enrolled, Objects: rep.Objects, Bytes: rep.Bytes,
		Cost: rep.Cost, Findings: len(rep.Findings), Report: rep}
	var f Finding
	for _, b := range rep.Buckets {
		if b.Managed && !b.EventBridge {
			f.Behind = append(f.Behind, "bucket "+b.Name+": managed, EventBridge off (new uploads not enforced)")
		}
		if len(b.Problems) > 0 {
			v.Problems++
			f.Failing = append(f.Failing, "bucket "+b.Name+": "+b.Problems[0])
		}
	}
	return v, f
}
