package jobs

import (
	"encoding/json"
)

// Delivery is what one delivery of one task did, to commit as the task's
// record. A record is written once (the first delivery to commit wins)
// and never changed: a job's counts and report are derived from its
// records (see derive.go), so a duplicate, replayed or late delivery can
// at most find the record already there.
type Delivery struct {
	JobID, MessageID string
	// Parent is, for a follow-up, the task it carries on ("" for a planner
	// task).
	Parent string
	// Kind is the follow-up's kind (ChildRetry, ChildUnstarted, ChildDead;
	// "" for a planner task).
	Kind string
	// Root is what the planner said of a planner task's rows.
	Root *Root
	// Outcomes counts the terminal outcomes of the task's own objects;
	// objects sent on go to Children, the planner's skips to Root.
	Outcomes map[string]int64
	// Rows are the report rows of the task's own objects.
	Rows []Row
	// Children are the follow-ups this delivery sent: each carries some of
	// the task's objects on, and a dead letter counts them failed until it
	// is redriven and committed itself.
	Children []Child
}

// Root is a planner task's place in its unit and the planner's counts.
type Root struct {
	Unit  string `json:"unit"`
	First bool   `json:"first,omitempty"`
	// Next is the position the unit's next task starts at; "" with Final.
	Next     string `json:"next,omitempty"`
	Final    bool   `json:"final,omitempty"`
	UnitRows int64  `json:"unitRows,omitempty"`
	// Rows are the rows (listed entries) the task covers, Planned the
	// objects among them sent to be updated.
	Rows    int64 `json:"rows"`
	Planned int64 `json:"planned"`
	// Skipped counts the rows not sent, by outcome ("skipped: sse-c",
	// "gone" for a delete marker).
	Skipped map[string]int64 `json:"skipped,omitempty"`
}

// Child is one follow-up a delivery sent.
type Child struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Objects int64  `json:"n"`
	// Outcome is, for a dead letter, the outcome its objects count under
	// until it is redriven ("failed: access-denied").
	Outcome string `json:"outcome,omitempty"`
	// Rows are a dead letter's report rows (not stored: its part is).
	Rows []Row `json:"-"`
	Part *part `json:"part,omitempty"`
}

// record is a committed task record, as stored (JSON in attribute rec).
type record struct {
	Parent   string           `json:"parent,omitempty"`
	Kind     string           `json:"kind,omitempty"`
	Root     *Root            `json:"root,omitempty"`
	Outcomes map[string]int64 `json:"outcomes,omitempty"`
	Part     *part            `json:"part,omitempty"`
	Children []Child          `json:"children,omitempty"`
}

func (d Delivery) record(p *part, children []Child) record {
	return record{Parent: d.Parent, Kind: d.Kind, Root: d.Root, Outcomes: d.Outcomes, Part: p, Children: children}
}

func (r record) encode() string {
	b, _ := json.Marshal(r) // plain data: cannot fail
	return string(b)
}

func decodeRecord(s string) (record, error) {
	var r record
	err := json.Unmarshal([]byte(s), &r)
	return r, err
}

// lists reports whether the record names id as one of its follow-ups.
func (r record) lists(id string) bool {
	for _, c := range r.Children {
		if c.ID == id {
			return true
		}
	}
	return false
}

// openDelta is how a committed record changes the job's count of open
// tasks, a hint that says when to derive the job (see Committer.Commit):
// the record closes itself and opens its live follow-ups and, for a
// planner task not its unit's last, the unit's next task. A redriven dead
// letter was not open: its record closes nothing.
func (r record) openDelta() int64 {
	n := int64(-1)
	if r.Kind == ChildDead {
		n = 0
	}
	if r.Root != nil && !r.Root.Final {
		n++
	}
	for _, c := range r.Children {
		if c.Kind != ChildDead {
			n++
		}
	}
	return n
}
