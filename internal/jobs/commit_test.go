package jobs_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/s3rekey/s3rekey/internal/demo"
	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
	"github.com/s3rekey/s3rekey/internal/jobs"
)

// newStore starts an emulator with a jobs table, as the stack makes it.
func newStore(t *testing.T) (*jobs.Committer, *emutest.Env) {
	t.Helper()
	e := emutest.Start(t, emulator.Options{})
	if err := demo.CreateJobsTable(context.Background(), e.Cfg, "jobs"); err != nil {
		t.Fatal(err)
	}
	return &jobs.Committer{Store: &jobs.Store{API: dynamodb.NewFromConfig(e.Cfg), Table: "jobs"}}, e
}

func claim(t *testing.T, c *jobs.Committer, token string, lease time.Time, tasks ...jobs.Task) []jobs.Claim {
	t.Helper()
	got, err := c.Claim(context.Background(), token, lease, tasks)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func commit(t *testing.T, c *jobs.Committer, token string, ds ...jobs.Delivery) []jobs.Result {
	t.Helper()
	got, err := c.Commit(context.Background(), token, ds)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestCommitCountsEachTaskOnce walks one job through every way a task can
// reach the commit twice or early, and checks the counts after each.
func TestCommitCountsEachTaskOnce(t *testing.T) {
	c, _ := newStore(t)
	ctx := context.Background()
	const job = "inv-000000000001"
	if _, err := c.Store.Begin(ctx, job, jobs.KindInventory, "s3://inv/manifest.json", 1, ""); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(time.Minute)
	root := jobs.Task{JobID: job, MessageID: jobs.MessageID("file", "0")}
	retry := jobs.Task{JobID: job, MessageID: jobs.ChildID(root.MessageID, jobs.ChildRetry, []byte("A")), Parent: root.MessageID}
	rootDelivery := jobs.Delivery{JobID: job, MessageID: root.MessageID, Root: &jobs.Root{Unit: "file", First: true, Final: true, Rows: 4, Planned: 4},
		Outcomes: map[string]int64{"updated": 3}, Children: []jobs.Child{{ID: retry.MessageID, Kind: jobs.ChildRetry, Objects: 1}}}

	// A second delivery cannot take a task the first holds.
	if got := claim(t, c, "A", soon, root); got[0] != jobs.Claimed {
		t.Fatalf("first claim: %v", got)
	}
	if got := claim(t, c, "B", soon, root); got[0] != jobs.Held {
		t.Fatalf("claim of a held task: %v, want held", got)
	}
	// A's follow-up arrives before A commits: it waits, and does not run.
	if got := claim(t, c, "C", soon, retry); got[0] != jobs.WaitForParent {
		t.Fatalf("follow-up before its parent's commit: %v, want wait-for-parent", got)
	}
	if got := commit(t, c, "A", rootDelivery); got[0] != jobs.Committed {
		t.Fatalf("root commit: %v", got)
	}
	if got := claim(t, c, "B", soon, root); got[0] != jobs.AlreadyCommitted {
		t.Fatalf("claim of a committed task: %v, want already-committed", got)
	}
	// A follow-up the parent's record does not list (sent by a delivery
	// that lost) is stale: it never runs.
	stale := jobs.Task{JobID: job, MessageID: jobs.ChildID(root.MessageID, jobs.ChildRetry, []byte("B")), Parent: root.MessageID}
	if got := claim(t, c, "E", soon, stale); got[0] != jobs.Stale {
		t.Fatalf("follow-up of a losing delivery: %v, want stale", got)
	}
	j, err := c.Store.Get(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != jobs.StateRunning || j.Done != 3 || j.Planned != 4 || j.Pending != 1 {
		t.Fatalf("before the retry commits: %s %d/%d, %d pending", j.State, j.Done, j.Planned, j.Pending)
	}
	if got := claim(t, c, "D", soon, retry); got[0] != jobs.Claimed {
		t.Fatalf("follow-up after its parent's commit: %v", got)
	}
	retryDelivery := jobs.Delivery{JobID: job, MessageID: retry.MessageID, Parent: root.MessageID, Kind: jobs.ChildRetry, Outcomes: map[string]int64{"updated": 1}}
	if got := commit(t, c, "D", retryDelivery); got[0] != jobs.Committed {
		t.Fatalf("follow-up commit: %v", got)
	}
	// Committing the same delivery again counts nothing.
	if got := commit(t, c, "D", retryDelivery); got[0] != jobs.Duplicate {
		t.Fatalf("second commit of one task: %v, want duplicate", got)
	}
	if j, err = c.Store.Get(ctx, job); err != nil {
		t.Fatal(err)
	}
	if j.State != jobs.StateComplete || j.Done != 4 || j.Rows != 4 || j.Outcomes["updated"] != 4 || len(j.Outcomes) != 1 || j.Completed.IsZero() {
		t.Fatalf("after every commit: %+v", j)
	}
}

// TestLeaseEnds: a delivery that died with its task claimed holds it only
// until its lease ends.
func TestLeaseEnds(t *testing.T) {
	c, _ := newStore(t)
	task := jobs.Task{JobID: "inv-000000000002", MessageID: "m"}
	if got := claim(t, c, "dead", time.Now().Add(-time.Second), task); got[0] != jobs.Claimed {
		t.Fatalf("%v", got)
	}
	if got := claim(t, c, "next", time.Now().Add(time.Minute), task); got[0] != jobs.Claimed {
		t.Fatalf("claim after the lease ended: %v, want claimed", got)
	}
	// The dead delivery can no longer commit it.
	if got := commit(t, c, "dead", jobs.Delivery{JobID: task.JobID, MessageID: "m", Outcomes: map[string]int64{"updated": 1}}); got[0] != jobs.Duplicate {
		t.Fatalf("commit by a delivery whose lease ended: %v, want duplicate", got)
	}
}

// TestConcurrentCommitsAreExact: many deliveries of one unit's chain of
// tasks commit at once into one job, and nothing is lost or doubled.
func TestConcurrentCommitsAreExact(t *testing.T) {
	c, _ := newStore(t)
	ctx := context.Background()
	const job, n = "inv-000000000003", 60
	if _, err := c.Store.Begin(ctx, job, jobs.KindInventory, "s3://inv/manifest.json", 1, ""); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			token := "t" + strconv.Itoa(i)
			task := jobs.Task{JobID: job, MessageID: jobs.MessageID("file", strconv.Itoa(10*i))}
			root := &jobs.Root{Unit: "file", First: i == 0, Next: strconv.Itoa(10 * (i + 1)), Rows: 10, Planned: 10}
			if i == n-1 {
				root.Next, root.Final, root.UnitRows = "", true, 10*n
			}
			d := jobs.Delivery{JobID: job, MessageID: task.MessageID, Root: root, Outcomes: map[string]int64{"updated": 10}}
			if _, err := c.Claim(ctx, token, time.Now().Add(time.Minute), []jobs.Task{task}); err != nil {
				errs <- err
				return
			}
			_, err := c.Commit(ctx, token, []jobs.Delivery{d})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The last commit did not see the others' records for certain; the
	// others' completion checks did, or a later one does.
	if err := c.Complete(ctx, job); err != nil {
		t.Fatal(err)
	}
	j, err := c.Store.Get(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != jobs.StateComplete || j.Done != 10*n || j.Outcomes["updated"] != 10*n {
		t.Fatalf("%s: %d done, %v; want complete with %d updated", j.State, j.Done, j.Outcomes, 10*n)
	}
}

// TestCommitOfManyTasksInOneBatch: a batch of 10,000 deliveries, up to
// the encrypt function's largest batch, commits in transactions of at
// most 100 items each, none of them naming an item twice
// (API_TransactWriteItems in the DynamoDB API Reference), whatever the
// mix of jobs.
func TestCommitOfManyTasksInOneBatch(t *testing.T) {
	c, _ := newStore(t)
	ctx := context.Background()
	var counted countingTransactions
	counted.DynamoDBAPI = c.Store.API
	c.Store.API = &counted
	const perJob = 400
	var tasks []jobs.Task
	var ds []jobs.Delivery
	for j := range 25 {
		job := "inv-" + strings.Repeat("0", 10) + strconv.Itoa(10+j)
		if _, err := c.Store.Begin(ctx, job, jobs.KindInventory, "s3://inv/"+job, 1, ""); err != nil {
			t.Fatal(err)
		}
		for i := range perJob {
			id := jobs.MessageID("file", strconv.Itoa(i))
			tasks = append(tasks, jobs.Task{JobID: job, MessageID: id})
			root := &jobs.Root{Unit: "file", First: i == 0, Next: strconv.Itoa(i + 1), Rows: 1, Planned: 1, Final: i == perJob-1}
			if root.Final {
				root.Next = ""
			}
			ds = append(ds, jobs.Delivery{JobID: job, MessageID: id, Root: root, Outcomes: map[string]int64{"updated": 1}})
		}
	}
	claim(t, c, "big", time.Now().Add(time.Minute), tasks...)
	for i, r := range commit(t, c, "big", ds...) {
		if r != jobs.Committed {
			t.Fatalf("delivery %d: %v", i, r)
		}
	}
	if counted.maxItems > 100 || counted.repeated {
		t.Fatalf("a transaction of %d items, repeated items %t", counted.maxItems, counted.repeated)
	}
	j, err := c.Store.Get(ctx, ds[0].JobID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != jobs.StateComplete || j.Done != perJob {
		t.Fatalf("%s: %d done, want complete with %d", j.State, j.Done, perJob)
	}
}

// countingTransactions records the largest transaction and whether one
// named an item twice.
type countingTransactions struct {
	jobs.DynamoDBAPI
	maxItems int
	repeated bool
}

func (c *countingTransactions) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.maxItems = max(c.maxItems, len(in.TransactItems))
	seen := map[string]bool{}
	for _, it := range in.TransactItems {
		var k map[string]ddbtypes.AttributeValue
		switch {
		case it.Update != nil:
			k = it.Update.Key
		case it.Put != nil:
			k = it.Put.Item
		case it.ConditionCheck != nil:
			k = it.ConditionCheck.Key
		}
		id := k["pk"].(*ddbtypes.AttributeValueMemberS).Value + "|" + k["sk"].(*ddbtypes.AttributeValueMemberS).Value
		c.repeated = c.repeated || seen[id]
		seen[id] = true
	}
	return c.DynamoDBAPI.TransactWriteItems(ctx, in, optFns...)
}

// conflicting cancels the first transactions it sees with
// TransactionConflict on every item, as DynamoDB does when another
// transaction holds one of them (API_TransactWriteItems).
type conflicting struct {
	jobs.DynamoDBAPI
	left int
}

func (c *conflicting) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if c.left > 0 {
		c.left--
		reasons := make([]ddbtypes.CancellationReason, len(in.TransactItems))
		for i := range reasons {
			reasons[i] = ddbtypes.CancellationReason{Code: aws.String("TransactionConflict")}
		}
		return nil, &ddbtypes.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
	}
	return c.DynamoDBAPI.TransactWriteItems(ctx, in, optFns...)
}

func TestCommitRetriesTransactionConflicts(t *testing.T) {
	c, _ := newStore(t)
	c.Store.API = &conflicting{DynamoDBAPI: c.Store.API, left: 3}
	task := jobs.Task{JobID: "inv-000000000004", MessageID: "m"}
	claim(t, c, "tok", time.Now().Add(time.Minute), task)
	if got := commit(t, c, "tok", jobs.Delivery{JobID: task.JobID, MessageID: "m", Outcomes: map[string]int64{"updated": 1}}); got[0] != jobs.Committed {
		t.Fatalf("commit after three conflicts: %v, want committed", got)
	}
	c.Store.API.(*conflicting).left = 100
	if _, err := c.Commit(context.Background(), "tok", []jobs.Delivery{{JobID: task.JobID, MessageID: "n"}}); err == nil {
		t.Fatal("a commit that always conflicts succeeded")
	}
}
