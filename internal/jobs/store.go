package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The DynamoDB calls the store makes.
type (
	UpdateItemAPI interface {
		UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	}
	PutItemAPI interface {
		PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	}
	QueryAPI interface {
		Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	}
	TransactWriteAPI interface {
		TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	}
	// DynamoDBAPI is all of them (dynamodb.Client in production).
	DynamoDBAPI interface {
		UpdateItemAPI
		PutItemAPI
		QueryAPI
		TransactWriteAPI
	}
)

var _ DynamoDBAPI = (*dynamodb.Client)(nil)

// Item keys: every item of a job shares its partition.
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrExpires   = "expires" // the table's TTL attribute
	skMeta        = "meta"
	skCountPrefix = "count#"
	skMsgPrefix   = "msg#"
	skRedrive     = "redrive#"
	skPinPrefix   = "pin#"
	// attrRecord holds a committed task's record (JSON, see record.go).
	attrRecord = "rec"
	// attrDigest and attrCounted, on a job's meta item, say which records
	// its written report lists; attrTerminalState and attrTerminalReason
	// hold a final state (failed, cancelled) and its reason.
	attrDigest         = "digest"
	attrCounted        = "counted"
	attrTerminalState  = "terminalState"
	attrTerminalReason = "terminalReason"
	// indexPK holds one item per job, sorted by creation time, for listing
	// recent jobs without a scan.
	indexPK = "index"
)

// Counter attributes of an uploads job; outcomes are outcomePrefix +
// "updated", ... A backfill job's counter items hold only cOpen.
const (
	cRows, cRowsExpected, cPlanned, cDone, cUnitsDone = "rows", "rowsExpected", "planned", "done", "unitsDone"
	cOpen                                             = "open"
	outcomePrefix                                     = "o:"
)

// DefaultRetention is how long job records live before the table's TTL
// removes them.
const DefaultRetention = 90 * 24 * time.Hour

// counterShards spreads a job's open-task counter over items, so that
// concurrent commits rarely meet on one item (a transaction that meets another on an
// item is cancelled with TransactionConflict and tried again).
const counterShards = 8

// Store reads and writes job records in one DynamoDB table.
type Store struct {
	API   DynamoDBAPI
	Table string
	// Retention is how long records live (default DefaultRetention).
	Retention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	keys keyring
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) expires() types.AttributeValue {
	r := s.Retention
	if r <= 0 {
		r = DefaultRetention
	}
	return num(s.now().Add(r).Unix())
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func jobPK(id string) types.AttributeValue { return str("job#" + id) }

func key(pk types.AttributeValue, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: pk, attrSK: str(sk)}
}

// Begin records a job (idempotently: a second delivery of the same
// manifest finds it) and returns its creation time, the clock its planning
// reads Object Lock dates by, so that every delivery plans alike.
func (s *Store) Begin(ctx context.Context, id, kind, source string, units int64, report string) (time.Time, error) {
	if !ValidID(id) {
		return time.Time{}, fmt.Errorf("job id %q is not an s3rekey job id", id)
	}
	out, err := s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(jobPK(id), skMeta),
		UpdateExpression: aws.String("SET #kind = if_not_exists(#kind, :kind), #source = if_not_exists(#source, :source), " +
			"#created = if_not_exists(#created, :now), #units = :units, #report = :report, #expires = if_not_exists(#expires, :expires)"),
		ExpressionAttributeNames: map[string]string{"#kind": "kind", "#source": "source", "#created": "created", "#units": "unitsTotal",
			"#report": "report", "#expires": attrExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":kind": str(kind), ":source": str(source), ":now": num(s.now().UnixMilli()),
			":units": num(units), ":report": str(report), ":expires": s.expires()},
		ReturnValues: types.ReturnValueAllNew})
	if err != nil {
		return time.Time{}, fmt.Errorf("job %s: record: %w", id, err)
	}
	created := time.UnixMilli(intAttr(out.Attributes["created"]))
	if err := s.index(ctx, id, created); err != nil {
		return time.Time{}, err
	}
	return created, nil
}

func (s *Store) index(ctx context.Context, id string, created time.Time) error {
	_, err := s.API.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table), Item: map[string]types.AttributeValue{
		attrPK: str(indexPK), attrSK: str(created.UTC().Format("2006-01-02T15:04:05.000Z") + "#" + id), "job": str(id), attrExpires: s.expires()}})
	if err != nil {
		return fmt.Errorf("job %s: index: %w", id, err)
	}
	return nil
}

func intAttr(v types.AttributeValue) int64 {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(n.Value, 10, 64)
		return i
	}
	return 0
}

func strAttr(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// Counts are what one batch of upload events adds to its bucket's
// rolling uploads job.
type Counts struct {
	Rows, RowsExpected, Planned, Done, UnitsDone int64
	Outcomes                                     map[string]int64
}

// addUpdate renders counts as an UpdateItem ADD (and the record's expiry).
func (s *Store) addUpdate(c Counts) (string, map[string]string, map[string]types.AttributeValue) {
	names := map[string]string{"#expires": attrExpires, "#progressed": attrProgressed}
	values := map[string]types.AttributeValue{":expires": s.expires(), ":progressed": num(s.now().UnixMilli())}
	var adds []string
	add := func(attr string, n int64) {
		if n == 0 {
			return
		}
		i := strconv.Itoa(len(adds))
		names["#a"+i], values[":a"+i] = attr, num(n)
		adds = append(adds, "#a"+i+" :a"+i)
	}
	add(cRows, c.Rows)
	add(cRowsExpected, c.RowsExpected)
	add(cPlanned, c.Planned)
	add(cDone, c.Done)
	add(cUnitsDone, c.UnitsDone)
	for _, k := range slices.Sorted(maps.Keys(c.Outcomes)) {
		add(outcomePrefix+k, c.Outcomes[k])
	}
	expr := "SET #expires = if_not_exists(#expires, :expires), #progressed = :progressed"
	if len(adds) > 0 {
		expr += " ADD " + strings.Join(adds, ", ")
	}
	return expr, names, values
}

// AddUploads counts what the new-upload path did into a bucket's rolling
// job of the day: one write per bucket per batch. Upload events carry no
// message ids, so a duplicate delivery of an event counts again: these
// counts are at least the truth, not exactly it.
func (s *Store) AddUploads(ctx context.Context, bucket string, day time.Time, c Counts) error {
	id := UploadsID(bucket, day)
	expr, names, values := s.addUpdate(c)
	expr = strings.Replace(expr, "SET ", "SET #kind = :kind, #source = :source, #created = if_not_exists(#created, :day), #units = :zero, ", 1)
	names["#kind"], names["#source"], names["#created"], names["#units"] = "kind", "source", "created", "unitsTotal"
	day = day.UTC().Truncate(24 * time.Hour)
	values[":kind"], values[":source"], values[":day"], values[":zero"] = str(KindUploads), str(bucket), num(day.UnixMilli()), num(0)
	out, err := s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(jobPK(id), skMeta),
		UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: values, ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return fmt.Errorf("uploads job %s: %w", id, err)
	}
	// ALL_OLD, not UPDATED_OLD: whether UPDATED_OLD returns "created",
	// which the SET leaves as it was, is not documented, and where it does
	// not, every batch would index the job again (a write unit each).
	if _, existed := out.Attributes["created"]; !existed {
		return s.index(ctx, id, day)
	}
	return nil
}

// ErrNotFound is a job with no record.
var ErrNotFound = errors.New("no such job")

func (j *Job) addCounters(it map[string]types.AttributeValue) {
	j.Rows += intAttr(it[cRows])
	j.RowsExpected += intAttr(it[cRowsExpected])
	j.Planned += intAttr(it[cPlanned])
	j.Done += intAttr(it[cDone])
	j.UnitsDone += intAttr(it[cUnitsDone])
	for k, v := range it {
		if o, ok := strings.CutPrefix(k, outcomePrefix); ok {
			if n := intAttr(v); n != 0 {
				j.Outcomes[o] += n
			}
		}
	}
}

// Pin records value under name for a job, unless a value is recorded
// already, and returns the recorded one: how a planner that runs again
// (a replay, a redelivery) makes the choices the first run made, such as
// where a listing's tasks end, on a bucket that changed since.
func (s *Store) Pin(ctx context.Context, jobID, name, value string) (string, error) {
	out, err := s.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.Table), Key: key(jobPK(jobID), skPinPrefix+name),
		UpdateExpression:          aws.String("SET #v = if_not_exists(#v, :v), #expires = if_not_exists(#expires, :expires)"),
		ExpressionAttributeNames:  map[string]string{"#v": "v", "#expires": attrExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": str(value), ":expires": s.expires()},
		ReturnValues:              types.ReturnValueAllNew})
	if err != nil {
		return "", fmt.Errorf("job %s: pin %s: %w", jobID, name, err)
	}
	return strAttr(out.Attributes["v"]), nil
}

// Reopen marks a dead letter as redriven, before it is moved back to the
// work queue: its job counts its objects pending, not failed, until its
// new delivery commits. It changes no count by itself, and marking one
// twice is marking it once. (A dead letter redriven without it counts as
// pending from its first delivery's claim.)
func (s *Store) Reopen(ctx context.Context, jobID, deadLetterID string) error {
	if !ValidID(jobID) || !ValidTaskID(deadLetterID) {
		return fmt.Errorf("dead letter %q of job %q: not a job's task", deadLetterID, jobID)
	}
	_, err := s.API.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table), Item: map[string]types.AttributeValue{
		attrPK: jobPK(jobID), attrSK: str(skRedrive + deadLetterID), attrExpires: s.expires()}})
	if err != nil {
		return fmt.Errorf("job %s: reopen for %s: %w", jobID, deadLetterID, err)
	}
	return nil
}

// List reads the most recent jobs, newest first.
func (s *Store) List(ctx context.Context, limit int) ([]*Job, error) {
	out, err := s.API.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(s.Table), KeyConditionExpression: aws.String("#pk = :pk"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK}, ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(indexPK)},
		ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(limit))})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	var jobs []*Job
	for _, it := range out.Items {
		j, err := s.Get(ctx, strAttr(it["job"]))
		if errors.Is(err, ErrNotFound) {
			continue // its record expired before its index entry
		}
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

func randomShard() string { return skCountPrefix + strconv.Itoa(rand.IntN(counterShards)) }
