package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
)

// JobVersion is the job format this package writes and reads.
const JobVersion = 1

// Job types.
const (
	TypeInventory = "inventory"
	TypeFile      = "file"
	TypeListing   = "listing"
)

// Job is one control-queue message.
type Job struct {
	Version int    `json:"v"`
	Type    string `json:"type"`
	JobID   string `json:"job,omitempty"`
	// Manifest is the s3:// URL of an inventory's manifest.json.
	Manifest string `json:"manifest,omitempty"`
	// File is the data file of a file task.
	File *FileTask `json:"file,omitempty"`
	// Listing jobs: a bucket, a prefix, whether to list versions, and
	// where the previous invocation stopped.
	Bucket   string `json:"bucket,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
	Versions bool   `json:"versions,omitempty"`
	Token    string `json:"token,omitempty"`
	// StartAfter is where a range's listing of current objects starts.
	StartAfter      string `json:"startAfter,omitempty"`
	KeyMarker       string `json:"keyMarker,omitempty"`
	VersionIDMarker string `json:"versionIdMarker,omitempty"`
	// Listed is how many entries the listing has read so far.
	Listed int64 `json:"listed,omitempty"`
	// Range is set on one of the ranges a listing is split into, listed
	// apart and at once: the keys after After (none: from the start) up to
	// and including Until (none: to the end).
	Range *KeyRange `json:"range,omitempty"`
	// Redelivered marks a job (or work derived from one) that SQS delivered
	// more than once: what it enqueues may have been done already.
	Redelivered bool `json:"redelivered,omitempty"`
	// named: the message named its job (s3rekey backfill does; an S3
	// Inventory event does not). Not sent.
	named bool
}

// KeyRange is one range of a split listing: keys k with After < k, and
// k <= Until unless Until is empty. An exclusive start is what S3's
// StartAfter and KeyMarker take, so every key falls in exactly one range.
type KeyRange struct {
	Index int    `json:"index"`
	After string `json:"after,omitempty"`
	Until string `json:"until,omitempty"`
}

// contains reports whether key lies in the range.
func (r *KeyRange) contains(key string) bool {
	return r == nil || (key > r.After && (r.Until == "" || key <= r.Until))
}

// FileTask is one inventory data file and how far it has been read.
type FileTask struct {
	Bucket       string   `json:"bucket"` // where the inventory lives
	Key          string   `json:"key"`
	MD5          string   `json:"md5"`
	Size         int64    `json:"size"`
	Format       string   `json:"format"`
	Columns      []string `json:"columns"`
	SourceBucket string   `json:"sourceBucket"`
	Offset       int64    `json:"offset"` // rows already handled
	// AsOf is the job's start (Unix milliseconds): Object Lock dates are
	// read as of then, so that every delivery of the task plans alike.
	AsOf int64 `json:"asOf,omitempty"`
}

// ListingJob is the listing backfill of a bucket (under prefix; every
// version with versions), named by when it was asked for: what s3rekey
// backfill --bucket sends, and enrollment for a new bucket.
func ListingJob(bucket, prefix string, versions bool, started time.Time) Job {
	return Job{Type: TypeListing, Bucket: bucket, Prefix: prefix, Versions: versions, JobID: jobs.ListingID(bucket, prefix, versions, started)}
}

// Encode renders a job as a message body.
func (j Job) Encode() (string, error) {
	j.Version = JobVersion
	if err := j.validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(j)
	return string(b), err
}

func (j Job) validate() error {
	switch j.Type {
	case TypeInventory:
		if _, _, err := ParseS3URL(j.Manifest); err != nil {
			return err
		}
	case TypeFile:
		f := j.File
		if f == nil || f.Bucket == "" || f.Key == "" || len(f.MD5) != 32 || f.Format == "" || len(f.Columns) < 2 || f.SourceBucket == "" || f.Offset < 0 {
			return fmt.Errorf("file task needs bucket, key, md5, format, columns and source bucket, and a non-negative offset")
		}
	case TypeListing:
		if j.Bucket == "" {
			return fmt.Errorf("listing job needs a bucket")
		}
	default:
		return fmt.Errorf("job type %q is not inventory, file or listing", j.Type)
	}
	return nil
}

// ParseS3URL splits s3://bucket/key.
func ParseS3URL(s string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://bucket/key URL", s)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" || key == "" {
		return "", "", fmt.Errorf("%q is not an s3://bucket/key URL", s)
	}
	return bucket, key, nil
}

// ManifestChecksumSuffix is the key S3 writes last for each inventory: its
// arrival triggers the job.
const ManifestChecksumSuffix = "manifest.checksum"

// DecodeJobs reads one control-queue message into zero or more jobs: a
// job JSON, or the S3 event (EventBridge or classic notification) of a
// manifest.checksum landing, which becomes the inventory job of the
// manifest.json beside it. Events for other keys and s3:TestEvent carry no
// job. Undecodable messages are a *messages.RejectedError.
func DecodeJobs(body string) ([]Job, error) {
	trimmed := bytes.TrimSpace([]byte(body))
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &messages.RejectedError{Reason: "body is not a JSON object"}
	}
	var probe struct {
		Type       *string         `json:"type"`
		DetailType *string         `json:"detail-type"`
		Records    json.RawMessage `json:"Records"`
		Event      string          `json:"Event"`
	}
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return nil, &messages.RejectedError{Reason: "invalid JSON: " + err.Error()}
	}
	switch {
	case probe.Type != nil:
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		var j Job
		if err := dec.Decode(&j); err != nil {
			return nil, &messages.RejectedError{Reason: "job: " + err.Error()}
		}
		if j.Version == 0 {
			j.Version = JobVersion // people write jobs by hand without it
		}
		if j.Version != JobVersion {
			return nil, &messages.RejectedError{Reason: fmt.Sprintf("job version %d is not supported (want %d)", j.Version, JobVersion)}
		}
		if err := j.validate(); err != nil {
			return nil, &messages.RejectedError{Reason: "job: " + err.Error()}
		}
		if j.JobID != "" && !jobs.ValidID(j.JobID) {
			return nil, &messages.RejectedError{Reason: fmt.Sprintf("job id %q is not an s3rekey job id (inv-, lst- and 12 hex digits)", j.JobID)}
		}
		return []Job{j}, nil
	case probe.DetailType != nil:
		var ev events.CloudWatchEvent
		if err := json.Unmarshal(trimmed, &ev); err != nil || ev.Source != "aws.s3" || ev.DetailType != "Object Created" {
			return nil, &messages.RejectedError{Reason: "EventBridge event is not an S3 Object Created event"}
		}
		var d struct {
			Bucket struct{ Name string } `json:"bucket"`
			Object struct{ Key string }  `json:"object"`
		}
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			return nil, &messages.RejectedError{Reason: "EventBridge detail: " + err.Error()}
		}
		return checksumJob(d.Bucket.Name, d.Object.Key)
	case probe.Records != nil:
		var ev events.S3Event
		if err := json.Unmarshal(trimmed, &ev); err != nil {
			return nil, &messages.RejectedError{Reason: "S3 notification: " + err.Error()}
		}
		var jobs []Job
		for _, r := range ev.Records {
			if !strings.HasPrefix(r.EventName, "ObjectCreated:") {
				continue
			}
			js, err := checksumJob(r.S3.Bucket.Name, r.S3.Object.Key)
			if err != nil {
				return nil, err
			}
			jobs = append(jobs, js...)
		}
		return jobs, nil
	case probe.Event == "s3:TestEvent":
		return nil, nil
	}
	return nil, &messages.RejectedError{Reason: "unknown message shape (not a job or an S3 event)"}
}

// checksumJob turns the event of an object landing into the inventory job
// of its manifest, when the object is a manifest.checksum.
func checksumJob(bucket, encodedKey string) ([]Job, error) {
	key, err := url.QueryUnescape(encodedKey)
	if err != nil || bucket == "" || key == "" {
		return nil, &messages.RejectedError{Reason: fmt.Sprintf("S3 event without a valid bucket and key (%q, %q)", bucket, encodedKey)}
	}
	if path.Base(key) != ManifestChecksumSuffix {
		return nil, nil
	}
	manifest := "s3://" + bucket + "/" + strings.TrimSuffix(key, ManifestChecksumSuffix) + "manifest.json"
	return []Job{{Version: JobVersion, Type: TypeInventory, Manifest: manifest, JobID: jobs.InventoryID(manifest)}}, nil
}
