package emulator_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// Every word of the DynamoDB reserved-word list (developer guide,
// ReservedWords: "Don't use any of these words as attribute names in
// expressions. This list isn't case-sensitive") is refused as a bare
// attribute name, and accepted through a #name placeholder.
func TestDynamoDBReservedWords(t *testing.T) {
	e := start(t, emulator.Options{})
	db := newTable(t, e)
	ctx := context.Background()
	key := map[string]types.AttributeValue{"pk": s("job#1"), "sk": s("meta")}
	for w, isReserved := range map[string]bool{"UNTIL": true, "rows": true, "Total": true, "counter": true, "SHARD": true, "final": true,
		"status": true, "ttl": true, "zone": true, "abort": true, "parts": false, "progress": false} {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("jobs"), Key: key,
			UpdateExpression: aws.String("SET " + w + " = :v"), ExpressionAttributeValues: map[string]types.AttributeValue{":v": n("1")}})
		refused := apiCode(err) == "ValidationException" && strings.Contains(apiMessage(err), "reserved keyword")
		if refused != isReserved || (!isReserved && err != nil) {
			t.Errorf("bare %q: %v, want refused as a reserved keyword %v", w, err, isReserved)
		}
		if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("jobs"), Key: key,
			UpdateExpression: aws.String("SET #w = :v"), ExpressionAttributeNames: map[string]string{"#w": w},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": n("1")}}); err != nil {
			t.Errorf("%q through #w: %v", w, err)
		}
	}
}

// Numbers have up to 38 significant digits, magnitude 1E-130 to under
// 1E126 (developer guide, HowItWorks.NamingRulesDataTypes, Number).
func TestDynamoDBNumberPrecision(t *testing.T) {
	e := start(t, emulator.Options{})
	db := newTable(t, e)
	for num, ok := range map[string]bool{
		strings.Repeat("9", 38): true, strings.Repeat("9", 39): false, "1" + strings.Repeat("0", 38): true,
		"0.000" + strings.Repeat("1", 38): true, "1." + strings.Repeat("1", 38): false, "9.9999999999999999999999999999999999999E+125": true,
		"1E126": false, "1E-130": true, "1E-131": false, "-5": true, "1/2": false, "0x10": false,
	} {
		_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("jobs"),
			Item: map[string]types.AttributeValue{"pk": s("n"), "sk": s(num), "v": n(num)}})
		if (err == nil) != ok || (!ok && apiCode(err) != "ValidationException") {
			t.Errorf("number %s: %v, want accepted %v", num, err, ok)
		}
	}
}

// BETWEEN's bounds are lower then upper (API_Condition: "Greater than or
// equal to the first value, and less than or equal to the second value");
// DynamoDB refuses them reversed rather than match nothing.
func TestDynamoDBBetweenBounds(t *testing.T) {
	e := start(t, emulator.Options{})
	db := newTable(t, e)
	query := func(lo, hi string) error {
		_, err := db.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String("jobs"),
			KeyConditionExpression:    aws.String("pk = :p AND sk BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s("job#1"), ":lo": s(lo), ":hi": s(hi)}})
		return err
	}
	if err := query("a", "b"); err != nil {
		t.Errorf("BETWEEN a AND b: %v", err)
	}
	if err := query("b", "a"); apiCode(err) != "ValidationException" {
		t.Errorf("BETWEEN b AND a: %v, want ValidationException", err)
	}
}
