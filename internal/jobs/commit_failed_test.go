package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// failingPuts is a report bucket that refuses every write.
type failingPuts struct{}

func (failingPuts) PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return nil, errors.New("ExpiredToken: the provided token has expired")
}

// A commit that fails before writing a delivery's record (here its report
// part) must not call that delivery committed: its message would be
// deleted with nothing recorded, and the job would never complete.
func TestFailedCommitCommitsNothing(t *testing.T) {
	c, _ := newStore(t)
	ctx := context.Background()
	const job = "inv-000000000002"
	if _, err := c.Store.Begin(ctx, job, jobs.KindInventory, "s3://inv/manifest.json", 1, ""); err != nil {
		t.Fatal(err)
	}
	c.Reports = &jobs.Reports{API: failingPuts{}, Bucket: "reports", KMSKeyARN: "k", All: true}
	root := jobs.Task{JobID: job, MessageID: jobs.MessageID("file", "0")}
	claim(t, c, "A", time.Now().Add(time.Minute), root)
	d := jobs.Delivery{JobID: job, MessageID: root.MessageID, Root: &jobs.Root{Unit: "file", First: true, Final: true, Rows: 1, Planned: 1},
		Outcomes: map[string]int64{"updated": 1}, Rows: []jobs.Row{{Bucket: "b", Key: "k", Outcome: rekey.Outcome{Status: rekey.Updated}}}}
	got, err := c.Commit(ctx, "A", []jobs.Delivery{d})
	if err == nil {
		t.Fatal("commit with a refused report part: no error")
	}
	if len(got) != 1 || got[0] == jobs.Committed || got[0] == jobs.Duplicate {
		t.Fatalf("results %v after a failed commit; want the delivery uncommitted", got)
	}
}
