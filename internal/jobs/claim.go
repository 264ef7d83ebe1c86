package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Task names one tracked task.
type Task struct{ JobID, MessageID string }

// Claim says whether a delivery may run a task.
type Claim int

const (
	// Claimed: this delivery holds the task until its lease ends, and only
	// it can commit the task.
	Claimed Claim = iota
	// AlreadyCommitted: another delivery ran and committed it; this one
	// drops it.
	AlreadyCommitted
	// Held: another delivery holds it now; this one tries again later.
	Held
)

func (c Claim) String() string { return [...]string{"claimed", "already-committed", "held"}[c] }

// Claim takes the tasks of a batch for one delivery until lease: a task
// is taken when it has no record yet, or when the delivery that last took
// it neither committed nor finished within its lease (it died). Two
// deliveries of one task therefore never run it at once, and the outcomes
// a job counts are those of the delivery that did the work.
func (c *Committer) Claim(ctx context.Context, token string, lease time.Time, tasks []Task) ([]Claim, error) {
	s := c.Store
	out := make([]Claim, len(tasks))
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = s.claim(ctx, t, token, lease)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (s *Store) claim(ctx context.Context, t Task, token string, lease time.Time) (Claim, error) {
	_, err := s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(jobPK(t.JobID), skMsgPrefix+t.MessageID),
		UpdateExpression:    aws.String("SET #tok = :tok, #until = :until, #expires = if_not_exists(#expires, :expires)"),
		ConditionExpression: aws.String("attribute_not_exists(#sk) OR (attribute_not_exists(#committed) AND #until < :now)"),
		ExpressionAttributeNames: map[string]string{"#tok": "tok", "#until": "until", "#expires": attrExpires, "#sk": attrSK,
			"#committed": "committed"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":tok": str(token), ":until": num(lease.UnixMilli()),
			":now": num(s.now().UnixMilli()), ":expires": s.expires()},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return Claimed, nil
	case !errors.As(err, &ccf):
		return Held, fmt.Errorf("job %s: claim task %s: %w", t.JobID, t.MessageID, err)
	case ccf.Item["committed"] != nil:
		return AlreadyCommitted, nil
	}
	return Held, nil
}

// Release gives up this delivery's claim on tasks it did not commit (their
// parent had not committed yet, or the commit failed), so that their next
// delivery may run them at once rather than after the lease. Best effort:
// a claim not released ends with its lease.
func (c *Committer) Release(ctx context.Context, token string, tasks []Task) {
	s := c.Store
	for _, t := range tasks {
		_, _ = s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(jobPK(t.JobID), skMsgPrefix+t.MessageID),
			UpdateExpression:          aws.String("SET #until = :zero"),
			ConditionExpression:       aws.String("#tok = :tok AND attribute_not_exists(#committed)"),
			ExpressionAttributeNames:  map[string]string{"#tok": "tok", "#until": "until", "#committed": "committed"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":tok": str(token), ":zero": num(0)}})
	}
}
