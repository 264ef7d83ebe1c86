package encrypt

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// PauseTableAPI is what the pause records need of DynamoDB.
type PauseTableAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var (
	_ PauseTableAPI = (*dynamodb.Client)(nil)
	_ PauseStore    = (*PauseTable)(nil)
)

// PauseTable keeps the pauses in the jobs table, one item per scope under
// the partition "breaker" (job records and budget heartbeats never use
// it). A resumed scope keeps its item, marked resumed, until the table's
// TTL removes it a week later: the record of what was paused and when.
type PauseTable struct {
	API  PauseTableAPI
	Name string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

const (
	pausePartition = "breaker"
	pauseState     = "state"
	statePaused    = "paused"
	stateResumed   = "resumed"
	resumedKept    = 7 * 24 * time.Hour
)

func (t *PauseTable) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func pauseKey(scope string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(pausePartition), "sk": str(scope)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func millis(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

// Pauses lists the scopes paused now (a strongly consistent read: a
// resume is seen by the next refresh of every invocation).
func (t *PauseTable) Pauses(ctx context.Context) ([]Pause, error) {
	var out []Pause
	var start map[string]types.AttributeValue
	for {
		page, err := t.API.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(t.Name), ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("pk = :pk"),
			FilterExpression:          aws.String("#state = :paused"),
			ExpressionAttributeNames:  map[string]string{"#state": pauseState},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pausePartition), ":paused": str(statePaused)},
			ExclusiveStartKey:         start})
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			out = append(out, pauseOf(item))
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = page.LastEvaluatedKey
	}
}

func pauseOf(item map[string]types.AttributeValue) Pause {
	s := func(name string) string {
		v, _ := item[name].(*types.AttributeValueMemberS)
		if v == nil {
			return ""
		}
		return v.Value
	}
	t := func(name string) time.Time {
		v, _ := item[name].(*types.AttributeValueMemberN)
		if v == nil {
			return time.Time{}
		}
		ms, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil || ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms).UTC()
	}
	return Pause{Scope: s("sk"), Reason: s("reason"), Detail: s("detail"), Since: t("since"), ProbeAt: t("probeAt")}
}

// Trip records a pause unless the scope is paused already.
func (t *PauseTable) Trip(ctx context.Context, p Pause) error {
	item := pauseKey(p.Scope)
	item[pauseState] = str(statePaused)
	item["reason"], item["detail"], item["since"] = str(p.Reason), str(p.Detail), millis(p.Since)
	if p.Probes() {
		item["probeAt"] = millis(p.ProbeAt)
	}
	_, err := t.API.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.Name), Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(sk) OR #state <> :paused"),
		ExpressionAttributeNames:  map[string]string{"#state": pauseState},
		ExpressionAttributeValues: map[string]types.AttributeValue{":paused": str(statePaused)}})
	var taken *types.ConditionalCheckFailedException
	if errors.As(err, &taken) {
		return nil // paused already: its first record stays
	}
	return err
}

// ClaimProbe moves the scope's next probe time, if it is still probeAt.
func (t *PauseTable) ClaimProbe(ctx context.Context, scope string, probeAt, next time.Time) (bool, error) {
	_, err := t.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(t.Name), Key: pauseKey(scope),
		UpdateExpression:          aws.String("SET probeAt = :next"),
		ConditionExpression:       aws.String("#state = :paused AND probeAt = :at"),
		ExpressionAttributeNames:  map[string]string{"#state": pauseState},
		ExpressionAttributeValues: map[string]types.AttributeValue{":paused": str(statePaused), ":at": millis(probeAt), ":next": millis(next)}})
	var lost *types.ConditionalCheckFailedException
	if errors.As(err, &lost) {
		return false, nil
	}
	return err == nil, err
}

// Resume marks a scope resumed (s3rekey resume, a successful probe).
func (t *PauseTable) Resume(ctx context.Context, scope string) error {
	now := t.now()
	_, err := t.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(t.Name), Key: pauseKey(scope),
		UpdateExpression:         aws.String("SET #state = :resumed, resumedAt = :now, expires = :expires"),
		ExpressionAttributeNames: map[string]string{"#state": pauseState},
		ExpressionAttributeValues: map[string]types.AttributeValue{":resumed": str(stateResumed), ":now": millis(now),
			":expires": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(resumedKept).Unix(), 10)}}})
	return err
}
