package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Terminal states: a job that cannot proceed, and one an operator closed.
// Both are final: once recorded, no later progress, completion or second
// failure changes them.
const (
	StateFailed    = "failed"
	StateCancelled = "cancelled"
	// StateStalled is shown, not stored: a planning or running job with no
	// progress for StallAfter (the work stopped: an interrupted local run,
	// or functions that cannot run).
	StateStalled = "stalled"
)

// StallAfter is how long a job may go without progress before it shows as
// stalled: longer than the longest delay SQS gives a message (15 minutes)
// and a batch's run, so that a job whose last objects wait out a retry's
// backoff is not called stalled.
const StallAfter = 20 * time.Minute

// Attributes of a job's record: when it became terminal (its state and
// reason are attrTerminalState and attrTerminalReason, store.go), and the
// time of an uploads job's last count.
const (
	attrTerminalAt = "terminalAt"
	attrProgressed = "progressed"
)

// ErrFinal is a Cancel of a job that is already complete, failed or
// cancelled.
var ErrFinal = errors.New("the job is already final")

// Fail records that a job cannot proceed, with its reason. It is final and
// idempotent: a job already complete, failed or cancelled keeps its state
// and its first reason.
func (s *Store) Fail(ctx context.Context, jobID, reason string) error {
	return s.FailSource(ctx, jobID, "", reason)
}

// FailSource is Fail for a job that may have no record yet (it failed
// before its planning began): the record is made, with its source, so that
// the job and its reason can be shown.
func (s *Store) FailSource(ctx context.Context, jobID, source, reason string) error {
	err := s.end(ctx, jobID, StateFailed, source, reason, false)
	if errors.Is(err, ErrFinal) {
		return nil
	}
	return err
}

// Cancel closes a job that will never finish, with the operator's reason.
// It refuses a job with no record, and one already complete, failed or
// cancelled (ErrFinal, with its state).
func (s *Store) Cancel(ctx context.Context, jobID, reason string) error {
	return s.end(ctx, jobID, StateCancelled, "", reason, true)
}

// end writes a terminal state on a job's record, on condition that it has
// none and is not complete.
func (s *Store) end(ctx context.Context, jobID, state, source, reason string, mustExist bool) error {
	if !ValidID(jobID) {
		return fmt.Errorf("job %q: not a job id", jobID)
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("job %s: a %s job needs a reason", jobID, state)
	}
	now := num(s.now().UnixMilli())
	cond := "attribute_not_exists(#state) AND attribute_not_exists(#completed)"
	if mustExist {
		cond += " AND attribute_exists(#kind)"
	}
	out, err := s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(jobPK(jobID), skMeta),
		UpdateExpression: aws.String("SET #state = :state, #reason = :reason, #at = :now, #kind = if_not_exists(#kind, :kind), " +
			"#source = if_not_exists(#source, :source), #created = if_not_exists(#created, :now), #expires = if_not_exists(#expires, :expires)"),
		ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: map[string]string{"#state": attrTerminalState, "#reason": attrTerminalReason, "#at": attrTerminalAt,
			"#completed": "completed", "#kind": "kind", "#source": "source", "#created": "created", "#expires": attrExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":state": str(state), ":reason": str(reason), ":now": now,
			":kind": str(KindOf(jobID)), ":source": str(source), ":expires": s.expires()},
		ReturnValues: types.ReturnValueAllOld, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return finalError(jobID, ccf.Item)
	}
	if err != nil {
		return fmt.Errorf("job %s: mark %s: %w", jobID, state, err)
	}
	if _, existed := out.Attributes["created"]; !existed {
		// A job that failed before its planning began: list it.
		return s.index(ctx, jobID, time.UnixMilli(intAttr(now)))
	}
	return nil
}

// finalError says why a job could not be made terminal, from its record.
func finalError(jobID string, old map[string]types.AttributeValue) error {
	switch {
	case len(old) == 0 || old["kind"] == nil:
		return fmt.Errorf("job %s: %w", jobID, ErrNotFound)
	case strAttr(old[attrTerminalState]) != "":
		return fmt.Errorf("job %s is %s (%s): %w", jobID, strAttr(old[attrTerminalState]), strAttr(old[attrTerminalReason]), ErrFinal)
	default:
		return fmt.Errorf("job %s is complete: %w", jobID, ErrFinal)
	}
}

// KindOf is the kind a job id names ("" when it names none).
func KindOf(id string) string {
	switch {
	case strings.HasPrefix(id, "inv-"):
		return KindInventory
	case strings.HasPrefix(id, "lst-"):
		return KindListing
	case strings.HasPrefix(id, "upl-"):
		return KindUploads
	}
	return ""
}

// noteProgress keeps the latest progress time of a job's items: a task
// record's commit, or an uploads job's count.
func (items *jobItems) noteProgress(it map[string]types.AttributeValue) {
	items.progressed = max(items.progressed, intAttr(it[attrProgressed]), intAttr(it["committed"]))
}

// readEnd reads when a terminal job ended, and when the job last moved.
func (j *Job) readEnd(items *jobItems) {
	if at := intAttr(items.meta[attrTerminalAt]); at > 0 {
		j.Ended = time.UnixMilli(at).UTC()
	}
	if items.progressed > 0 {
		j.Progressed = time.UnixMilli(items.progressed).UTC()
	}
}

// Terminal reports whether the job failed or was cancelled.
func (j *Job) Terminal() bool { return j.State == StateFailed || j.State == StateCancelled }

// LastProgress is when the job last moved: its latest count, or its
// creation.
func (j *Job) LastProgress() time.Time {
	if j.Progressed.After(j.Created) {
		return j.Progressed
	}
	return j.Created
}

// Stalled reports whether a planning or running job has made no progress
// for after (StallAfter when 0) at now.
func (j *Job) Stalled(now time.Time, after time.Duration) bool {
	if after <= 0 {
		after = StallAfter
	}
	return (j.State == StatePlanning || j.State == StateRunning) && now.Sub(j.LastProgress()) >= after
}

// Cancel closes a job that will never finish (Store.Cancel), then writes
// its report: the rows committed so far, in a manifest.json that names
// the cancellation and its reason. It returns the closed job.
func (c *Committer) Cancel(ctx context.Context, jobID, reason string) (*Job, error) {
	if err := c.Store.Cancel(ctx, jobID, reason); err != nil {
		return nil, err
	}
	j, err := c.Store.Get(ctx, jobID)
	if err != nil {
		return nil, err
	}
	if c.Reports != nil {
		manifest, err := c.Reports.writeManifest(ctx, j, c.Store.now())
		if err != nil {
			return nil, err
		}
		if _, err := c.Store.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(c.Store.Table), Key: key(jobPK(jobID), skMeta),
			UpdateExpression: aws.String("SET #manifest = :m"), ExpressionAttributeNames: map[string]string{"#manifest": "reportManifest"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":m": str(manifest)}}); err != nil {
			return nil, fmt.Errorf("job %s: record its report: %w", jobID, err)
		}
	}
	return c.Store.Get(ctx, jobID)
}

// Terminal reports a job's terminal state (failed or cancelled) and its
// reason; "" for a job that is not terminal or has no record yet. It reads
// the job's record only (one consistent Query of one item), so that the
// planner can drop a control message of a closed job without reading the
// job's tasks.
func (s *Store) Terminal(ctx context.Context, jobID string) (state, reason string, err error) {
	out, err := s.API.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(s.Table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk AND #sk = :sk"),
		ProjectionExpression:      aws.String("#state, #reason"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK, "#state": attrTerminalState, "#reason": attrTerminalReason},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": jobPK(jobID), ":sk": str(skMeta)}})
	if err != nil {
		return "", "", fmt.Errorf("job %s: state: %w", jobID, err)
	}
	if len(out.Items) == 0 {
		return "", "", nil
	}
	return strAttr(out.Items[0][attrTerminalState]), strAttr(out.Items[0][attrTerminalReason]), nil
}
