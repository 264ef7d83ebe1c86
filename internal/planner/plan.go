package planner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// LambdaSecondsPerObject is the planning figure for function time per
// object (encrypt and planner together, at DefaultLambdaMemoryMB); the
// benchmarks measure it (see BENCHMARKS.md).
const LambdaSecondsPerObject = 0.0005

// StateCount counts objects and bytes.
type StateCount struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

// PlanReport is what a backfill of one inventory would do, read without
// changing anything.
type PlanReport struct {
	Manifest     string `json:"manifest"`
	SourceBucket string `json:"sourceBucket"`
	Format       string `json:"format"`
	Files        int    `json:"files"`
	// GovernedBy is what in the policy governs the bucket ("rules[0] prod",
	// "buckets.NAME"): the plan is of the policy as resolved for it.
	GovernedBy string `json:"governedBy"`
	Rows       int64  `json:"rows"`
	// ByState counts rows by "encryption / bucket key / lock".
	ByState map[string]StateCount `json:"byState"`
	// WouldUpdate are rows certain to need UpdateObjectEncryption (SSE-S3,
	// or SSE-KMS with the other bucket-key setting).
	WouldUpdate int64 `json:"wouldUpdate"`
	// NeedsCheck are SSE-KMS rows with the target's bucket-key setting:
	// compliant or not depends on the key ARN, which inventories do not
	// carry, so the consumer HEADs them.
	NeedsCheck int64 `json:"needsCheck"`
	// WouldCopy are unencrypted and DSSE-KMS rows of a bucket opted in to
	// copy in place (one HEAD and one COPY each, PUT-class), CopyBytes
	// their size. In a versioned bucket every copy keeps the old version:
	// KeptVersionBytes is that extra storage when the report shows the
	// bucket's versions (an all-versions report).
	WouldCopy        int64 `json:"wouldCopy"`
	CopyBytes        int64 `json:"copyBytes"`
	KeptVersionBytes int64 `json:"keptVersionBytes"`
	// KeptVersionsPerMonth prices KeptVersionBytes at S3 Standard: the
	// most that storage costs a month.
	KeptVersionsPerMonth float64          `json:"keptVersionsPerMonth"`
	Skipped              map[string]int64 `json:"skipped"`
	Messages             int64            `json:"messages"` // object tasks the planner would send
	Usage                cost.Usage       `json:"usage"`
	Cost                 cost.Breakdown   `json:"cost"`
	// Pace is how long the backfill takes at the policy's budgets.
	Pace Pace `json:"pace"`

	// kmsSources are enqueued SSE-KMS rows without a bucket key: S3 asks
	// KMS to decrypt each one's data key when it is updated.
	kmsSources int64
}

// S3PutPerPartition is S3's PUT-class request rate per partitioned prefix
// (userguide optimizing-performance.md: "at least 3,500
// PUT/COPY/POST/DELETE ... requests per second per partitioned Amazon S3
// prefix"); UpdateObjectEncryption is PUT-class.
const S3PutPerPartition = 3500

// Pace is how long a backfill takes at its budgets.
type Pace struct {
	// ObjectsPerSecond and KMSRequestsPerSecond are the budgets (0: none).
	ObjectsPerSecond     float64 `json:"objectsPerSecond,omitempty"`
	KMSRequestsPerSecond float64 `json:"kmsRequestsPerSecond,omitempty"`
	// Seconds is the time at the budgets, and Bound the one that sets it
	// ("objects" or "kms"); 0 and "" without a budget.
	Seconds float64 `json:"seconds,omitempty"`
	Bound   string  `json:"bound,omitempty"`
	// OnePartitionSeconds is the time at one S3 partition's PUT-class
	// quota: the longest a backfill without a budget takes, since S3 adds
	// partitions as the rate stays high.
	OnePartitionSeconds float64 `json:"onePartitionSeconds"`
}

// pace works out the time of sending requests for objects, which cause
// kms KMS requests, under the budgets.
func pace(objects, kms int64, target policy.Bucket, pol *policy.Policy) Pace {
	p := Pace{ObjectsPerSecond: target.MaxObjectsPerSecond, KMSRequestsPerSecond: pol.MaxKMSRequestsPerSecond,
		OnePartitionSeconds: float64(objects) / S3PutPerPartition}
	if p.ObjectsPerSecond > 0 {
		p.Seconds, p.Bound = float64(objects)/p.ObjectsPerSecond, "objects"
	}
	if p.KMSRequestsPerSecond > 0 {
		if t := float64(kms) / p.KMSRequestsPerSecond; t > p.Seconds {
			p.Seconds, p.Bound = t, "kms"
		}
	}
	return p
}

// Plan reads an inventory and reports, per the policy, what a backfill
// would update and skip and what it would cost. It only reads the
// inventory's own files.
func Plan(ctx context.Context, api inventory.GetObjectAPI, manifestURL string, pol *policy.Policy, now time.Time, tempDir string) (*PlanReport, error) {
	m, bucket, err := ReadManifest(ctx, api, manifestURL)
	if err != nil {
		return nil, err
	}
	sel, err := pol.Resolve(ctx, m.SourceBucket)
	if err != nil {
		return nil, err
	}
	if !sel.Managed {
		why := "no rule or listed bucket selects it"
		if sel.By != "" {
			why = sel.By + " excludes it"
		}
		return nil, fmt.Errorf("the inventory is of bucket %s, which the policy does not manage (%s)", m.SourceBucket, why)
	}
	target := sel.Bucket
	cols, err := m.Columns()
	if err != nil {
		return nil, err
	}
	rep := &PlanReport{Manifest: manifestURL, SourceBucket: m.SourceBucket, Format: m.FileFormat, Files: len(m.Files), GovernedBy: sel.By,
		ByState: map[string]StateCount{}, Skipped: map[string]int64{}}
	filter := inventory.Filter{Bucket: target, Now: now}
	packer := messagePacker{limit: Config{}.withDefaults().MessageBytes, overhead: taskOverhead + len(manifestURL)}
	for _, f := range m.Files {
		if err := planFile(ctx, api, bucket, f, m.FileFormat, cols, tempDir, filter, target, rep, &packer); err != nil {
			return nil, err
		}
	}
	packer.close()
	rep.Messages = packer.messages
	enqueued := rep.WouldUpdate + rep.NeedsCheck
	rep.Usage = cost.Usage{
		Objects: rep.Rows,
		UOE:     enqueued, // at most: some NeedsCheck rows may already be compliant
		S3Get:   rep.NeedsCheck + rep.WouldCopy + int64(len(m.Files)) + 2,
		S3Put:   rep.WouldCopy, // CopyObject is PUT-class
		// Each object task is sent, received and deleted once; each file
		// task likewise on the control queue.
		SQS:           3*packer.chunks + 3*int64(len(m.Files)),
		LambdaSeconds: float64(enqueued+rep.WouldCopy) * LambdaSecondsPerObject,
		LambdaInvokes: packer.messages/10 + int64(len(m.Files)) + 1,
	}
	// Job records: per task a claim (1 write unit) and its record in the
	// batch's transaction (2), a share of the batch's counter update (2 per
	// batch of about ten tasks) and of its completion check (a consistent
	// read of about 4 KB); the report: a part per batch that has rows to
	// list, the manifest and its symlink.
	tasks := packer.messages + int64(len(m.Files)) // and each file's final task
	rep.Usage.JobWriteUnits = float64(tasks) * 3.2
	rep.Usage.JobReadUnits = float64(tasks) * 0.1
	if skipped := rep.Rows - enqueued - rep.WouldCopy; skipped > 0 {
		rep.Usage.ReportPuts = min(skipped, (tasks+9)/10)
	}
	rep.Usage.ReportPuts += 2
	rep.Usage.KMS = rep.kmsSources
	if !target.BucketKeyEnabled {
		rep.Usage.KMS += enqueued + rep.WouldCopy // and encrypts each one's under the target, without a bucket key
	}
	rep.Cost = cost.Price(rep.Usage)
	rep.Pace = pace(enqueued+rep.WouldCopy, rep.Usage.KMS, target, pol)
	rep.KeptVersionsPerMonth = cost.StandardStoragePerMonth(rep.KeptVersionBytes)
	return rep, nil
}

func planFile(ctx context.Context, api inventory.GetObjectAPI, bucket string, f inventory.ManifestFile, format string, cols []string,
	tempDir string, filter inventory.Filter, target policy.Bucket, rep *PlanReport, packer *messagePacker) error {
	file, err := inventory.Fetch(ctx, api, bucket, f.Key, f.MD5Checksum, tempDir)
	if err != nil {
		return err
	}
	defer func() { file.Close(); os.Remove(file.Name()) }()
	r, err := inventory.Open(format, file, cols)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.Key, err)
		}
		rep.Rows++
		label := stateLabel(row, filter.Now)
		rep.ByState[label] = addCount(rep.ByState[label], row.Size)
		obj, skip := filter.Apply(row)
		if skip != "" {
			rep.Skipped[skip]++
			continue
		}
		packer.add(obj)
		if row.HasEncryption && (row.EncryptionStatus == rekey.EncNone || row.EncryptionStatus == rekey.EncDSSE) {
			// Only a bucket opted in to copies lets these through the filter.
			rep.WouldCopy++
			rep.CopyBytes += row.Size
			if row.HasIsLatest {
				rep.KeptVersionBytes += row.Size
			}
			continue
		}
		if row.HasEncryption && row.EncryptionStatus == rekey.EncKMS && row.BucketKeyStatus != "ENABLED" {
			rep.kmsSources++
		}
		if row.HasEncryption && row.EncryptionStatus == rekey.EncKMS && (!row.HasBucketKey || (row.BucketKeyStatus == "ENABLED") == target.BucketKeyEnabled) {
			rep.NeedsCheck++
		} else if !row.HasEncryption {
			rep.NeedsCheck++
		} else {
			rep.WouldUpdate++
		}
	}
}

func addCount(c StateCount, size int64) StateCount {
	c.Objects++
	c.Bytes += size
	return c
}

// stateLabel names a row's state: encryption / bucket key / lock.
func stateLabel(r inventory.Row, now time.Time) string {
	if r.IsDeleteMarker {
		return "delete marker"
	}
	enc := r.EncryptionStatus
	if !r.HasEncryption || enc == "" {
		enc = "unknown encryption"
	}
	bk := "bucket key " + r.BucketKeyStatus
	if !r.HasBucketKey || r.BucketKeyStatus == "" {
		bk = "bucket key unknown"
	}
	lock := "unlocked"
	switch {
	case !r.HasLock:
		lock = "lock unknown"
	case r.LegalHold == "ON":
		lock = "legal hold"
	case r.LockMode != "" && r.RetainUntil.After(now):
		lock = r.LockMode + " retention"
	}
	return enc + " / " + bk + " / " + lock
}
