// Package dynamodb emulates the Amazon DynamoDB API (AWS JSON 1.0) for the
// features s3rekey's job records use: tables with a partition key and an
// optional sort key, PutItem, GetItem, UpdateItem, DeleteItem, Query and
// TransactWriteItems, with condition, key-condition, filter and update
// expressions, their placeholders (every one given must be used), and
// DynamoDB's errors (ConditionalCheckFailedException,
// TransactionCanceledException with its cancellation reasons,
// ValidationException, ResourceNotFoundException). Reads are always
// consistent: one process holds every item, so an eventually consistent
// read is simply never stale. Capacity is billed as on-demand tables bill
// it (Developer Guide, "Read/write capacity mode"): 1 write unit per KB
// written, 1 read unit per 4 KB read strongly (half eventually), twice
// both in transactions.
package dynamodb

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// TargetPrefix is the X-Amz-Target prefix of DynamoDB's operations.
const TargetPrefix = "DynamoDB_20120810."

// ErrorCodes: DynamoDB has no query protocol.
var ErrorCodes = core.QueryErrorCodes{}

// Service is the emulated DynamoDB of one account and region.
type Service struct {
	account, region string
	// Authorize answers the per-item permission questions of
	// TransactWriteItems (dynamodb:PutItem, UpdateItem, DeleteItem,
	// ConditionCheckItem on the table); nil allows everything.
	Authorize func(r *http.Request, action, resource string) bool
	// Consume receives the capacity every request consumed, in read and
	// write request units; nil drops it.
	Consume func(readUnits, writeUnits float64)

	mu     sync.Mutex
	tables map[string]*table
}

type table struct {
	name, arn         string
	hashKey, rangeKey string
	keyTypes          map[string]string // attribute name → S, N or B
	created           time.Time
	billing           string
	ttlAttribute      string
	items             map[string]map[string]Item // partition → sort key → item
}

// New returns an empty DynamoDB.
func New(account, region string) *Service {
	return &Service{account: account, region: region, tables: map[string]*table{}}
}

// TableARN is the ARN of a table of this account and region.
func (s *Service) TableARN(name string) string {
	return "arn:aws:dynamodb:" + s.region + ":" + s.account + ":table/" + name
}

func notFound(name string) *core.Error {
	return core.Errorf(http.StatusBadRequest, "ResourceNotFoundException", "Requested resource not found: Table: "+name+" not found")
}

// namedTable is the table a request that names nothing else names.
func (s *Service) namedTable(body []byte) (*table, *core.Error) {
	var in struct{ TableName string }
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	return s.table(in.TableName)
}

func (s *Service) table(name string) (*table, *core.Error) {
	if name == "" {
		return nil, validation("1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")
	}
	t, ok := s.tables[name]
	if !ok {
		return nil, notFound(name)
	}
	return t, nil
}

// Dispatch serves one operation.
func (s *Service) Dispatch(r *http.Request, op string, body []byte) (any, *core.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "CreateTable":
		return s.createTable(body)
	case "DescribeTable":
		return s.describeTable(body)
	case "DeleteTable":
		return s.deleteTable(body)
	case "ListTables":
		names := make([]string, 0, len(s.tables))
		for n := range s.tables {
			names = append(names, n)
		}
		slices.Sort(names)
		return map[string]any{"TableNames": names}, nil
	case "UpdateTimeToLive":
		return s.updateTTL(body)
	case "DescribeTimeToLive":
		return s.describeTTL(body)
	case "PutItem":
		return s.putItem(body)
	case "GetItem":
		return s.getItem(body)
	case "UpdateItem":
		return s.updateItem(body)
	case "DeleteItem":
		return s.deleteItem(body)
	case "Query":
		return s.query(body)
	case "TransactWriteItems":
		return s.transactWrite(r, body)
	}
	return nil, core.Errorf(http.StatusBadRequest, "UnknownOperationException", "unknown operation "+op)
}

// Permission is the IAM action and resource of a request. For
// TransactWriteItems there is no action of its own: each item is checked
// against its underlying action inside the operation (Developer Guide,
// "Using IAM with DynamoDB transactions"), so it answers "".
func (s *Service) Permission(op string, body []byte) (action, resource string, context map[string][]string) {
	if op == "TransactWriteItems" {
		return "", "", nil
	}
	var in struct{ TableName string }
	_ = core.DecodeJSON(body, &in)
	if in.TableName == "" {
		return "dynamodb:" + op, "arn:aws:dynamodb:" + s.region + ":" + s.account + ":table/*", nil
	}
	return "dynamodb:" + op, s.TableARN(in.TableName), nil
}

type keySchemaElement struct{ AttributeName, KeyType string }
type attributeDefinition struct{ AttributeName, AttributeType string }

func (s *Service) createTable(body []byte) (any, *core.Error) {
	var in struct {
		TableName            string
		KeySchema            []keySchemaElement
		AttributeDefinitions []attributeDefinition
		BillingMode          string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	if in.TableName == "" || len(in.TableName) < 3 || len(in.TableName) > 255 {
		return nil, validation("TableName must be at least 3 characters long and at most 255 characters long")
	}
	if _, ok := s.tables[in.TableName]; ok {
		return nil, core.Errorf(http.StatusBadRequest, "ResourceInUseException", "Table already exists: "+in.TableName)
	}
	t := &table{name: in.TableName, arn: s.TableARN(in.TableName), keyTypes: map[string]string{}, created: time.Now().UTC(),
		billing: in.BillingMode, items: map[string]map[string]Item{}}
	if t.billing == "" {
		t.billing = "PROVISIONED"
	}
	defs := map[string]string{}
	for _, d := range in.AttributeDefinitions {
		if d.AttributeType != "S" && d.AttributeType != "N" && d.AttributeType != "B" {
			return nil, validation("Member must satisfy enum value set: [B, N, S]")
		}
		defs[d.AttributeName] = d.AttributeType
	}
	for _, k := range in.KeySchema {
		typ, ok := defs[k.AttributeName]
		if !ok {
			return nil, validation("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions")
		}
		switch {
		case k.KeyType == "HASH" && t.hashKey == "":
			t.hashKey = k.AttributeName
		case k.KeyType == "RANGE" && t.rangeKey == "":
			t.rangeKey = k.AttributeName
		default:
			return nil, validation("Invalid KeySchema: " + k.KeyType)
		}
		t.keyTypes[k.AttributeName] = typ
	}
	if t.hashKey == "" {
		return nil, validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
	}
	if len(defs) != len(in.KeySchema) {
		return nil, validation("One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions")
	}
	s.tables[t.name] = t
	return map[string]any{"TableDescription": s.description(t)}, nil
}

func (s *Service) description(t *table) map[string]any {
	schema := []keySchemaElement{{t.hashKey, "HASH"}}
	defs := []attributeDefinition{{t.hashKey, t.keyTypes[t.hashKey]}}
	if t.rangeKey != "" {
		schema = append(schema, keySchemaElement{t.rangeKey, "RANGE"})
		defs = append(defs, attributeDefinition{t.rangeKey, t.keyTypes[t.rangeKey]})
	}
	n := 0
	for _, p := range t.items {
		n += len(p)
	}
	return map[string]any{"TableName": t.name, "TableArn": t.arn, "TableStatus": "ACTIVE", "KeySchema": schema, "AttributeDefinitions": defs,
		"CreationDateTime": float64(t.created.UnixMilli()) / 1000, "ItemCount": n, "BillingModeSummary": map[string]string{"BillingMode": t.billing}}
}

func (s *Service) describeTable(body []byte) (any, *core.Error) {
	t, err := s.namedTable(body)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Table": s.description(t)}, nil
}

func (s *Service) deleteTable(body []byte) (any, *core.Error) {
	t, err := s.namedTable(body)
	if err != nil {
		return nil, err
	}
	delete(s.tables, t.name)
	d := s.description(t)
	d["TableStatus"] = "DELETING"
	return map[string]any{"TableDescription": d}, nil
}

func (s *Service) updateTTL(body []byte) (any, *core.Error) {
	var in struct {
		TableName               string
		TimeToLiveSpecification struct {
			AttributeName string
			Enabled       bool
		}
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	t, err := s.table(in.TableName)
	if err != nil {
		return nil, err
	}
	spec := in.TimeToLiveSpecification
	if spec.AttributeName == "" {
		return nil, validation("TimeToLiveSpecification.AttributeName must be given")
	}
	t.ttlAttribute = ""
	if spec.Enabled {
		t.ttlAttribute = spec.AttributeName
	}
	return map[string]any{"TimeToLiveSpecification": spec}, nil
}

func (s *Service) describeTTL(body []byte) (any, *core.Error) {
	t, err := s.namedTable(body)
	if err != nil {
		return nil, err
	}
	if t.ttlAttribute == "" {
		return map[string]any{"TimeToLiveDescription": map[string]string{"TimeToLiveStatus": "DISABLED"}}, nil
	}
	return map[string]any{"TimeToLiveDescription": map[string]string{"TimeToLiveStatus": "ENABLED", "AttributeName": t.ttlAttribute}}, nil
}

// keyString renders a key value as a map key that keeps equal numbers
// equal.
func keyString(v *Value) string {
	switch v.kind() {
	case "N":
		n, _ := parseNumber(*v.N)
		return "N" + formatNumber(n)
	case "S":
		return "S" + *v.S
	case "B":
		return "B" + string(v.B)
	}
	return ""
}

// key checks that it holds exactly the table's key attributes (withOthers:
// an item, which may hold more) and returns its partition and sort keys.
func (t *table) key(it Item, withOthers bool) (pk, sk string, err *core.Error) {
	if it == nil {
		return "", "", validation("The provided key element does not match the schema")
	}
	names := []string{t.hashKey}
	if t.rangeKey != "" {
		names = append(names, t.rangeKey)
	}
	for _, n := range names {
		v := it[n]
		if v == nil {
			if withOthers {
				return "", "", validation("One or more parameter values were invalid: Missing the key " + n + " in the item")
			}
			return "", "", validation("The provided key element does not match the schema")
		}
		if v.kind() != t.keyTypes[n] {
			return "", "", validation("One or more parameter values were invalid: Type mismatch for key " + n + " expected: " + t.keyTypes[n] + " actual: " + v.kind())
		}
		if (v.S != nil && *v.S == "") || (v.B != nil && len(v.B) == 0) {
			return "", "", validation("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: " + n)
		}
	}
	if !withOthers && len(it) != len(names) {
		return "", "", validation("The provided key element does not match the schema")
	}
	pk = keyString(it[t.hashKey])
	if t.rangeKey != "" {
		sk = keyString(it[t.rangeKey])
	}
	return pk, sk, nil
}

func (t *table) get(pk, sk string) Item { return t.items[pk][sk] }

func (t *table) put(pk, sk string, it Item) {
	if t.items[pk] == nil {
		t.items[pk] = map[string]Item{}
	}
	t.items[pk][sk] = it
}

func (t *table) remove(pk, sk string) {
	delete(t.items[pk], sk)
	if len(t.items[pk]) == 0 {
		delete(t.items, pk)
	}
}

// writeUnits bills a write of an item of size bytes: 1 unit per KB.
func writeUnits(size int) float64 { return math.Max(1, math.Ceil(float64(size)/1024)) }

// readUnits bills a read of size bytes: 1 unit per 4 KB strongly
// consistent, half of that eventually consistent.
func readUnits(size int, consistent bool) float64 {
	u := math.Max(1, math.Ceil(float64(size)/4096))
	if !consistent {
		u /= 2
	}
	return u
}

func (s *Service) consume(read, write float64) {
	if s.Consume != nil {
		s.Consume(read, write)
	}
}

func consumed(mode, tableName string, read, write float64) map[string]any {
	if mode != "TOTAL" && mode != "INDEXES" {
		return nil
	}
	c := map[string]any{"TableName": tableName, "CapacityUnits": read + write}
	if read > 0 {
		c["ReadCapacityUnits"] = read
	}
	if write > 0 {
		c["WriteCapacityUnits"] = write
	}
	return c
}

// expressions holds a request's expression inputs, parsed together so
// that every placeholder is checked for use across all of them.
type expressions struct {
	ExpressionAttributeNames  map[string]string
	ExpressionAttributeValues map[string]*Value
	ConditionExpression       string
}

func (e expressions) context() (*exprContext, *core.Error) {
	return newExprContext(e.ExpressionAttributeNames, e.ExpressionAttributeValues)
}

// condition parses ConditionExpression ("" is always true).
func (e expressions) condition(ctx *exprContext) (cond, *core.Error) {
	if e.ConditionExpression == "" {
		return nil, nil
	}
	return parseCondition(e.ConditionExpression, ctx)
}

func conditionFailed() *core.Error {
	return core.Errorf(http.StatusBadRequest, "ConditionalCheckFailedException", "The conditional request failed")
}

func checkItem(it Item) *core.Error {
	for _, v := range it {
		if err := v.check(); err != nil {
			return err
		}
	}
	if it.size() > 400*1024 {
		return validation("Item size has exceeded the maximum allowed size")
	}
	return nil
}

type putInput struct {
	expressions
	TableName                           string
	Item                                Item
	ReturnValues                        string
	ReturnConsumedCapacity              string
	ReturnValuesOnConditionCheckFailure string
}

// preparedWrite is one checked write, ready to apply.
type preparedWrite struct {
	t         *table
	pk, sk    string
	before    Item
	after     Item // nil deletes
	cond      cond
	size      int
	checkOnly bool
}

// prepareWrite reads what every item write shares: the table, the item's
// key (withOthers: keyed by a whole item), the condition, any further
// expression parse, and then the check that every placeholder was used.
func (s *Service) prepareWrite(tableName string, keyed Item, withOthers bool, e expressions, parse func(*exprContext) *core.Error) (*preparedWrite, *core.Error) {
	t, err := s.table(tableName)
	if err != nil {
		return nil, err
	}
	pk, sk, err := t.key(keyed, withOthers)
	if err != nil {
		return nil, err
	}
	ctx, err := e.context()
	if err != nil {
		return nil, err
	}
	c, err := e.condition(ctx)
	if err != nil {
		return nil, err
	}
	if parse != nil {
		if err := parse(ctx); err != nil {
			return nil, err
		}
	}
	if err := ctx.checkAllUsed(); err != nil {
		return nil, err
	}
	before := t.get(pk, sk)
	return &preparedWrite{t: t, pk: pk, sk: sk, before: before, cond: c, size: before.size()}, nil
}

func (s *Service) preparePut(in putInput) (*preparedWrite, *core.Error) {
	if err := checkItem(in.Item); err != nil {
		return nil, err
	}
	w, err := s.prepareWrite(in.TableName, in.Item, true, in.expressions, nil)
	if err != nil {
		return nil, err
	}
	w.after, w.size = in.Item.clone(), max(in.Item.size(), w.size)
	return w, nil
}

// write runs one checked write outside a transaction: billed whether or
// not its condition holds, applied only when it does. A failed condition
// returns the item as it was when onFailure is ALL_OLD
// (ReturnValuesOnConditionCheckFailure).
func (s *Service) write(w *preparedWrite, tableName, capacityMode, onFailure string) (map[string]any, *core.Error) {
	units := writeUnits(w.size)
	s.consume(0, units)
	if !w.conditionHolds() {
		e := conditionFailed()
		if onFailure == "ALL_OLD" && w.before != nil {
			e.Fields = map[string]any{"Item": w.before}
		}
		return nil, e
	}
	w.apply()
	out := map[string]any{}
	if c := consumed(capacityMode, tableName, 0, units); c != nil {
		out["ConsumedCapacity"] = c
	}
	return out, nil
}

func (w *preparedWrite) conditionHolds() bool { return w.cond == nil || w.cond.eval(w.before) }

func (w *preparedWrite) apply() {
	switch {
	case w.checkOnly:
	case w.after == nil:
		w.t.remove(w.pk, w.sk)
	default:
		w.t.put(w.pk, w.sk, w.after)
	}
}

func (s *Service) putItem(body []byte) (any, *core.Error) {
	var in putInput
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	if in.ReturnValues != "" && in.ReturnValues != "NONE" && in.ReturnValues != "ALL_OLD" {
		return nil, validation("Return values set to invalid value")
	}
	w, err := s.preparePut(in)
	if err != nil {
		return nil, err
	}
	out, err := s.write(w, in.TableName, in.ReturnConsumedCapacity, in.ReturnValuesOnConditionCheckFailure)
	if err == nil && in.ReturnValues == "ALL_OLD" && w.before != nil {
		out["Attributes"] = w.before
	}
	return out, err
}

type keyInput struct {
	expressions
	TableName                           string
	Key                                 Item
	ConsistentRead                      bool
	ProjectionExpression                string
	ReturnValues                        string
	ReturnConsumedCapacity              string
	ReturnValuesOnConditionCheckFailure string
}

func (s *Service) getItem(body []byte) (any, *core.Error) {
	var in keyInput
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	t, err := s.table(in.TableName)
	if err != nil {
		return nil, err
	}
	pk, sk, err := t.key(in.Key, false)
	if err != nil {
		return nil, err
	}
	ctx, err := in.context()
	if err != nil {
		return nil, err
	}
	proj, err := parseProjection(in.ProjectionExpression, ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.checkAllUsed(); err != nil {
		return nil, err
	}
	it := t.get(pk, sk)
	units := readUnits(it.size(), in.ConsistentRead)
	s.consume(units, 0)
	out := map[string]any{}
	if it != nil {
		out["Item"] = project(it, proj)
	}
	if c := consumed(in.ReturnConsumedCapacity, in.TableName, units, 0); c != nil {
		out["ConsumedCapacity"] = c
	}
	return out, nil
}

// parseProjection reads a ProjectionExpression of top-level attributes.
func parseProjection(src string, ctx *exprContext) ([]string, *core.Error) {
	if src == "" {
		return nil, nil
	}
	p, err := newParser(src, ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for {
		pth, err := p.parsePath()
		if err != nil {
			return nil, err
		}
		if len(pth) != 1 {
			return nil, validation("the emulator projects top-level attributes only")
		}
		names = append(names, pth[0].name)
		if p.peek().kind != "," {
			break
		}
		p.next()
	}
	return names, p.done()
}

func project(it Item, names []string) Item {
	if names == nil {
		return it
	}
	out := Item{}
	for _, n := range names {
		if v, ok := it[n]; ok {
			out[n] = v
		}
	}
	return out
}

type updateInput struct {
	keyInput
	UpdateExpression string
}

func (s *Service) prepareUpdate(in updateInput) (*preparedWrite, *core.Error) {
	if in.UpdateExpression == "" {
		return nil, validation("the emulator needs an UpdateExpression (AttributeUpdates is a legacy parameter)")
	}
	var actions []updateAction
	w, err := s.prepareWrite(in.TableName, in.Key, false, in.expressions, func(ctx *exprContext) *core.Error {
		var err *core.Error
		actions, err = parseUpdate(in.UpdateExpression, ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, a := range actions {
		if a.path[0].name == w.t.hashKey || a.path[0].name == w.t.rangeKey {
			return nil, validation("One or more parameter values were invalid: Cannot update attribute " + a.path[0].name + ". This attribute is part of the key")
		}
	}
	if !w.conditionHolds() {
		return w, nil
	}
	after, err := applyUpdate(actions, w.before)
	if err != nil {
		return nil, err
	}
	for k, v := range in.Key {
		after[k] = v.clone()
	}
	if err := checkItem(after); err != nil {
		return nil, err
	}
	w.after, w.size = after, max(w.size, after.size())
	return w, nil
}

func (s *Service) updateItem(body []byte) (any, *core.Error) {
	var in updateInput
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	switch in.ReturnValues {
	case "", "NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW":
	default:
		return nil, validation("Return values set to invalid value")
	}
	w, err := s.prepareUpdate(in)
	if err != nil {
		return nil, err
	}
	out, err := s.write(w, in.TableName, in.ReturnConsumedCapacity, in.ReturnValuesOnConditionCheckFailure)
	if err != nil {
		return nil, err
	}
	switch in.ReturnValues {
	case "ALL_OLD":
		if w.before != nil {
			out["Attributes"] = w.before
		}
	case "ALL_NEW":
		out["Attributes"] = w.after
	case "UPDATED_OLD", "UPDATED_NEW":
		src := w.after
		if in.ReturnValues == "UPDATED_OLD" {
			src = w.before
		}
		changed := Item{}
		for k := range w.after {
			if !equal(w.after[k], w.before[k]) && src[k] != nil {
				changed[k] = src[k]
			}
		}
		for k := range w.before {
			if w.after[k] == nil && src[k] != nil {
				changed[k] = src[k]
			}
		}
		out["Attributes"] = changed
	}
	return out, nil
}

func (s *Service) prepareDelete(in keyInput) (*preparedWrite, *core.Error) {
	return s.prepareWrite(in.TableName, in.Key, false, in.expressions, nil)
}

func (s *Service) deleteItem(body []byte) (any, *core.Error) {
	var in keyInput
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	w, err := s.prepareDelete(in)
	if err != nil {
		return nil, err
	}
	out, err := s.write(w, in.TableName, in.ReturnConsumedCapacity, in.ReturnValuesOnConditionCheckFailure)
	if err == nil && in.ReturnValues == "ALL_OLD" && w.before != nil {
		out["Attributes"] = w.before
	}
	return out, err
}

func (s *Service) query(body []byte) (any, *core.Error) {
	var in struct {
		expressions
		TableName              string
		KeyConditionExpression string
		FilterExpression       string
		ProjectionExpression   string
		ConsistentRead         bool
		ScanIndexForward       *bool
		Limit                  int
		ExclusiveStartKey      Item
		ReturnConsumedCapacity string
		Select                 string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	t, err := s.table(in.TableName)
	if err != nil {
		return nil, err
	}
	if in.KeyConditionExpression == "" {
		return nil, validation("Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.")
	}
	if in.ConditionExpression != "" {
		return nil, validation("ConditionExpression is not a parameter of Query")
	}
	ctx, err := in.context()
	if err != nil {
		return nil, err
	}
	kc, err := parseKeyCondition(in.KeyConditionExpression, ctx, t.hashKey, t.rangeKey)
	if err != nil {
		return nil, err
	}
	var filter cond
	if in.FilterExpression != "" {
		if filter, err = parseCondition(in.FilterExpression, ctx); err != nil {
			return nil, err
		}
	}
	proj, err := parseProjection(in.ProjectionExpression, ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.checkAllUsed(); err != nil {
		return nil, err
	}
	if in.Limit < 0 {
		return nil, validation("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1")
	}
	if kc.pk.kind() != t.keyTypes[t.hashKey] {
		return nil, validation("One or more parameter values were invalid: Condition parameter type does not match schema type")
	}
	part := t.items[keyString(kc.pk)]
	items := make([]Item, 0, len(part))
	for _, it := range part {
		if kc.sk == nil || kc.sk.eval(it) {
			items = append(items, it)
		}
	}
	slices.SortFunc(items, func(a, b Item) int {
		if t.rangeKey == "" {
			return 0
		}
		n, _ := compare(a[t.rangeKey], b[t.rangeKey])
		return n
	})
	if in.ScanIndexForward != nil && !*in.ScanIndexForward {
		slices.Reverse(items)
	}
	if in.ExclusiveStartKey != nil {
		_, startSK, err := t.key(in.ExclusiveStartKey, false)
		if err != nil {
			return nil, validation("The provided starting key is invalid: " + err.Message)
		}
		i := slices.IndexFunc(items, func(it Item) bool { return keyString(it[t.rangeKey]) == startSK })
		if t.rangeKey == "" || i < 0 {
			items = nil
		} else {
			items = items[i+1:]
		}
	}
	// A page ends at Limit items evaluated or 1 MB read (before the filter).
	var page []Item
	readBytes, more := 0, false
	for i, it := range items {
		if (in.Limit > 0 && i == in.Limit) || readBytes >= 1<<20 {
			more = true
			break
		}
		readBytes += it.size()
		page = append(page, it)
	}
	out := map[string]any{"ScannedCount": len(page)}
	var result []Item
	for _, it := range page {
		if filter == nil || filter.eval(it) {
			result = append(result, project(it, proj))
		}
	}
	out["Count"] = len(result)
	if in.Select != "COUNT" {
		if result == nil {
			result = []Item{}
		}
		out["Items"] = result
	}
	if more && len(page) > 0 {
		last := page[len(page)-1]
		lek := Item{t.hashKey: last[t.hashKey]}
		if t.rangeKey != "" {
			lek[t.rangeKey] = last[t.rangeKey]
		}
		out["LastEvaluatedKey"] = lek
	}
	units := readUnits(readBytes, in.ConsistentRead)
	s.consume(units, 0)
	if c := consumed(in.ReturnConsumedCapacity, in.TableName, units, 0); c != nil {
		out["ConsumedCapacity"] = c
	}
	return out, nil
}

// cancellationReason is one entry of TransactionCanceledException's
// CancellationReasons, in the order of the request's items.
type cancellationReason struct {
	Code    string
	Message string `json:",omitempty"`
	Item    Item   `json:",omitempty"`
}

func (s *Service) transactWrite(r *http.Request, body []byte) (any, *core.Error) {
	var in struct {
		TransactItems []struct {
			Put            *putInput
			Update         *updateInput
			Delete         *keyInput
			ConditionCheck *keyInput
		}
		ReturnConsumedCapacity string
		ClientRequestToken     string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	if n := len(in.TransactItems); n == 0 || n > 100 {
		return nil, validation(fmt.Sprintf("1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100 and greater than or equal to 1 (got %d)", n))
	}
	writes := make([]*preparedWrite, len(in.TransactItems))
	failOnCheck := make([]bool, len(in.TransactItems))
	seen := map[string]bool{}
	total := 0
	for i, ti := range in.TransactItems {
		var w *preparedWrite
		var err *core.Error
		var action, tableName string
		switch {
		case ti.Put != nil:
			action, tableName = "dynamodb:PutItem", ti.Put.TableName
			w, err = s.preparePut(*ti.Put)
			failOnCheck[i] = ti.Put.ReturnValuesOnConditionCheckFailure == "ALL_OLD"
		case ti.Update != nil:
			action, tableName = "dynamodb:UpdateItem", ti.Update.TableName
			w, err = s.prepareUpdate(*ti.Update)
			failOnCheck[i] = ti.Update.ReturnValuesOnConditionCheckFailure == "ALL_OLD"
		case ti.Delete != nil:
			action, tableName = "dynamodb:DeleteItem", ti.Delete.TableName
			w, err = s.prepareDelete(*ti.Delete)
			failOnCheck[i] = ti.Delete.ReturnValuesOnConditionCheckFailure == "ALL_OLD"
		case ti.ConditionCheck != nil:
			action, tableName = "dynamodb:ConditionCheckItem", ti.ConditionCheck.TableName
			if ti.ConditionCheck.ConditionExpression == "" {
				return nil, validation("The ConditionCheck item has no ConditionExpression")
			}
			if w, err = s.prepareDelete(*ti.ConditionCheck); err == nil {
				w.checkOnly = true
			}
			failOnCheck[i] = ti.ConditionCheck.ReturnValuesOnConditionCheckFailure == "ALL_OLD"
		default:
			return nil, validation("TransactItems can only contain one of Check, Put, Update or Delete")
		}
		if err != nil {
			return nil, err
		}
		if s.Authorize != nil && !s.Authorize(r, action, s.TableARN(tableName)) {
			scope, _ := core.ParseSigV4(r)
			return nil, core.Errorf(http.StatusBadRequest, "AccessDeniedException", "User: "+scope.AccessKey+" is not authorized to perform: "+action+
				" on resource: "+s.TableARN(tableName)+" because no identity-based policy allows the "+action+" action")
		}
		id := w.t.name + "\x00" + w.pk + "\x00" + w.sk
		if seen[id] {
			return nil, validation("Transaction request cannot include multiple operations on one item")
		}
		seen[id] = true
		writes[i] = w
		total += w.size
	}
	if total > 4<<20 {
		return nil, validation("Transaction size has exceeded the maximum allowed size of 4 MB")
	}
	// Transactional writes cost two units per KB (Developer Guide,
	// "Capacity management for transactions"), whether they commit or not.
	units := 0.0
	for _, w := range writes {
		units += 2 * writeUnits(w.size)
	}
	s.consume(0, units)
	reasons := make([]cancellationReason, len(writes))
	cancelled := false
	for i, w := range writes {
		reasons[i] = cancellationReason{Code: "None"}
		if !w.conditionHolds() {
			cancelled = true
			reasons[i] = cancellationReason{Code: "ConditionalCheckFailed", Message: "The conditional request failed"}
			if failOnCheck[i] && w.before != nil {
				reasons[i].Item = w.before
			}
		}
	}
	if cancelled {
		codes := make([]string, len(reasons))
		for i, r := range reasons {
			codes[i] = r.Code
		}
		e := core.Errorf(http.StatusBadRequest, "TransactionCanceledException",
			"Transaction cancelled, please refer cancellation reasons for specific reasons ["+strings.Join(codes, ", ")+"]")
		e.Fields = map[string]any{"CancellationReasons": reasons}
		return nil, e
	}
	for _, w := range writes {
		w.apply()
	}
	out := map[string]any{}
	if in.ReturnConsumedCapacity == "TOTAL" || in.ReturnConsumedCapacity == "INDEXES" {
		out["ConsumedCapacity"] = []any{map[string]any{"CapacityUnits": units, "WriteCapacityUnits": units}}
	}
	return out, nil
}
