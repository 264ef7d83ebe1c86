package budget

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// PutItemAPI writes a heartbeat.
type PutItemAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// QueryAPI reads the heartbeats.
type QueryAPI interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var (
	_ PutItemAPI = (*dynamodb.Client)(nil)
	_ QueryAPI   = (*dynamodb.Client)(nil)
)

// Table keeps the heartbeats in the jobs table, one item per member under
// the partition "budget" (job records never use it), expired by the
// table's TTL a day later.
type Table struct {
	Put   PutItemAPI
	Query QueryAPI
	Name  string
}

// The heartbeat items' attributes; pk, sk and expires are the jobs table's.
const (
	partition    = "budget"
	memberPrefix = "member#"
	attrScopes   = "scopes"
	attrUntil    = "until"
	attrAhead    = "ahead"
)

// Beat puts the member's item and counts the current items per scope, and
// adds up their rates ahead. The read is strongly consistent, so a member
// counts every heartbeat written before it.
func (t *Table) Beat(ctx context.Context, member string, scopes []string, ahead map[string]float64, until, now time.Time) (map[string]int, map[string]float64, error) {
	list := make([]types.AttributeValue, len(scopes))
	for i, s := range scopes {
		list[i] = &types.AttributeValueMemberS{Value: s}
	}
	rates := map[string]types.AttributeValue{}
	for scope, r := range ahead {
		rates[scope] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(r, 'g', -1, 64)}
	}
	_, err := t.Put.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.Name), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: partition}, "sk": &types.AttributeValueMemberS{Value: memberPrefix + member},
		attrScopes: &types.AttributeValueMemberL{Value: list},
		attrAhead:  &types.AttributeValueMemberM{Value: rates},
		attrUntil:  number(until.UnixMilli()),
		"expires":  number(until.Add(24 * time.Hour).Unix()),
	}})
	if err != nil {
		return nil, nil, err
	}
	counts, sums := map[string]int{}, map[string]float64{}
	var start map[string]types.AttributeValue
	for {
		out, err := t.Query.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(t.Name), ConsistentRead: aws.Bool(true),
			KeyConditionExpression:   aws.String("pk = :pk AND begins_with(sk, :member)"),
			FilterExpression:         aws.String("#until > :now"),
			ProjectionExpression:     aws.String(attrScopes + ", #ahead"),
			ExpressionAttributeNames: map[string]string{"#until": attrUntil, "#ahead": attrAhead},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: partition},
				":member": &types.AttributeValueMemberS{Value: memberPrefix}, ":now": number(now.UnixMilli())},
			ExclusiveStartKey: start})
		if err != nil {
			return nil, nil, err
		}
		for _, item := range out.Items {
			if m, ok := item[attrAhead].(*types.AttributeValueMemberM); ok {
				for scope, v := range m.Value {
					if n, ok := v.(*types.AttributeValueMemberN); ok {
						r, _ := strconv.ParseFloat(n.Value, 64) // written by Beat: a number
						sums[scope] += r
					}
				}
			}
			l, _ := item[attrScopes].(*types.AttributeValueMemberL)
			if l == nil {
				continue
			}
			for _, v := range l.Value {
				if s, ok := v.(*types.AttributeValueMemberS); ok {
					counts[s.Value]++
				}
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return counts, sums, nil
		}
		start = out.LastEvaluatedKey
	}
}

func number(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
