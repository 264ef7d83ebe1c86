// Package functionconf holds the settings of the deployed functions and
// their event source mappings, and their defaults, in one place: the stack
// (infra) deploys them and the local run loop (internal/localrun, through
// internal/pipeline) delivers batches by the same batch size and batching
// window, so that what runs locally is what Lambda would run.
package functionconf

import "time"

// Function tunes one function and its event source mapping.
type Function struct {
	MemoryMB              int `json:"memoryMB,omitempty"`
	TimeoutSeconds        int `json:"timeoutSeconds,omitempty"`
	BatchSize             int `json:"batchSize,omitempty"`
	BatchingWindowSeconds int `json:"batchingWindowSeconds,omitempty"`
	// MaxConcurrency caps concurrent invocations (the policy's budgets,
	// not this, hold S3 and KMS request rates).
	MaxConcurrency  int `json:"maxConcurrency,omitempty"`
	ObjectsInFlight int `json:"objectsInFlight,omitempty"` // encrypt only
	MaxAttempts     int `json:"maxAttempts,omitempty"`     // encrypt only
	EphemeralMB     int `json:"ephemeralStorageMB,omitempty"`
	// HeadBeforeUpdate (encrypt only): read every object before updating
	// it, even where the inventory proves SSE-S3 (see BENCHMARKS.md).
	HeadBeforeUpdate bool `json:"headBeforeUpdate,omitempty"`
	// ListingRanges (planner only): how many ranges a listing backfill is
	// split into, listed at once (default 8; at most maxConcurrency run at
	// once).
	ListingRanges int `json:"listingRanges,omitempty"`
	// UploadsBatchSize (encrypt only) is the batch size of the event
	// source mapping on the uploads queue, gathered for up to
	// BatchingWindowSeconds like the work queue's. Upload events are one
	// object each, where a backfill task holds hundreds: batches of 100
	// make one rolling uploads-job write (and one invocation) serve 100
	// uploads instead of 10, for at most the window's wait.
	UploadsBatchSize int `json:"uploadsBatchSize,omitempty"`
}

// Defaults. 1769 MB gives encrypt one full vCPU: its work is CPU-bound in
// the SDK (signing, parsing), and a whole core keeps hundreds of requests in
// flight. The planner needs disk for inventory files, not memory.
var (
	Encrypt = Function{MemoryMB: 1769, TimeoutSeconds: 300, BatchSize: 10, UploadsBatchSize: 100, BatchingWindowSeconds: 1,
		MaxConcurrency: 50, ObjectsInFlight: 256, MaxAttempts: 8, EphemeralMB: 512}
	Planner = Function{MemoryMB: 1024, TimeoutSeconds: 900, BatchSize: 1, MaxConcurrency: 5, EphemeralMB: 10240, ListingRanges: 8}
)

// BatchingWindow is the event source mapping's MaximumBatchingWindowInSeconds.
func (f Function) BatchingWindow() time.Duration {
	return time.Duration(f.BatchingWindowSeconds) * time.Second
}

// Timeout is the function's timeout.
func (f Function) Timeout() time.Duration {
	return time.Duration(f.TimeoutSeconds) * time.Second
}
