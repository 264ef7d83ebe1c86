package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// The semantics below are DynamoDB's as the API reference states them
// (API_PutItem, API_UpdateItem, API_Query, API_TransactWriteItems) and the
// Developer Guide's "Expressions" chapter; the SDK is the client.

func newTable(t *testing.T, e *env) *dynamodb.Client {
	t.Helper()
	db := dynamodb.NewFromConfig(e.cfg)
	_, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{TableName: aws.String("jobs"), BillingMode: types.BillingModePayPerRequest,
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS}}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func TestDynamoDBConditionalWritesAndUpdates(t *testing.T) {
	e := start(t, emulator.Options{})
	db := newTable(t, e)
	ctx := context.Background()
	key := map[string]types.AttributeValue{"pk": s("job#1"), "sk": s("meta")}

	put := func() error {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("jobs"), Item: map[string]types.AttributeValue{"pk": s("job#1"), "sk": s("meta"), "n": n("1")},
			ConditionExpression: aws.String("attribute_not_exists(sk)")})
		return err
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	var ccf *types.ConditionalCheckFailedException
	if err := put(); !errors.As(err, &ccf) {
		t.Fatalf("second conditional put: %v, want ConditionalCheckFailedException", err)
	}

	// ADD makes and increments numbers; if_not_exists keeps the first value;
	// #names and :values resolve, and reserved words need a placeholder.
	out, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("jobs"), Key: key,
		UpdateExpression:          aws.String("SET #st = if_not_exists(#st, :s), created = if_not_exists(created, :c) ADD n :one, #o :two"),
		ExpressionAttributeNames:  map[string]string{"#st": "state", "#o": "outcome:skipped: sse-c"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": s("planning"), ":c": n("100"), ":one": n("1"), ":two": n("2")},
		ReturnValues:              types.ReturnValueAllNew})
	if err != nil {
		t.Fatal(err)
	}
	got := out.Attributes
	if got["n"].(*types.AttributeValueMemberN).Value != "2" || got["state"].(*types.AttributeValueMemberS).Value != "planning" ||
		got["outcome:skipped: sse-c"].(*types.AttributeValueMemberN).Value != "2" {
		t.Fatalf("after update: %#v", got)
	}
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("jobs"), Key: key,
		UpdateExpression: aws.String("SET state = :s"), ExpressionAttributeValues: map[string]types.AttributeValue{":s": s("x")}})
	if code := apiCode(err); code != "ValidationException" {
		t.Fatalf("reserved word as a bare name: %v, want ValidationException", err)
	}
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("jobs"), Key: key, UpdateExpression: aws.String("ADD n :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": n("1"), ":unused": n("1")}})
	if code := apiCode(err); code != "ValidationException" {
		t.Fatalf("unused placeholder: %v, want ValidationException", err)
	}
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("jobs"), Key: key, UpdateExpression: aws.String("SET m.x = :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": n("1")}})
	if code := apiCode(err); code != "ValidationException" {
		t.Fatalf("set below a missing map: %v, want ValidationException", err)
	}
	// A failed condition changes nothing.
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("jobs"), Key: key, UpdateExpression: aws.String("ADD n :one"),
		ConditionExpression: aws.String("n > :ten"), ExpressionAttributeValues: map[string]types.AttributeValue{":one": n("1"), ":ten": n("10")}})
	if !errors.As(err, &ccf) {
		t.Fatalf("update under a false condition: %v", err)
	}
	item, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("jobs"), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil || item.Item["n"].(*types.AttributeValueMemberN).Value != "2" {
		t.Fatalf("get after a refused update: %v %v", item, err)
	}
	_, err = db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("missing"), Key: key})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Fatalf("missing table: %v", err)
	}
}

func TestDynamoDBTransactionsAreAllOrNothing(t *testing.T) {
	e := start(t, emulator.Options{})
	db := newTable(t, e)
	ctx := context.Background()
	record := func(id string) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{TableName: aws.String("jobs"), Item: map[string]types.AttributeValue{"pk": s("job#1"), "sk": s("msg#" + id)},
			ConditionExpression: aws.String("attribute_not_exists(sk)")}}
	}
	counter := types.TransactWriteItem{Update: &types.Update{TableName: aws.String("jobs"), Key: map[string]types.AttributeValue{"pk": s("job#1"), "sk": s("counter#0")},
		UpdateExpression: aws.String("ADD done :n"), ExpressionAttributeValues: map[string]types.AttributeValue{":n": n("10")}}}
	if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{record("a"), counter}}); err != nil {
		t.Fatal(err)
	}
	_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{record("b"), record("a"), counter}})
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		t.Fatalf("transaction with a duplicate: %v", err)
	}
	var codes []string
	for _, r := range tce.CancellationReasons {
		codes = append(codes, aws.ToString(r.Code))
	}
	if fmt.Sprint(codes) != "[None ConditionalCheckFailed None]" {
		t.Fatalf("cancellation reasons %v", codes)
	}
	q, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("jobs"), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s("job#1"), ":p": s("msg#")}})
	if err != nil || q.Count != 1 {
		t.Fatalf("records after a cancelled transaction: %d %v (want only a)", q.Count, err)
	}
	c, _ := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("jobs"), Key: map[string]types.AttributeValue{"pk": s("job#1"), "sk": s("counter#0")}})
	if c.Item["done"].(*types.AttributeValueMemberN).Value != "10" {
		t.Fatalf("counter after a cancelled transaction: %v", c.Item["done"])
	}
	_, err = db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{record("c"), record("c")}})
	if code := apiCode(err); code != "ValidationException" {
		t.Fatalf("two actions on one item: %v, want ValidationException", err)
	}
}

func TestDynamoDBConcurrentAddsAreExact(t *testing.T) {
	e := start(t, emulator.Options{})
	db := newTable(t, e)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("jobs"), Key: map[string]types.AttributeValue{"pk": s("j"), "sk": s("c")},
					UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: map[string]types.AttributeValue{":one": n("1")}}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	c, _ := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("jobs"), Key: map[string]types.AttributeValue{"pk": s("j"), "sk": s("c")}})
	if c.Item["n"].(*types.AttributeValueMemberN).Value != "200" {
		t.Fatalf("200 concurrent ADDs gave %v", c.Item["n"])
	}
	// Capacity: 200 updates of a small item are 200 write units; the table's
	// creation is not billed.
	if w := e.emu.CapacityUnits().Write; w != 200 {
		t.Fatalf("write units %v, want 200", w)
	}
}

func TestDynamoDBQueryPagesInSortKeyOrder(t *testing.T) {
	e := start(t, emulator.Options{})
	db := newTable(t, e)
	ctx := context.Background()
	for i := range 25 {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("jobs"), Item: map[string]types.AttributeValue{"pk": s("p"), "sk": s(fmt.Sprintf("k%02d", 24-i))}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var start map[string]types.AttributeValue
	for pages := 0; ; pages++ {
		out, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("jobs"), KeyConditionExpression: aws.String("pk = :p AND sk BETWEEN :a AND :b"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("p"), ":a": s("k03"), ":b": s("k20")}, Limit: aws.Int32(5), ExclusiveStartKey: start})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			got = append(got, it["sk"].(*types.AttributeValueMemberS).Value)
		}
		if start = out.LastEvaluatedKey; start == nil {
			break
		}
		if pages > 10 {
			t.Fatal("query does not end")
		}
	}
	if len(got) != 18 || got[0] != "k03" || got[17] != "k20" {
		t.Fatalf("query pages: %v", got)
	}
}

func TestDynamoDBTransactionItemsNeedTheirOwnPermissions(t *testing.T) {
	e := start(t, emulator.Options{})
	newTable(t, e)
	arn := "arn:aws:dynamodb:" + e.emu.Region() + ":" + e.emu.Account() + ":table/jobs"
	if err := e.emu.BindPolicy("AKIAWRITER", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:PutItem"],"Resource":"`+arn+`"}]}`)); err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(e.emu.AWSConfigAs("AKIAWRITER"))
	ctx := context.Background()
	put := types.TransactWriteItem{Put: &types.Put{TableName: aws.String("jobs"), Item: map[string]types.AttributeValue{"pk": s("a"), "sk": s("b")}}}
	if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{put}}); err != nil {
		t.Fatalf("a put with dynamodb:PutItem: %v", err)
	}
	check := types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String("jobs"), Key: map[string]types.AttributeValue{"pk": s("a"), "sk": s("b")},
		ConditionExpression: aws.String("attribute_exists(sk)")}}
	if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{check}}); apiCode(err) != "AccessDeniedException" {
		t.Fatalf("a condition check without dynamodb:ConditionCheckItem: %v", err)
	}
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("jobs"), Key: map[string]types.AttributeValue{"pk": s("a"), "sk": s("b")}}); apiCode(err) != "AccessDeniedException" {
		t.Fatalf("GetItem without dynamodb:GetItem: %v", err)
	}
}
