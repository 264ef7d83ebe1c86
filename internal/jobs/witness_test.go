package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/witness"
)

func TestMain(m *testing.M) { witness.Main(m) }

// witnessStore is a jobs table made as the stack makes it, on a witness.
func witnessStore(t *testing.T, w witness.Witness) *jobs.Committer {
	t.Helper()
	name := witness.Name("jobs")
	if err := demo.CreateJobsTable(context.Background(), w.Cfg, name); err != nil {
		t.Fatal(err)
	}
	return &jobs.Committer{Store: &jobs.Store{API: w.DynamoDB, Table: name}}
}

// The commit protocol against DynamoDB on each witness: a claimed task is
// held from other deliveries, a commit counts once (its repeat is a
// duplicate, a later claim finds it committed), and concurrent commits of
// the distinct tasks of one unit's chain lose and double nothing (on the
// emulator; see below for moto). It rests on TransactWriteItems being
// all-or-nothing with its conditions (API_TransactWriteItems) and on
// UpdateItem's ADD for the job's count of open tasks (API_UpdateItem).
func TestCommitProtocolAgainstWitnesses(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		c := witnessStore(t, w)
		ctx := context.Background()
		const job, n = "inv-000000000010", 12
		if _, err := c.Store.Begin(ctx, job, jobs.KindInventory, "s3://inv/manifest.json", 1, ""); err != nil {
			t.Fatal(err)
		}
		soon := time.Now().Add(time.Minute)
		first := jobs.Task{JobID: job, MessageID: jobs.MessageID("file", "first")} // the unit's first task, then "0" … "11"
		if got := claim(t, c, "A", soon, first); got[0] != jobs.Claimed {
			t.Fatalf("first claim: %v", got)
		}
		if got := claim(t, c, "B", soon, first); got[0] != jobs.Held {
			t.Fatalf("claim of a held task: %v, want held", got)
		}
		d := jobs.Delivery{JobID: job, MessageID: first.MessageID, Root: &jobs.Root{Unit: "file", First: true, Next: "0", Rows: 5, Planned: 5},
			Outcomes: map[string]int64{"updated": 5}}
		if got := commit(t, c, "A", d); got[0] != jobs.Committed {
			t.Fatalf("commit: %v", got)
		}
		if got := commit(t, c, "A", d); got[0] != jobs.Duplicate {
			t.Fatalf("the same commit again: %v, want duplicate", got)
		}
		if got := claim(t, c, "B", soon, first); got[0] != jobs.AlreadyCommitted {
			t.Fatalf("claim of a committed task: %v, want already-committed", got)
		}
		errs := make(chan error, n)
		// moto 5.2.1 loses ADDs made by concurrent requests (two of twelve
		// commits went uncounted, every one answered as committed), where
		// DynamoDB's ADD is an atomic counter (developer guide,
		// WorkingWithItems, "Atomic counters") and TransactWriteItems is
		// isolated (API_TransactWriteItems): for moto the commits are made
		// one after another, so only the concurrency is not checked there.
		sequential := w.IsMoto()
		for i := range n {
			commitOne := func() {
				token := fmt.Sprintf("t%d", i)
				task := jobs.Task{JobID: job, MessageID: jobs.MessageID("file", fmt.Sprint(i))}
				root := &jobs.Root{Unit: "file", Next: fmt.Sprint(i + 1), Rows: 10, Planned: 10}
				if i == n-1 {
					root.Next, root.Final = "", true
				}
				d := jobs.Delivery{JobID: job, MessageID: task.MessageID, Root: root, Outcomes: map[string]int64{"updated": 10}}
				if _, err := c.Claim(ctx, token, soon, []jobs.Task{task}); err != nil {
					errs <- err
					return
				}
				_, err := c.Commit(ctx, token, []jobs.Delivery{d})
				errs <- err
			}
			if sequential {
				commitOne()
			} else {
				go commitOne()
			}
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		j, err := c.Store.Get(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != jobs.StateComplete || j.Done != 10*n+5 || j.Rows != 10*n+5 || j.Outcomes["updated"] != 10*n+5 {
			t.Fatalf("%s: %d done of %d rows, %v; want complete with %d updated", j.State, j.Done, j.Rows, j.Outcomes, 10*n+5)
		}
	})
}
