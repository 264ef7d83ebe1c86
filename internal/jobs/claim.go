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

// Task names one tracked task, and for a follow-up the task it carries on.
type Task struct{ JobID, MessageID, Parent string }

// Claim says whether a delivery may run a task.
type Claim int

const (
	// Claimed: this delivery holds the task until its lease ends, and only
	// it can commit the task.
	Claimed Claim = iota
	// AlreadyCommitted: a delivery ran and committed it; this one drops it.
	AlreadyCommitted
	// Held: another delivery holds it now; this one tries again later.
	Held
	// WaitForParent: a follow-up whose parent has not committed yet: it is
	// delivered again a little later.
	WaitForParent
	// Stale: a follow-up its parent's record does not list (it was sent by
	// a delivery that lost its commit): the winner's follow-ups carry its
	// objects, so it is dropped without running.
	Stale
)

func (c Claim) String() string {
	return [...]string{"claimed", "already-committed", "held", "wait-for-parent", "stale"}[c]
}

// maxClaimsInFlight bounds the claims a batch makes at once: a batch of
// 10,000 messages claims them 32 at a time, not on 10,000 connections.
const maxClaimsInFlight = 32

// Claim takes the tasks of a batch for one delivery until lease. A
// follow-up runs only once its parent's record lists it, so that objects
// are worked on only by the follow-ups that count. A task is taken when it
// has no record yet, or when the delivery that last took it neither
// committed nor finished within its lease (it died). Two deliveries of one
// task therefore never run it at once, and the outcomes a job counts are
// those of the delivery that did the work.
func (c *Committer) Claim(ctx context.Context, token string, lease time.Time, tasks []Task) ([]Claim, error) {
	s := c.Store
	out := make([]Claim, len(tasks))
	errs := make([]error, len(tasks))
	seen := map[Task]bool{}
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxClaimsInFlight)
	for i, t := range tasks {
		if seen[t] {
			// The same task twice in one batch: the first copy runs it.
			out[i] = Held
			continue
		}
		seen[t] = true
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			if t.Parent != "" {
				gate, err := s.gate(ctx, t)
				if err != nil || gate != Claimed {
					out[i], errs[i] = gate, err
					return
				}
			}
			out[i], errs[i] = s.claim(ctx, t, token, lease)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// gate reads a follow-up's parent record: Claimed when it lists the
// follow-up.
func (s *Store) gate(ctx context.Context, t Task) (Claim, error) {
	out, err := s.API.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(s.Table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk AND #sk = :sk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": jobPK(t.JobID), ":sk": str(skMsgPrefix + t.Parent)}})
	if err != nil {
		return WaitForParent, fmt.Errorf("job %s: read parent %s of task %s: %w", t.JobID, t.Parent, t.MessageID, err)
	}
	if len(out.Items) == 0 || out.Items[0]["committed"] == nil {
		return WaitForParent, nil
	}
	r, err := decodeRecord(strAttr(out.Items[0][attrRecord]))
	if err != nil {
		return Stale, fmt.Errorf("job %s: parent %s of task %s: %w", t.JobID, t.Parent, t.MessageID, err)
	}
	if !r.lists(t.MessageID) {
		return Stale, nil
	}
	return Claimed, nil
}

func (s *Store) claim(ctx context.Context, t Task, token string, lease time.Time) (Claim, error) {
	_, err := s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(jobPK(t.JobID), skMsgPrefix+t.MessageID),
		UpdateExpression:    aws.String("SET #tok = :tok, #until = :until, #expires = if_not_exists(#expires, :expires)"),
		ConditionExpression: aws.String("attribute_not_exists(#committed) AND (attribute_not_exists(#until) OR #until < :now)"),
		ExpressionAttributeNames: map[string]string{"#tok": "tok", "#until": "until", "#expires": attrExpires,
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

// Release gives up this delivery's claim on tasks it did not commit (a
// follow-up could not be sent, or the commit failed), so that their next
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
