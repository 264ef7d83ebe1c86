package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// jobItems is every item of a job's partition, read consistently.
type jobItems struct {
	meta     map[string]types.AttributeValue
	counters []map[string]types.AttributeValue
	records  map[string]record // committed task records, by task id
	claimed  map[string]bool   // tasks a delivery holds, not committed
	redriven map[string]bool   // dead letters an operator redrove
	// progressed is the latest commit or count, in Unix milliseconds.
	progressed int64
}

func (s *Store) readJob(ctx context.Context, id string) (*jobItems, error) {
	items := &jobItems{records: map[string]record{}, claimed: map[string]bool{}, redriven: map[string]bool{}}
	var start map[string]types.AttributeValue
	for {
		out, err := s.API.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(s.Table), ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("#pk = :pk"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": jobPK(id)}, ExclusiveStartKey: start})
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", id, err)
		}
		for _, it := range out.Items {
			items.noteProgress(it)
			sk := strAttr(it[attrSK])
			switch {
			case sk == skMeta:
				items.meta = it
			case strings.HasPrefix(sk, skCountPrefix):
				items.counters = append(items.counters, it)
			case strings.HasPrefix(sk, skMsgPrefix):
				task := sk[len(skMsgPrefix):]
				if it["committed"] == nil {
					items.claimed[task] = true
					continue
				}
				r, err := decodeRecord(strAttr(it[attrRecord]))
				if err != nil {
					return nil, fmt.Errorf("job %s: task record %s: %w", id, task, err)
				}
				items.records[task] = r
			case strings.HasPrefix(sk, skRedrive):
				items.redriven[sk[len(skRedrive):]] = true
			}
		}
		if start = out.LastEvaluatedKey; start == nil {
			break
		}
	}
	return items, nil
}

// Get reads a job and derives its counts and state from its records.
//
// What counts is the records reachable from the units' first tasks: each
// planner task's record names the position of its unit's next task, so a
// unit's tasks form a chain to its final task; each record lists the
// follow-ups its delivery sent, and a follow-up counts only when its
// parent's record lists it. A record a replay or a losing delivery left
// off the chain or off its parent's list counts nothing. An object is in
// exactly one task of the tree at a time, so it is counted once: in the
// record whose delivery gave it its outcome, or as failed in its dead
// letter's entry until the dead letter is redriven.
func (s *Store) Get(ctx context.Context, id string) (*Job, error) {
	items, err := s.readJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if items.meta == nil {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	j := &Job{ID: id, Outcomes: map[string]int64{}}
	it := items.meta
	j.Kind, j.Source, j.Report = strAttr(it["kind"]), strAttr(it["source"]), strAttr(it["report"])
	j.Created = time.UnixMilli(intAttr(it["created"])).UTC()
	j.UnitsTotal = intAttr(it["unitsTotal"])
	j.ReportManifest = strAttr(it["reportManifest"])
	j.TerminalState, j.TerminalReason = strAttr(it[attrTerminalState]), strAttr(it[attrTerminalReason])
	j.readEnd(items)
	j.completedDigest = strAttr(it[attrDigest])
	if c := intAttr(it["completed"]); c > 0 {
		j.Completed = time.UnixMilli(c).UTC()
	}
	if j.Kind == KindUploads {
		j.addCounters(it)
	} else {
		items.count(j)
	}
	j.derive()
	if j.State != StateComplete && j.State != StateCompleteWithFailures {
		j.Completed = time.Time{}
		if j.TerminalState == "" {
			j.ReportManifest = ""
		}
	}
	return j, nil
}

// count walks the chains and trees of a job's records into j.
func (items *jobItems) count(j *Job) {
	var ids []string
	visited := map[string]bool{}
	var visit func(id string, r record)
	visit = func(id string, r record) {
		visited[id] = true
		ids = append(ids, id)
		j.counted++
		if r.Root != nil {
			j.Rows += r.Root.Rows
			j.Planned += r.Root.Planned
			for k, v := range r.Root.Skipped {
				j.Outcomes[k] += v
			}
		}
		for k, v := range r.Outcomes {
			j.Outcomes[k] += v
			j.Done += v
		}
		if r.Part != nil {
			j.parts = append(j.parts, *r.Part)
		}
		for _, ch := range r.Children {
			if child, ok := items.records[ch.ID]; ok && child.Parent == id && !visited[ch.ID] {
				visit(ch.ID, child)
				continue
			}
			if ch.Kind == ChildDead && !items.claimed[ch.ID] && !items.redriven[ch.ID] {
				// Dead-lettered and not redriven: failed, with its rows.
				ids = append(ids, "dead:"+ch.ID)
				j.Outcomes[ch.Outcome] += ch.Objects
				j.Done += ch.Objects
				if ch.Part != nil {
					j.parts = append(j.parts, *ch.Part)
				}
				continue
			}
			j.pending++
		}
	}
	var firsts []string
	for id, r := range items.records {
		if r.Root != nil && r.Root.First && r.Parent == "" {
			firsts = append(firsts, id)
		}
	}
	slices.Sort(firsts)
	for _, id := range firsts {
		var chainRows int64
		for r := items.records[id]; ; {
			visit(id, r)
			chainRows += r.Root.Rows
			if r.Root.Final {
				j.UnitsDone++
				j.RowsExpected += chainRows
				if r.Root.UnitRows > 0 {
					j.RowsExpected += r.Root.UnitRows - chainRows
				}
				break
			}
			id = MessageID(r.Root.Unit, r.Root.Next)
			next, ok := items.records[id]
			if !ok || next.Root == nil || next.Parent != "" || visited[id] {
				break
			}
			r = next
		}
	}
	j.Pending = j.pending
	slices.Sort(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	j.digest = hex.EncodeToString(sum[:16])
	slices.SortFunc(j.parts, func(a, b part) int { return strings.Compare(a.Key, b.Key) })
	j.ReportParts = int64(len(j.parts))
	// Outcomes of zero are not shown.
	for _, k := range slices.Collect(maps.Keys(j.Outcomes)) {
		if j.Outcomes[k] == 0 {
			delete(j.Outcomes, k)
		}
	}
}

// openHint reads a job's count of open tasks (its units, and what its
// records opened and closed) without reading the records: only when it
// is zero can the job be finished, and then its records are read.
func (s *Store) openHint(ctx context.Context, id string) (open, units int64, err error) {
	out, err := s.API.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(s.Table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk AND #sk BETWEEN :from AND :to"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": jobPK(id), ":from": str(skCountPrefix), ":to": str(skMeta)}})
	if err != nil {
		return 0, 0, fmt.Errorf("job %s: %w", id, err)
	}
	for _, it := range out.Items {
		if strAttr(it[attrSK]) == skMeta {
			units = intAttr(it["unitsTotal"])
		}
		open += intAttr(it[cOpen])
	}
	return open + units, units, nil
}
