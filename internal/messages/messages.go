package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// TaskVersion is the object task format this package writes and reads.
const TaskVersion = 1

// Sources of object tasks.
const (
	SourceEvent     = "event"
	SourceInventory = "inventory"
	SourceListing   = "listing"
	SourceManual    = "manual"
)

// Facts are what an inventory row or listing already proved about an
// object; nil fields are unknown. The consumer may skip its HEAD where they
// settle the decision (see rekey.Decide).
type Facts struct {
	Encryption string `json:"enc,omitempty"` // NOT-SSE, SSE-S3, SSE-KMS, DSSE-KMS, SSE-C
	BucketKey  *bool  `json:"bk,omitempty"`
	// Locked is true for Object Lock retention in force or a legal hold.
	Locked       *bool `json:"lock,omitempty"`
	DeleteMarker bool  `json:"dm,omitempty"`
}

// Object names one object version to bring onto its target key.
type Object struct {
	Bucket    string `json:"b"`
	Key       string `json:"k"`
	VersionID string `json:"v,omitempty"`
	// RawKey is the key exactly as an EventBridge event spelled it, when
	// form-decoding changed it: AWS documents classic notification keys as
	// form-encoded but says nothing of EventBridge's, so the consumer
	// tries the decoded key first and this one when that is not found.
	RawKey string `json:"rk,omitempty"`
	Facts  *Facts `json:"f,omitempty"`
	// Skip is set on an object the planner decided not to send for an
	// update (the reason): it rides along only to be listed in the job's
	// report, and is counted by the task's Plan, not again.
	Skip string `json:"skip,omitempty"`
}

// Plan is what the planner counted for the rows one task covers: the
// encrypt function commits it with the task's outcomes, exactly once per
// task ID.
type Plan struct {
	Rows    int64            `json:"rows"`
	Skipped map[string]int64 `json:"skipped,omitempty"`
	// Final marks the last task of a unit (a data file or a listing), and
	// UnitRows is how many rows the unit had.
	Final    bool  `json:"final,omitempty"`
	UnitRows int64 `json:"unitRows,omitempty"`
	// Unit names the data file or listing range the task's rows are from,
	// First marks the unit's first task, and Next is the position the
	// unit's next task starts at: the job's tasks of a unit form a chain
	// from its first to its final task (internal/jobs).
	Unit  string `json:"unit,omitempty"`
	First bool   `json:"first,omitempty"`
	Next  string `json:"next,omitempty"`
}

// Task is s3rekey's own work-queue message: one or more objects.
type Task struct {
	Version int    `json:"v"`
	Source  string `json:"src"`
	JobID   string `json:"job,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Redelivered marks work that may have been done already (it comes
	// from a redelivered planner job): the consumer reads each object
	// rather than trust the facts.
	Redelivered bool `json:"redelivered,omitempty"`
	// ID names the task within its job, for exact counts: the planner's
	// tasks have ids from their position, follow-ups their parent's id and
	// a suffix (internal/jobs).
	ID string `json:"id,omitempty"`
	// ParentToken is, on a follow-up, the token of the delivery that sent
	// it: it counts only if that delivery's commit won.
	ParentToken string `json:"ptok,omitempty"`
	// Prior was, on a dead letter of an earlier version, the outcome its
	// objects were counted under. It is read for compatibility and changes
	// no count: a job's counts are derived from its task records.
	Prior string `json:"prior,omitempty"`
	// Parent is, on a follow-up (retry, unstarted objects, dead letter),
	// the id of the task it carries on: it runs and counts only if that
	// task's committed record lists it.
	Parent string `json:"parent,omitempty"`
	// Sig authenticates a tracked task: an HMAC over the rest of it under
	// the deployment's key (internal/jobs). A tracked task whose Sig does
	// not verify is run as untracked work and changes no job.
	Sig string `json:"sig,omitempty"`
	// Plan is the planner's counts, on the planner's own tasks.
	Plan    *Plan    `json:"plan,omitempty"`
	Objects []Object `json:"objects"`
}

// Encode renders a task as the JSON body of a queue message, with the
// characters SQS refuses escaped (see keyescape.go).
func (t Task) Encode() (string, error) {
	t.Version = TaskVersion
	if err := t.validate(); err != nil {
		return "", err
	}
	if err := t.checkUTF8(); err != nil {
		return "", err
	}
	b, err := json.Marshal(t)
	return string(sqsEscape(b)), err
}

func (t Task) validate() error {
	switch t.Source {
	case SourceEvent, SourceInventory, SourceListing, SourceManual:
	default:
		return fmt.Errorf("task source %q is not event, inventory, listing or manual", t.Source)
	}
	if len(t.Objects) == 0 && t.Plan == nil {
		return errors.New("task has no objects")
	}
	if (t.Plan != nil || t.ParentToken != "" || t.Prior != "" || t.Parent != "" || t.Sig != "") && (t.ID == "" || t.JobID == "") {
		return errors.New("a task with a plan, parent, signature or prior outcome needs a job and an id")
	}
	if t.Attempt < 0 {
		return fmt.Errorf("task attempt %d is negative", t.Attempt)
	}
	for i, o := range t.Objects {
		if o.Bucket == "" || o.Key == "" {
			return fmt.Errorf("task object %d: bucket and key are required", i)
		}
	}
	return nil
}

// RejectedError says why a message cannot be decoded; such a message goes
// to the dead-letter queue with the reason and is never retried.
type RejectedError struct{ Reason string }

func (e *RejectedError) Error() string { return "rejected: " + e.Reason }

func reject(format string, args ...any) error {
	return &RejectedError{Reason: fmt.Sprintf(format, args...)}
}

// Decode reads one work-queue message body. A message that carries no work
// (the s3:TestEvent S3 sends when notifications are configured) decodes to
// a task with no objects and no error.
func Decode(body string) (Task, error) {
	trimmed := bytes.TrimSpace([]byte(body))
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Task{}, reject("body is not a JSON object")
	}
	var probe struct {
		Version    *int            `json:"v"`
		DetailType *string         `json:"detail-type"`
		Records    json.RawMessage `json:"Records"`
		Event      string          `json:"Event"`
	}
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return Task{}, reject("invalid JSON: %v", err)
	}
	switch {
	case probe.Version != nil:
		return decodeTask(trimmed)
	case probe.DetailType != nil:
		return decodeEventBridge(trimmed)
	case probe.Records != nil:
		return decodeS3Event(trimmed)
	case probe.Event == "s3:TestEvent":
		return Task{Version: TaskVersion, Source: SourceEvent}, nil
	}
	return Task{}, reject("unknown message shape (not an s3rekey task, EventBridge event or S3 notification)")
}

func decodeTask(body []byte) (Task, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var t Task
	if err := dec.Decode(&t); err != nil {
		return Task{}, reject("object task: %v", err)
	}
	if t.Version != TaskVersion {
		return Task{}, reject("object task version %d is not supported (want %d)", t.Version, TaskVersion)
	}
	if err := t.validate(); err != nil {
		return Task{}, reject("object task: %v", err)
	}
	return t, nil
}

// s3Detail is the part of an EventBridge S3 event's detail s3rekey reads.
type s3Detail struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key       string `json:"key"`
		VersionID string `json:"version-id"`
	} `json:"object"`
	Reason string `json:"reason"`
}

func decodeEventBridge(body []byte) (Task, error) {
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return Task{}, reject("EventBridge event: %v", err)
	}
	if ev.Source != "aws.s3" || ev.DetailType != "Object Created" {
		return Task{}, reject("EventBridge event %q from %q is not an S3 Object Created event", ev.DetailType, ev.Source)
	}
	var d s3Detail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return Task{}, reject("EventBridge detail: %v", err)
	}
	if d.Bucket.Name == "" || d.Object.Key == "" {
		return Task{}, reject("EventBridge event without bucket or key")
	}
	obj := Object{Bucket: d.Bucket.Name, Key: d.Object.Key, VersionID: d.Object.VersionID}
	// Undocumented encoding: read the key as form-encoded (as classic
	// notifications are) and keep the raw spelling as the fallback. A key
	// that is not valid form-encoding can only be raw.
	if key, err := url.QueryUnescape(d.Object.Key); err == nil && key != d.Object.Key && key != "" {
		obj.Key, obj.RawKey = key, d.Object.Key
	}
	return Task{Version: TaskVersion, Source: SourceEvent, JobID: ev.ID, Objects: []Object{obj}}, nil
}

func decodeS3Event(body []byte) (Task, error) {
	var ev events.S3Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Task{}, reject("S3 notification: %v", err)
	}
	t := Task{Version: TaskVersion, Source: SourceEvent}
	for _, r := range ev.Records {
		if r.EventSource != "aws:s3" {
			return Task{}, reject("notification record from %q is not from S3", r.EventSource)
		}
		if !strings.HasPrefix(r.EventName, "ObjectCreated:") {
			continue // removals need no re-encryption
		}
		if r.S3.Bucket.Name == "" || r.S3.Object.URLDecodedKey == "" {
			return Task{}, reject("S3 notification record without bucket or key")
		}
		t.Objects = append(t.Objects, Object{Bucket: r.S3.Bucket.Name, Key: r.S3.Object.URLDecodedKey, VersionID: r.S3.Object.VersionID})
	}
	return t, nil
}
