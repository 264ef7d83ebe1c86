package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/s3rekey/s3rekey/internal/rekey"
)

// Delivery is what one delivery of one message did, to commit.
type Delivery struct {
	JobID, MessageID string
	// ParentToken is, for a follow-up, the token its parent committed with.
	ParentToken string
	// Prior is, for a redriven dead letter, the outcome its Objects were
	// counted under: the redrive takes it back, once (see Reopen).
	Prior   string
	Objects int64
	Counts  Counts
	Rows    []Row
}

// Result says what became of one delivery's commit.
type Result int

const (
	// Committed: counted, and its report rows listed.
	Committed Result = iota
	// Duplicate: the task was committed by another delivery, or another
	// delivery took it over when this one's lease ran out.
	Duplicate
	// Stale: a follow-up of a delivery that lost its commit; nothing of it
	// counts, and the winner's own follow-ups cover its objects.
	Stale
	// WaitForParent: a follow-up whose parent has not committed yet; it is
	// to be delivered again a little later.
	WaitForParent
)

func (r Result) String() string {
	return [...]string{"committed", "duplicate", "stale", "wait-for-parent"}[r]
}

// Committer commits deliveries and completes jobs.
type Committer struct {
	Store *Store
	// Reports writes report parts; nil keeps counts only.
	Reports *Reports
	// Get reads parts back when a job with redriven dead letters
	// completes; nil when Reports is nil.
	Get GetObjectAPI
	// SkipUploads leaves the new-upload path uncounted (AddUploads does
	// nothing).
	SkipUploads bool
}

// maxPerTransaction bounds the deliveries of one transaction: two items
// each, and two per job, within TransactWriteItems' 100.
const maxPerTransaction = 40

// Commit commits the deliveries of one batch, made with token, and
// completes the jobs they finish. An error means nothing it names was
// committed for certain, and the caller lets those messages be delivered
// again; except a *CompletionError, which comes with the results.
func (c *Committer) Commit(ctx context.Context, token string, ds []Delivery) ([]Result, error) {
	results := make([]Result, len(ds))
	jobs := map[string]bool{}
	for start := 0; start < len(ds); start += maxPerTransaction {
		end := min(start+maxPerTransaction, len(ds))
		if err := c.commitChunk(ctx, token, ds[start:end], results[start:end]); err != nil {
			return nil, err
		}
		for i := start; i < end; i++ {
			if results[i] == Committed {
				jobs[ds[i].JobID] = true
			}
		}
	}
	var incomplete []error
	for _, id := range slices.Sorted(maps.Keys(jobs)) {
		if err := c.completeIfFinished(ctx, id); err != nil {
			incomplete = append(incomplete, err)
		}
	}
	if len(incomplete) > 0 {
		return results, &CompletionError{Err: errors.Join(incomplete...)}
	}
	return results, nil
}

// CompletionError is a commit that succeeded, after which completing a
// finished job failed: the results stand, and the job completes at the
// next commit that finds it finished (a job whose last commit meets this
// shows its counts finished and no report manifest).
type CompletionError struct{ Err error }

func (e *CompletionError) Error() string { return "complete jobs: " + e.Err.Error() }
func (e *CompletionError) Unwrap() error { return e.Err }

func (c *Committer) commitChunk(ctx context.Context, token string, ds []Delivery, results []Result) error {
	live := make([]bool, len(ds))
	for i := range live {
		live[i] = true
	}
	var parts map[string]part
	dropped := true // the parts to write are those of the live deliveries
	// selfReopen marks redriven dead letters whose job was not reopened by
	// the redrive (moved by other means): their commit reopens it.
	selfReopen := make([]bool, len(ds))
	for attempt := 0; ; attempt++ {
		if dropped {
			var err error
			if parts, err = c.writeParts(ctx, token, ds, live); err != nil {
				return err
			}
			dropped = false
		}
		items, owners := c.transaction(token, ds, live, selfReopen, parts)
		if len(items) == 0 {
			return nil
		}
		_, err := c.Store.API.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			for i := range ds {
				if live[i] {
					results[i] = Committed
				}
			}
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) || len(tce.CancellationReasons) != len(items) || attempt >= 8 {
			return fmt.Errorf("commit %d messages: %w", len(ds), err)
		}
		conflict := false
		for k, reason := range tce.CancellationReasons {
			o := owners[k]
			switch code := aws.ToString(reason.Code); {
			case code == "None" || code == "":
			case code == "TransactionConflict":
				conflict = true
			case code == "ConditionalCheckFailed" && o.reopen:
				// Reopened by the redrive after all, or not: try the other way.
				selfReopen[o.delivery] = !selfReopen[o.delivery]
			case code == "ConditionalCheckFailed" && o.delivery >= 0 && !o.parentCheck:
				live[o.delivery], results[o.delivery], dropped = false, Duplicate, true
			case code == "ConditionalCheckFailed" && o.delivery >= 0:
				// The parent has no record yet, or its sender holds it but has
				// not committed: wait. Anyone else's record: this one is stale.
				live[o.delivery], results[o.delivery], dropped = false, Stale, true
				if reason.Item == nil || strAttr(reason.Item["tok"]) == ds[o.delivery].ParentToken {
					results[o.delivery] = WaitForParent
				}
			default:
				return fmt.Errorf("commit %d messages: %s on item %d: %w", len(ds), code, k, err)
			}
		}
		if conflict {
			// Another commit held one of the items: back off briefly.
			select {
			case <-time.After(time.Duration(10<<min(attempt, 5)) * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// writeParts writes, for each job, the part holding its live deliveries'
// rows (under the same key each time, so a rewrite replaces it).
func (c *Committer) writeParts(ctx context.Context, partID string, ds []Delivery, live []bool) (map[string]part, error) {
	parts := map[string]part{}
	if c.Reports == nil {
		return parts, nil
	}
	byJob := map[string][]Row{}
	for i, d := range ds {
		if live[i] && len(d.Rows) > 0 {
			byJob[d.JobID] = append(byJob[d.JobID], d.Rows...)
		}
	}
	for _, job := range slices.Sorted(maps.Keys(byJob)) {
		p, err := c.Reports.writePart(ctx, job, partID, byJob[job])
		if err != nil {
			return nil, err
		}
		parts[job] = p
	}
	return parts, nil
}

type owner struct {
	delivery    int // -1 for a job's own items
	parentCheck bool
	// reopen marks the item that checks (or, with selfReopen, makes) a
	// redriven dead letter's reopen marker.
	reopen bool
}

func (c *Committer) transaction(token string, ds []Delivery, live, selfReopen []bool, parts map[string]part) ([]types.TransactWriteItem, []owner) {
	s := c.Store
	var items []types.TransactWriteItem
	var owners []owner
	counts := map[string]*Counts{}
	reopenJobs := map[string]bool{}
	for i, d := range ds {
		if !live[i] {
			continue
		}
		// The task's record, claimed by this delivery, becomes committed.
		items = append(items, types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.Table), Key: key(jobPK(d.JobID), skMsgPrefix+d.MessageID),
			UpdateExpression:          aws.String("SET #committed = :now"),
			ConditionExpression:       aws.String("#tok = :tok AND attribute_not_exists(#committed)"),
			ExpressionAttributeNames:  map[string]string{"#tok": "tok", "#committed": "committed"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":tok": str(token), ":now": num(s.now().UnixMilli())}}})
		owners = append(owners, owner{delivery: i})
		if parent := parentOf(d.MessageID); parent != "" {
			// A follow-up counts only once its parent was committed by the
			// delivery that sent it.
			items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(s.Table),
				Key: key(jobPK(d.JobID), skMsgPrefix+parent), ConditionExpression: aws.String("#tok = :tok AND attribute_exists(#committed)"),
				ExpressionAttributeNames:            map[string]string{"#tok": "tok", "#committed": "committed"},
				ExpressionAttributeValues:           map[string]types.AttributeValue{":tok": str(d.ParentToken)},
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}})
			owners = append(owners, owner{delivery: i, parentCheck: true})
		}
		if counts[d.JobID] == nil {
			counts[d.JobID] = &Counts{}
		}
		counts[d.JobID].add(d.Counts)
		if d.Prior != "" {
			marker := key(jobPK(d.JobID), skRedrive+d.MessageID)
			if selfReopen[i] {
				items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.Table),
					Item:                map[string]types.AttributeValue{attrPK: marker[attrPK], attrSK: marker[attrSK], attrExpires: s.expires()},
					ConditionExpression: aws.String("attribute_not_exists(#sk)"), ExpressionAttributeNames: map[string]string{"#sk": attrSK}}})
				counts[d.JobID].add(reopened(d.Prior, d.Objects))
				reopenJobs[d.JobID] = true
			} else {
				items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(s.Table), Key: marker,
					ConditionExpression: aws.String("attribute_exists(#sk)"), ExpressionAttributeNames: map[string]string{"#sk": attrSK}}})
			}
			owners = append(owners, owner{delivery: i, reopen: true})
		}
	}
	for _, job := range slices.Sorted(maps.Keys(reopenJobs)) {
		items = append(items, reopenRecord(s.Table, job))
		owners = append(owners, owner{delivery: -1})
	}
	for _, job := range slices.Sorted(maps.Keys(counts)) {
		if !counts[job].empty() {
			expr, names, values := s.addUpdate(*counts[job])
			items = append(items, types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.Table), Key: key(jobPK(job), randomShard()),
				UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: values}})
			owners = append(owners, owner{delivery: -1})
		}
		if p, ok := parts[job]; ok {
			items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.Table), Item: map[string]types.AttributeValue{
				attrPK: jobPK(job), attrSK: str(skPartPrefix + token), "key": str(p.Key), "md5": str(p.MD5), "size": num(p.Size),
				"rows": num(p.Rows), attrExpires: s.expires()}}})
			owners = append(owners, owner{delivery: -1})
		}
	}
	return items, owners
}

// completeIfFinished writes the report manifest and marks the job
// complete when every planned object has its outcome.
func (c *Committer) completeIfFinished(ctx context.Context, id string) error {
	j, err := c.Store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil // counted before its record was written: nothing to complete yet
	}
	if err != nil {
		return err
	}
	if !j.Finished() || !j.Completed.IsZero() {
		return nil
	}
	return c.Finish(ctx, j)
}

// Finish writes a finished job's report manifest and marks it complete.
// It is idempotent: the manifest lists the same parts whoever writes it.
func (c *Committer) Finish(ctx context.Context, j *Job) error {
	s := c.Store
	manifest := ""
	if c.Reports != nil {
		parts, redriven, err := s.partsAndRedrives(ctx, j.ID)
		if err != nil {
			return err
		}
		if len(redriven) > 0 {
			if parts, err = c.dropRedriven(ctx, j.ID, parts, redriven); err != nil {
				return err
			}
		}
		if manifest, err = c.Reports.writeManifest(ctx, j, parts, s.now()); err != nil {
			return err
		}
	}
	_, err := s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(jobPK(j.ID), skMeta),
		UpdateExpression:          aws.String("SET #completed = :now, #manifest = :m"),
		ConditionExpression:       aws.String("attribute_not_exists(#completed)"),
		ExpressionAttributeNames:  map[string]string{"#completed": "completed", "#manifest": "reportManifest"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(s.now().UnixMilli()), ":m": str(manifest)}})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("job %s: mark complete: %w", j.ID, err)
	}
	return nil
}

// partsAndRedrives reads a job's committed report parts and the dead
// letters redriven since.
func (s *Store) partsAndRedrives(ctx context.Context, id string) ([]part, map[string]bool, error) {
	var parts []part
	redriven := map[string]bool{}
	var start map[string]types.AttributeValue
	for {
		out, err := s.API.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(s.Table), ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("#pk = :pk AND #sk >= :from"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": jobPK(id), ":from": str(skPartPrefix)}, ExclusiveStartKey: start})
		if err != nil {
			return nil, nil, fmt.Errorf("job %s: report parts: %w", id, err)
		}
		for _, it := range out.Items {
			sk := strAttr(it[attrSK])
			if _, ok := strings.CutPrefix(sk, skPartPrefix); ok {
				parts = append(parts, part{Key: strAttr(it["key"]), MD5: strAttr(it["md5"]), Size: intAttr(it["size"]), Rows: intAttr(it["rows"])})
			} else if id, ok := strings.CutPrefix(sk, skRedrive); ok {
				redriven[id] = true
			}
		}
		if start = out.LastEvaluatedKey; start == nil {
			break
		}
	}
	slices.SortFunc(parts, func(a, b part) int { return strings.Compare(a.Key, b.Key) })
	return parts, redriven, nil
}

// dropRedriven rewrites the parts that list objects of redriven dead
// letters without them: the redrive's own commit lists their new outcome.
func (c *Committer) dropRedriven(ctx context.Context, jobID string, parts []part, redriven map[string]bool) ([]part, error) {
	var out []part
	for _, p := range parts {
		rows, err := readPart(ctx, c.Get, c.Reports.Bucket, p.Key)
		if err != nil {
			return nil, err
		}
		kept := slices.DeleteFunc(slices.Clone(rows), func(r Row) bool { return r.DeadLetter != "" && redriven[r.DeadLetter] })
		if len(kept) == len(rows) {
			out = append(out, p)
			continue
		}
		if len(kept) == 0 {
			continue
		}
		id := p.Key[len(c.Reports.dir(jobID)+"parts/"):]
		np, err := c.Reports.writePart(ctx, jobID, id[:len(id)-len(".csv.gz")], kept)
		if err != nil {
			return nil, err
		}
		out = append(out, np)
	}
	return out, nil
}

// Reopen moves a dead letter's objects from their counted failure back to
// pending, once per dead letter, before it is redriven: the job is no
// longer complete until their new outcomes are committed. stale is true
// for the dead letter of a delivery that lost its commit, which counted
// nothing.
func (s *Store) Reopen(ctx context.Context, jobID, deadLetterID, parentToken, prior string, objects int64) (stale bool, err error) {
	expr, names, values := s.addUpdate(reopened(prior, objects))
	items := []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(s.Table), Item: map[string]types.AttributeValue{attrPK: jobPK(jobID), attrSK: str(skRedrive + deadLetterID),
			attrExpires: s.expires()}, ConditionExpression: aws.String("attribute_not_exists(#sk)"), ExpressionAttributeNames: map[string]string{"#sk": attrSK}}},
		{ConditionCheck: &types.ConditionCheck{TableName: aws.String(s.Table), Key: key(jobPK(jobID), skMsgPrefix+parentOf(deadLetterID)),
			ConditionExpression: aws.String("#tok = :tok AND attribute_exists(#committed)"), ExpressionAttributeNames: map[string]string{"#tok": "tok", "#committed": "committed"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":tok": str(parentToken)}}},
		{Update: &types.Update{TableName: aws.String(s.Table), Key: key(jobPK(jobID), randomShard()), UpdateExpression: aws.String(expr),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values}},
		reopenRecord(s.Table, jobID),
	}
	for attempt := 0; ; attempt++ {
		_, err = s.API.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var tce *types.TransactionCanceledException
		if err == nil || !errors.As(err, &tce) || len(tce.CancellationReasons) != len(items) {
			break
		}
		switch {
		case aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed":
			return false, nil // moved already, by an earlier redrive of it
		case aws.ToString(tce.CancellationReasons[1].Code) == "ConditionalCheckFailed":
			return true, nil
		case attempt >= 8:
			return false, fmt.Errorf("job %s: reopen for %s: %w", jobID, deadLetterID, err)
		}
		time.Sleep(time.Duration(10<<attempt) * time.Millisecond)
	}
	if err != nil {
		return false, fmt.Errorf("job %s: reopen for %s: %w", jobID, deadLetterID, err)
	}
	return false, nil
}

// reopenRecord makes a job's record not complete again, so that its
// completion writes a new report manifest.
func reopenRecord(table, jobID string) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(table), Key: key(jobPK(jobID), skMeta),
		UpdateExpression:         aws.String("REMOVE #completed, #manifest"),
		ExpressionAttributeNames: map[string]string{"#completed": "completed", "#manifest": "reportManifest"}}}
}

// reopened are the counts a redrive takes back: objects counted done
// under prior are pending again.
func reopened(prior string, objects int64) Counts {
	return Counts{Done: -objects, Outcomes: map[string]int64{prior: -objects}}
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
