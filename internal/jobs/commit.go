package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// Result says what became of one delivery's commit.
type Result int

const (
	// Uncommitted: nothing was written for it (the commit failed first).
	// It is the zero value, so that a commit that fails part way never
	// reports a delivery committed that is not.
	Uncommitted Result = iota
	// Committed: its record is written, and counts.
	Committed
	// Duplicate: the task was committed by another delivery, or another
	// delivery took it over when this one's lease ran out.
	Duplicate
	// Closed: the task's job failed or was cancelled; nothing it did
	// counts, so that a closed job keeps the counts and report it was
	// closed with.
	Closed
)

func (r Result) String() string {
	return [...]string{"uncommitted", "committed", "duplicate", "closed"}[r]
}

// Committer commits deliveries and completes jobs.
type Committer struct {
	Store *Store
	// Reports writes report parts; nil keeps counts only.
	Reports *Reports
	// Get reads a report manifest's metadata, to see that it lists what
	// the job counts; nil when Reports is nil.
	Get ReportReader
	// SkipUploads leaves the new-upload path uncounted (AddUploads does
	// nothing).
	SkipUploads bool
}

// maxPerTransaction bounds the deliveries of one transaction: a record
// each, and at most one counter item and one check of the job's record
// per job, within TransactWriteItems' 100 items, none of them twice
// (API_TransactWriteItems: "You can't target the same item with multiple
// operations within the same transaction").
const maxPerTransaction = 33

// Commit writes the records of one batch's deliveries, made with token,
// and completes the jobs they (or duplicates of them) finish. Each record
// is written only if this delivery still holds the task's claim and it is
// not committed yet. An error means the deliveries it did not report
// committed may not be: the caller lets those messages be delivered
// again, and their next delivery finds the record if it was written. A
// *CompletionError comes with the results: the records stand, and
// completing a finished job is to be tried again.
func (c *Committer) Commit(ctx context.Context, token string, ds []Delivery) ([]Result, error) {
	results := make([]Result, len(ds))
	jobs := map[string]bool{}
	seen := map[[2]string]bool{}
	var todo []int
	for i, d := range ds {
		k := [2]string{d.JobID, d.MessageID}
		if seen[k] {
			results[i] = Duplicate // one record per task, once
			continue
		}
		seen[k] = true
		todo = append(todo, i)
	}
	for start := 0; start < len(todo); start += maxPerTransaction {
		chunk := todo[start:min(start+maxPerTransaction, len(todo))]
		if err := c.commitChunk(ctx, token, ds, chunk, results); err != nil {
			return results, err
		}
		for _, i := range chunk {
			jobs[ds[i].JobID] = true
		}
	}
	if err := c.Complete(ctx, slices.Sorted(maps.Keys(jobs))...); err != nil {
		return results, err
	}
	return results, nil
}

// CompletionError is a commit that succeeded, after which completing a
// finished job failed: the results stand, and the job completes when a
// commit or a duplicate delivery of its tasks tries again.
type CompletionError struct {
	Jobs []string
	Err  error
}

func (e *CompletionError) Error() string { return "complete jobs: " + e.Err.Error() }
func (e *CompletionError) Unwrap() error { return e.Err }

// pendingRecord is one delivery's record, ready to write.
type pendingRecord struct {
	i   int
	rec record
}

func (c *Committer) commitChunk(ctx context.Context, token string, ds []Delivery, chunk []int, results []Result) error {
	var live []pendingRecord
	for _, i := range chunk {
		rec, err := c.prepare(ctx, ds[i])
		if err != nil {
			return err
		}
		live = append(live, pendingRecord{i, rec})
	}
	for attempt := 0; len(live) > 0; attempt++ {
		items := c.transaction(token, ds, live)
		_, err := c.Store.API.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			for _, p := range live {
				results[p.i] = Committed
			}
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) || len(tce.CancellationReasons) != len(items) || attempt >= 8 {
			return fmt.Errorf("commit %d tasks: %w", len(live), err)
		}
		conflict := false
		var kept []pendingRecord
		closed := closedJobs(ds, live, tce.CancellationReasons)
		for k, reason := range tce.CancellationReasons {
			switch code := aws.ToString(reason.Code); {
			case k < len(live) && closed[ds[live[k].i].JobID]:
				// The job failed or was cancelled: its tasks count nothing.
				results[live[k].i] = Closed
			case k >= len(live) && code == "ConditionalCheckFailed":
				// A closed job's check, handled above.
			case k >= len(live):
				// A counter item: it has no condition.
				if code == "TransactionConflict" {
					conflict = true
				} else if code != "None" && code != "" {
					return fmt.Errorf("commit %d tasks: %s on a counter: %w", len(live), code, err)
				}
			case code == "None" || code == "":
				kept = append(kept, live[k])
			case code == "TransactionConflict":
				conflict = true
				kept = append(kept, live[k])
			case code == "ConditionalCheckFailed":
				// Committed already, or another delivery took the task over.
				results[live[k].i] = Duplicate
			default:
				return fmt.Errorf("commit %d tasks: %s on task %s: %w", len(live), code, ds[live[k].i].MessageID, err)
			}
		}
		live = kept
		if conflict {
			select {
			case <-time.After(time.Duration(10<<min(attempt, 5)) * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// closedJobs are the jobs whose record check failed in a cancelled
// transaction (its items: the records, a counter per job, a check per
// job): the jobs failed or cancelled since their tasks ran.
func closedJobs(ds []Delivery, live []pendingRecord, reasons []types.CancellationReason) map[string]bool {
	out := map[string]bool{}
	jobs := liveJobs(ds, live)
	for k, job := range jobs {
		if aws.ToString(reasons[len(live)+len(jobs)+k].Code) == "ConditionalCheckFailed" {
			out[job] = true
		}
	}
	return out
}

// liveJobs are the jobs of the live deliveries, in order.
func liveJobs(ds []Delivery, live []pendingRecord) []string {
	jobs := map[string]bool{}
	for _, p := range live {
		jobs[ds[p.i].JobID] = true
	}
	return slices.Sorted(maps.Keys(jobs))
}

// prepare writes a delivery's report parts (its own rows, and each dead
// letter's) and returns its record.
func (c *Committer) prepare(ctx context.Context, d Delivery) (record, error) {
	var own *part
	children := slices.Clone(d.Children)
	if c.Reports != nil {
		if len(d.Rows) > 0 {
			p, err := c.Reports.writePart(ctx, d.JobID, d.MessageID, d.Rows)
			if err != nil {
				return record{}, err
			}
			own = &p
		}
		for k, ch := range children {
			if len(ch.Rows) > 0 {
				p, err := c.Reports.writePart(ctx, d.JobID, ch.ID+"-dead", ch.Rows)
				if err != nil {
					return record{}, err
				}
				children[k].Part = &p
			}
		}
	}
	return d.record(own, children), nil
}

// transaction is the records of the live deliveries, then one counter
// item per job with what they change in its open tasks.
func (c *Committer) transaction(token string, ds []Delivery, live []pendingRecord) []types.TransactWriteItem {
	s := c.Store
	var items []types.TransactWriteItem
	open := map[string]int64{}
	for _, p := range live {
		d := ds[p.i]
		items = append(items, types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.Table), Key: key(jobPK(d.JobID), skMsgPrefix+d.MessageID),
			UpdateExpression:          aws.String("SET #committed = :now, #rec = :rec"),
			ConditionExpression:       aws.String("#tok = :tok AND attribute_not_exists(#committed)"),
			ExpressionAttributeNames:  map[string]string{"#tok": "tok", "#committed": "committed", "#rec": attrRecord},
			ExpressionAttributeValues: map[string]types.AttributeValue{":tok": str(token), ":now": num(s.now().UnixMilli()), ":rec": str(p.rec.encode())}}})
		open[d.JobID] += p.rec.openDelta()
	}
	for _, job := range slices.Sorted(maps.Keys(open)) {
		items = append(items, types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.Table), Key: key(jobPK(job), randomShard()),
			UpdateExpression:         aws.String("SET #expires = if_not_exists(#expires, :expires) ADD #open :n"),
			ExpressionAttributeNames: map[string]string{"#expires": attrExpires, "#open": cOpen},
			ExpressionAttributeValues: map[string]types.AttributeValue{":expires": s.expires(),
				":n": &types.AttributeValueMemberN{Value: strconv.FormatInt(open[job], 10)}}}})
	}
	for _, job := range slices.Sorted(maps.Keys(open)) {
		// A job failed or cancelled (Store.end writes its record's state)
		// takes no more commits: the transaction is serializable with that
		// write, so a closed job's counts are what its closing read.
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(s.Table), Key: key(jobPK(job), skMeta),
			ConditionExpression:      aws.String("attribute_not_exists(#state)"),
			ExpressionAttributeNames: map[string]string{"#state": attrTerminalState}}})
	}
	return items
}

// AddUploads counts the new-upload path's outcomes (see Store.AddUploads).
func (c *Committer) AddUploads(ctx context.Context, bucket string, day time.Time, counts Counts) error {
	if c.SkipUploads {
		return nil
	}
	return c.Store.AddUploads(ctx, bucket, day, counts)
}

// Wants reports whether the report lists an outcome.
func (c *Committer) Wants(o rekey.Outcome) bool { return c.Reports.Wants(o) }

// Sign and Verify: see Store.Sign and Store.Verify.
func (c *Committer) Sign(ctx context.Context, t *messages.Task) error { return c.Store.Sign(ctx, t) }
func (c *Committer) Verify(ctx context.Context, t messages.Task) (bool, error) {
	return c.Store.Verify(ctx, t)
}
