package demo

import (
	"testing"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// TestUploadsEnforcedWhileALargeBackfillIsQueued: with a backfill of 2,000
// objects queued in the same bucket and held to a budget of 100 objects a
// second (20 seconds of work), ten uploads are all enforced while most of
// the backfill is still queued: they do not wait behind it on the work
// queue, nor for the bucket's budget the backfill is using up.
func TestUploadsEnforcedWhileALargeBackfillIsQueued(t *testing.T) {
	const objects, budget = 2000, 100.0
	// Tasks of 512 bytes (about 12 objects): a work queue of some 170
	// messages, far more than its invocations hold at once.
	w := startUploadsWorld(t, objects, 512, budget, 1000, emulator.Quotas{})
	w.startBackfill(t)
	latencies := w.uploadAtRate(t, 10, 10) // fails for an upload not enforced
	updated := w.emu.CountOf("s3", "UpdateObjectEncryption", DataBucket) - int64(len(latencies))
	backlog := w.workBacklog(t)
	if updated >= objects/2 || backlog == 0 {
		t.Errorf("the uploads were enforced only after the backfill had updated %d of %d objects (work queue holding %d messages): they waited behind it",
			updated, objects, backlog)
	}
	if dead := w.deadLetters(t); dead != 0 {
		t.Errorf("%d messages dead-lettered", dead)
	}
	t.Logf("uploads enforced in %v (p50) to %v (max) with %d of %d backfill objects updated", quantile(latencies, 0.5), quantile(latencies, 1), updated, objects)
}
