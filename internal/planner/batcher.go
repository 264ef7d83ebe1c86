package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/queue"
)

// messagePacker draws the boundaries of object tasks: at most limit bytes
// each (overhead for the task's own fields, then every object's JSON and a
// comma). The batcher sends by it; the plan counts by it.
type messagePacker struct {
	limit, overhead  int
	size, n          int
	messages, chunks int64 // messages closed, and their billed SQS chunks
}

// add accounts for obj and reports whether it closed the previous, full
// message (obj then starts the next one).
func (p *messagePacker) add(obj messages.Object) (closedPrevious bool) {
	enc, _ := json.Marshal(obj)
	if p.n > 0 && p.size+len(enc)+1 > p.limit {
		p.close()
		closedPrevious = true
	}
	if p.n == 0 {
		p.size = p.overhead
	}
	p.n++
	p.size += len(enc) + 1
	return closedPrevious
}

func (p *messagePacker) close() {
	if p.n == 0 {
		return
	}
	p.messages++
	p.chunks += cost.SQSChunks(p.size)
	p.n, p.size = 0, 0
}

// batcher packs a unit's rows (a data file's, a listing range's) into
// object tasks (see messagePacker) and sends them forty messages at a
// time. A task covers consecutive rows: it carries the objects to update,
// the planner's counts for its rows, and, when reports are written, the
// skipped rows to list. A tracked task is named by its unit and the
// position it starts at, says where the unit's next task starts (or that
// it is the unit's final task), and is signed: its job counts what a
// chain of such tasks from the unit's first to its final says.
type batcher struct {
	p           *Planner
	cfg         Config
	jobID       string
	unit        string
	firstPos    string // where the unit's first task starts
	source      string // messages.SourceInventory or SourceListing
	redelivered bool
	pack        messagePacker
	// The open task of a data file: its first row's position, its rows,
	// its skips.
	start    string
	rows     int64
	skipped  map[string]int64
	cur      []messages.Object
	ready    []queue.Message
	objects  int64
	messages int64
}

// taskOverhead is the encoded size of a task without its objects: its
// fields, id, signature and the planner's counts.
const taskOverhead = 640

func (p *Planner) newBatcher(cfg Config, job Job, unit string) *batcher {
	source := messages.SourceInventory
	if job.Type == TypeListing {
		source = messages.SourceListing
	}
	return &batcher{p: p, cfg: cfg, jobID: job.JobID, unit: unit, firstPos: "0", source: source, redelivered: job.Redelivered,
		pack: messagePacker{limit: cfg.MessageBytes, overhead: taskOverhead + len(job.JobID) + len(unit)}, skipped: map[string]int64{}}
}

func (b *batcher) tracked() bool { return b.p.Jobs != nil && b.jobID != "" }

// add puts an object to update, at row pos, into the open task.
func (b *batcher) add(ctx context.Context, pos string, obj messages.Object) error {
	if b.pack.add(obj) {
		if err := b.seal(ctx); err != nil {
			return err
		}
	}
	if b.rows == 0 {
		b.start = pos
	}
	b.rows++
	b.cur = append(b.cur, obj)
	return nil
}

// skip counts a row not sent for an update; with reports, the object
// rides along to be listed.
func (b *batcher) skip(ctx context.Context, reason, pos string, obj *messages.Object) error {
	if obj != nil && b.p.Reports != nil && b.tracked() {
		o := messages.Object{Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, Skip: reason}
		if b.pack.add(o) {
			if err := b.seal(ctx); err != nil {
				return err
			}
		}
		b.cur = append(b.cur, o)
	}
	if b.rows == 0 {
		b.start = pos
	}
	b.rows++
	b.skipped[reason]++
	return nil
}

// seal closes the open task of a data file, whose rows are numbered: the
// next task starts at the row after its last.
func (b *batcher) seal(ctx context.Context) error {
	if b.rows == 0 {
		return nil
	}
	start, _ := strconv.ParseInt(b.start, 10, 64)
	err := b.emit(ctx, b.start, strconv.FormatInt(start+b.rows, 10), false, b.cur, b.rows, b.skipped, 0)
	b.rows, b.cur = 0, nil
	clear(b.skipped)
	return err
}

// emit queues one task; forty are sent at once. A tracked task of
// skipped rows alone, or of none (a unit's final task), is sent to carry
// its counts and its place in the chain; an untracked one only with
// objects.
func (b *batcher) emit(ctx context.Context, start, next string, final bool, objs []messages.Object, rows int64, skipped map[string]int64, unitRows int64) error {
	if !b.tracked() {
		var run []messages.Object
		for _, o := range objs {
			if o.Skip == "" {
				run = append(run, o)
			}
		}
		if len(run) == 0 {
			return nil
		}
		objs = run
	}
	t := messages.Task{Source: b.source, JobID: b.jobID, Redelivered: b.redelivered, Objects: objs}
	if b.tracked() {
		t.ID = jobs.MessageID(b.unit, start)
		t.Plan = &messages.Plan{Rows: rows, Skipped: maps.Clone(skipped), Unit: b.unit, First: start == b.firstPos, Next: next,
			Final: final, UnitRows: unitRows}
		if len(t.Plan.Skipped) == 0 {
			t.Plan.Skipped = nil
		}
		if err := b.p.Jobs.Sign(ctx, &t); err != nil {
			return err
		}
	}
	if err := b.queue(ctx, t); err != nil {
		return err
	}
	for _, o := range objs {
		if o.Skip == "" {
			b.objects++
		}
	}
	return nil
}

func (b *batcher) queue(ctx context.Context, t messages.Task) error {
	body, err := t.Encode()
	if err != nil {
		return err
	}
	b.ready = append(b.ready, queue.Message{Body: body})
	if len(b.ready) >= queue.MaxBatchEntries*4 {
		return b.send(ctx)
	}
	return nil
}

func (b *batcher) send(ctx context.Context) error {
	if len(b.ready) == 0 {
		return nil
	}
	if err := firstError(b.p.Sender.Send(ctx, b.cfg.WorkQueueURL, b.ready)); err != nil {
		return fmt.Errorf("enqueue object tasks: %w", err)
	}
	b.messages += int64(len(b.ready))
	b.ready = b.ready[:0]
	return nil
}

// endBlock closes the open task and sends what is ready.
func (b *batcher) endBlock(ctx context.Context) error {
	b.pack.close()
	if err := b.seal(ctx); err != nil {
		return err
	}
	return b.send(ctx)
}

// final ends a data file: its last block, then, for a job, the unit's
// final task, at the position after the last row, which says how many
// rows the file had.
func (b *batcher) final(ctx context.Context, unitRows int64) error {
	b.pack.close()
	if err := b.seal(ctx); err != nil {
		return err
	}
	if b.tracked() {
		if err := b.emit(ctx, strconv.FormatInt(unitRows, 10), "", true, nil, 0, nil, unitRows); err != nil {
			return err
		}
	}
	return b.send(ctx)
}
