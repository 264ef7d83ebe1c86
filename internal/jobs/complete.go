package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Complete writes the report of each of the jobs that is finished, and
// records on the job that its report lists what is counted. It is
// idempotent and safe to run at once from many deliveries: the report is
// a function of the records, and a job's record only ever moves to a
// report of more records. A duplicate delivery of a finished job's task
// runs it too, so a completion that failed (or a crash after a commit) is
// finished by the next delivery.
func (c *Committer) Complete(ctx context.Context, ids ...string) error {
	var errs []error
	var failed []string
	for _, id := range ids {
		if err := c.complete(ctx, id); err != nil {
			errs = append(errs, err)
			failed = append(failed, id)
		}
	}
	if len(errs) > 0 {
		return &CompletionError{Jobs: failed, Err: errors.Join(errs...)}
	}
	return nil
}

// maxCompleteRounds bounds the rounds of one completion: a round ends
// with the job's records read again, and another round runs only if a
// commit changed them meanwhile (that commit completes the job too).
const maxCompleteRounds = 4

func (c *Committer) complete(ctx context.Context, id string) error {
	s := c.Store
	open, units, err := s.openHint(ctx, id)
	if err != nil || units == 0 || open > 0 {
		return err
	}
	j, err := s.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	for round := 0; err == nil && round < maxCompleteRounds; round++ {
		if !j.Finished() || j.TerminalState != "" || j.Kind == KindUploads {
			return nil
		}
		manifest := j.ReportManifest
		if c.Reports != nil {
			current := false
			if j.completedDigest == j.digest {
				current, err = c.Reports.manifestLists(ctx, c.Get, id, j.digest)
				if err != nil {
					return err
				}
			}
			if !current {
				if manifest, err = c.Reports.writeManifest(ctx, j, s.now()); err != nil {
					return err
				}
			}
		}
		if err := s.markComplete(ctx, j, manifest); err != nil {
			return err
		}
		// A commit between the read and the write may have changed what
		// is counted: read again, and write again if it did.
		again, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		if again.digest == j.digest {
			return nil
		}
		j = again
	}
	return err
}

// markComplete records on the job which records its report lists (their
// digest and number), and where the report's manifest is. The number only
// grows (records are never removed), so a slow completion of fewer
// records never overwrites a later one's.
func (s *Store) markComplete(ctx context.Context, j *Job, manifest string) error {
	_, err := s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(jobPK(j.ID), skMeta),
		UpdateExpression:    aws.String("SET #digest = :d, #counted = :n, #completed = :now, #manifest = :m"),
		ConditionExpression: aws.String("attribute_not_exists(#counted) OR #counted < :n OR (#counted = :n AND #digest = :d)"),
		ExpressionAttributeNames: map[string]string{"#digest": attrDigest, "#counted": attrCounted, "#completed": "completed",
			"#manifest": "reportManifest"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": str(j.digest), ":n": num(j.counted),
			":now": num(s.now().UnixMilli()), ":m": str(manifest)}})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("job %s: mark complete: %w", j.ID, err)
	}
	return nil
}
