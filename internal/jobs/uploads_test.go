package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/jobs"
)

// A bucket's uploads job of the day is indexed once, by its first count,
// not by every batch: each index write is a write unit per batch of
// events. Whether UpdateItem's UPDATED_OLD returns an attribute that a SET
// leaves at its value (if_not_exists) is not documented (DynamoDB API
// reference, UpdateItem, ReturnValues: "UPDATED_OLD - Returns only the
// updated attributes, as they appeared before the UpdateItem operation");
// the emulator returns only those whose value changed, so relying on it
// indexed the job again on every batch. The job must exist once in the
// list, with every count, under either reading.
func TestUploadsJobIndexedOnceADay(t *testing.T) {
	c, e := newStore(t)
	ctx := context.Background()
	day := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	e.Emu.ResetCounts()
	for range 3 {
		if err := c.AddUploads(ctx, "up-data", day, jobs.Counts{Planned: 2, Done: 2, Outcomes: map[string]int64{"updated": 2}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.Emu.CountOf("dynamodb", "PutItem", ""); n != 1 {
		t.Errorf("%d index writes for three counts of one day, want 1", n)
	}
	if n := e.Emu.CountOf("dynamodb", "UpdateItem", ""); n != 3 {
		t.Errorf("%d count writes, want 3 (one a batch)", n)
	}
	list, err := c.Store.List(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != jobs.UploadsID("up-data", day) || list[0].Done != 6 || list[0].Outcomes["updated"] != 6 {
		t.Fatalf("jobs %+v, want the day's uploads job once, with 6 done and updated", list)
	}
}
