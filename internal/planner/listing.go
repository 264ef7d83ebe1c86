package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/inventory"
	"github.com/s3rekey/s3rekey/internal/jobs"
	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/queue"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// runListing pages through a bucket and enqueues what is in scope.
//
// A listing's tasks are cut between keys (all versions of a key go in one
// task), and each is named by the key it starts after. A bucket can
// change between a listing and its replay (a redelivered or retried
// control message), so where a task ends is pinned in the job's records
// the first time it is cut: a replay cuts its tasks where the first run
// did, and the unit's tasks form one chain whatever the bucket did
// meanwhile (see docs/jobs.md for what that promises).
func (p *Planner) runListing(ctx context.Context, job Job) error {
	cfg := p.Config.withDefaults()
	sel, err := p.Policy.Resolve(ctx, job.Bucket)
	if err != nil {
		return err
	}
	target := sel.Bucket
	if !sel.Managed {
		return &messages.RejectedError{Reason: "listing of bucket " + job.Bucket + ", which the policy does not manage"}
	}
	if job.Versions && target.Versions != policy.VersionsAll {
		return &messages.RejectedError{Reason: "listing versions of " + job.Bucket + ", whose policy says versions: current"}
	}
	if job.Range == nil && job.Token == "" && job.KeyMarker == "" && job.StartAfter == "" && job.Listed == 0 {
		ranges, err := p.splitListing(ctx, cfg, job, target.ExpectedOwner)
		if err != nil {
			return fmt.Errorf("listing %s: split: %w", job.Bucket, err)
		}
		if ranges, err = p.pinRanges(ctx, job, ranges); err != nil {
			return err
		}
		if _, err := p.begin(ctx, job.JobID, jobs.KindListing, "s3://"+job.Bucket+"/"+job.Prefix, max(1, len(ranges))); err != nil {
			return err
		}
		if len(ranges) > 1 {
			return p.sendRanges(ctx, cfg, job, ranges)
		}
	}
	unit := fmt.Sprintf("s3://%s/%s|versions=%t", job.Bucket, job.Prefix, job.Versions)
	firstKey := ""
	if job.Range != nil {
		unit += "|range=" + strconv.Itoa(job.Range.Index)
		firstKey = job.Range.After
		if job.Token == "" && job.KeyMarker == "" && job.StartAfter == "" && job.Listed == 0 && job.Range.After != "" {
			// The range starts after its lower bound: S3's StartAfter and
			// KeyMarker are exclusive too.
			job.StartAfter, job.KeyMarker = job.Range.After, job.Range.After
		}
	}
	b := p.newBatcher(cfg, job, unit)
	b.firstPos = keyPos(firstKey)
	start := firstKey
	if job.Token == "" {
		start = max(job.StartAfter, job.KeyMarker, firstKey)
	}
	cut := &listingCutter{b: b, start: keyPos(start), limit: cfg.MessageBytes, overhead: b.pack.overhead}
	stats := Stats{Skipped: map[string]int64{}}
	// The next page is read while this one is enqueued, so that a lister
	// waits for S3's answer or for its own work, not for the sum.
	next := p.readPage(ctx, job, target.ExpectedOwner)
	for page := 0; ; page++ {
		if page > 0 && p.nearDeadline(ctx, cfg.DeadlineMargin) {
			return p.checkpointListing(ctx, cfg, cut, &stats, job)
		}
		read := <-next
		if read.err != nil {
			return fmt.Errorf("listing %s: %w", job.Bucket, read.err)
		}
		job.Token, job.KeyMarker, job.VersionIDMarker = read.after.Token, read.after.KeyMarker, read.after.VersionIDMarker
		// Entries past the range's end end the range.
		objs, markers, past := job.Range.clip(read.objs, read.markers)
		more := read.more && !past
		if more {
			next = p.readPage(ctx, job, target.ExpectedOwner)
		}
		for _, e := range mergeByKey(objs, markers) {
			stats.Rows++
			switch {
			case e.marker:
				stats.Skipped[inventory.SkipDeleteMarker]++
				e.skip = inventory.SkipDeleteMarker
			case !target.InScope(e.obj.Key):
				stats.Skipped[rekey.ReasonExcludedPrefix]++
				e.skip = rekey.ReasonExcludedPrefix
			}
			if err := cut.add(ctx, e); err != nil {
				return fmt.Errorf("listing %s: %w", job.Bucket, err)
			}
		}
		job.Listed += int64(len(objs) + len(markers))
		if err := b.send(ctx); err != nil {
			return fmt.Errorf("listing %s: %w", job.Bucket, err)
		}
		if !more {
			break
		}
	}
	if err := cut.finish(ctx); err != nil {
		return fmt.Errorf("listing %s: %w", job.Bucket, err)
	}
	if err := b.send(ctx); err != nil {
		return fmt.Errorf("listing %s: %w", job.Bucket, err)
	}
	p.logFile("listing done", job.Bucket, 0, b, &stats)
	return nil
}

// checkpointListing sends what is cut, then the continuation, which lists
// again from the start of the task still open.
func (p *Planner) checkpointListing(ctx context.Context, cfg Config, cut *listingCutter, stats *Stats, job Job) error {
	if err := cut.b.send(ctx); err != nil {
		return fmt.Errorf("listing %s: %w", job.Bucket, err)
	}
	next := job
	next.Token, next.VersionIDMarker = "", ""
	next.StartAfter, next.KeyMarker = posKey(cut.start), posKey(cut.start)
	next.Listed = max(next.Listed, 1) // a continuation, not a new listing
	body, err := next.Encode()
	if err != nil {
		return err
	}
	if err := firstError(p.Sender.Send(ctx, cfg.ControlQueueURL, []queue.Message{{Body: body}})); err != nil {
		return fmt.Errorf("listing %s: send continuation: %w", job.Bucket, err)
	}
	p.logFile("deadline near: checkpointed", job.Bucket, 0, cut.b, stats)
	return nil
}

// pinRanges records a listing's ranges the first time they are chosen:
// the bucket's top-level prefixes may differ when the listing is started
// again, and the job's units must not.
func (p *Planner) pinRanges(ctx context.Context, job Job, ranges []KeyRange) ([]KeyRange, error) {
	if p.Jobs == nil || job.JobID == "" {
		return ranges, nil
	}
	enc, _ := json.Marshal(ranges)
	got, err := p.Jobs.Pin(ctx, job.JobID, "ranges", string(enc))
	if err != nil {
		return nil, err
	}
	var pinned []KeyRange
	if err := json.Unmarshal([]byte(got), &pinned); err != nil {
		return nil, fmt.Errorf("job %s: pinned ranges: %w", job.JobID, err)
	}
	return pinned, nil
}

// Listing positions: a task starts after a key ("k:" and the key; the
// empty key is the start of the listing) and the final task ends at
// posEnd.
const posEnd = "end"

func keyPos(key string) string { return "k:" + key }
func posKey(pos string) string { return strings.TrimPrefix(pos, "k:") }

// entry is one listed row: an object version or a delete marker.
type entry struct {
	obj    messages.Object
	marker bool
	skip   string
}

// mergeByKey merges a page's versions and delete markers in key order
// (each list is in key order already; within a key, versions come first).
func mergeByKey(objs, markers []messages.Object) []entry {
	out := make([]entry, 0, len(objs)+len(markers))
	i, k := 0, 0
	for i < len(objs) || k < len(markers) {
		if k >= len(markers) || (i < len(objs) && objs[i].Key <= markers[k].Key) {
			out = append(out, entry{obj: objs[i]})
			i++
			continue
		}
		out = append(out, entry{obj: markers[k], marker: true})
		k++
	}
	return out
}

// listingCutter cuts a listing range into tasks: at most limit bytes each
// where it chooses, and where the job's pins say a task ended when the
// listing ran before.
type listingCutter struct {
	b               *batcher
	start           string // the open task starts after this position
	entries         []entry
	size            int
	pinned          string // where the open task ends, once known
	limit, overhead int
	overflow        int
}

// maxPinnedBytes bounds a task that must reach its pinned end on a bucket
// that has grown since (SQS takes messages up to 256 KiB).
const maxPinnedBytes = 240 << 10

func entrySize(e entry) int {
	enc, _ := json.Marshal(e.obj)
	return len(enc) + 1
}

func (c *listingCutter) lastKey() string { return c.entries[len(c.entries)-1].obj.Key }

// pin returns where the open task ends: the recorded end, or want,
// recorded now.
func (c *listingCutter) pin(ctx context.Context, want string) (string, error) {
	if !c.b.tracked() {
		return want, nil
	}
	return c.b.p.Jobs.Pin(ctx, c.b.jobID, "next#"+jobs.MessageID(c.b.unit, c.start), want)
}

func (c *listingCutter) add(ctx context.Context, e entry) error {
	n := entrySize(e)
	for {
		switch {
		case len(c.entries) > 0 && e.obj.Key == c.lastKey():
			// A key's versions stay in one task.
		case c.pinned == posEnd:
			// The first run ended here; what is listed after is newer.
		case c.pinned != "":
			if e.obj.Key > posKey(c.pinned) {
				if err := c.emitUpTo(ctx, c.pinned); err != nil {
					return err
				}
				continue
			}
		case len(c.entries) > 0 && c.size+n > c.limit:
			got, err := c.pin(ctx, keyPos(c.lastKey()))
			if err != nil {
				return err
			}
			c.pinned = got
			if got != posEnd && posKey(got) <= c.lastKey() {
				if err := c.emitUpTo(ctx, got); err != nil {
					return err
				}
			}
			continue
		}
		if c.pinned != "" && c.size+n > maxPinnedBytes {
			// Beyond what one message holds: newer objects that a replay
			// lists inside a task the first run cut smaller. They are run,
			// and counted in no job (docs/jobs.md).
			c.overflow++
			if e.skip == "" {
				return c.b.queue(ctx, messages.Task{Source: c.b.source, JobID: c.b.jobID, Redelivered: true, Objects: []messages.Object{e.obj}})
			}
			return nil
		}
		if len(c.entries) == 0 {
			c.size = c.overhead
		}
		c.entries = append(c.entries, e)
		c.size += n
		return nil
	}
}

// emitUpTo sends the open task's entries up to end (a key position) as
// one task that ends there; the rest open the next task.
func (c *listingCutter) emitUpTo(ctx context.Context, end string) error {
	k := len(c.entries)
	for k > 0 && c.entries[k-1].obj.Key > posKey(end) {
		k--
	}
	if err := c.emit(ctx, c.entries[:k], end, false); err != nil {
		return err
	}
	rest := slices.Clone(c.entries[k:])
	c.start, c.pinned, c.entries, c.size = end, "", nil, c.overhead
	for _, e := range rest {
		c.entries = append(c.entries, e)
		c.size += entrySize(e)
	}
	return nil
}

// finish ends the range: the open task is its final one, unless an
// earlier run recorded that more tasks followed it.
func (c *listingCutter) finish(ctx context.Context) error {
	for range 1 << 20 {
		if c.pinned == "" {
			got, err := c.pin(ctx, posEnd)
			if err != nil {
				return err
			}
			c.pinned = got
		}
		if c.pinned == posEnd {
			return c.emit(ctx, c.entries, "", true)
		}
		if err := c.emitUpTo(ctx, c.pinned); err != nil {
			return err
		}
	}
	return fmt.Errorf("listing %s: pinned tasks do not end", c.b.unit)
}

func (c *listingCutter) emit(ctx context.Context, es []entry, next string, final bool) error {
	objs := make([]messages.Object, 0, len(es))
	skipped := map[string]int64{}
	withReports := c.b.p.Reports != nil && c.b.tracked()
	for _, e := range es {
		if e.skip != "" {
			skipped[e.skip]++
			if !withReports {
				continue
			}
			e.obj = messages.Object{Bucket: e.obj.Bucket, Key: e.obj.Key, VersionID: e.obj.VersionID, Skip: e.skip}
		}
		objs = append(objs, e.obj)
	}
	return c.b.emit(ctx, c.start, next, final, objs, int64(len(es)), skipped, 0)
}

// splitListing chooses the ranges a listing is split into: bounds at
// evenly spaced top-level prefixes under the job's prefix (a listing with
// a delimiter, at most ten pages of prefixes). Fewer than two prefixes, or
// ListingRanges 1: one range, listed as before.
func (p *Planner) splitListing(ctx context.Context, cfg Config, job Job, owner string) ([]KeyRange, error) {
	if cfg.ListingRanges < 2 {
		return nil, nil
	}
	var prefixes []string
	var token *string
	for range 10 {
		out, err := p.List.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(job.Bucket), Prefix: nonEmpty(job.Prefix), Delimiter: aws.String("/"),
			ContinuationToken: token, ExpectedBucketOwner: aws.String(owner), EncodingType: types.EncodingTypeUrl})
		if err != nil {
			return nil, err
		}
		for _, cp := range out.CommonPrefixes {
			prefix, err := listedKey(cp.Prefix, out.EncodingType)
			if err != nil {
				return nil, err
			}
			prefixes = append(prefixes, prefix)
		}
		if token = out.NextContinuationToken; !aws.ToBool(out.IsTruncated) || token == nil {
			break
		}
	}
	n := min(cfg.ListingRanges, len(prefixes))
	if n < 2 {
		return nil, nil
	}
	// Range i covers (bound i, bound i+1]: contiguous and disjoint, so every
	// key is in exactly one, whatever the bounds; prefixes make ranges of
	// similar size where the bucket's top level is balanced.
	ranges := make([]KeyRange, n)
	for i := range n {
		ranges[i].Index = i
		if i > 0 {
			ranges[i].After = prefixes[i*len(prefixes)/n]
			ranges[i-1].Until = ranges[i].After
		}
	}
	return ranges, nil
}

// sendRanges sends a listing's ranges to the control queue, to be listed
// at once by as many planner invocations.
func (p *Planner) sendRanges(ctx context.Context, cfg Config, job Job, ranges []KeyRange) error {
	var msgs []queue.Message
	for i := range ranges {
		r := job
		r.Range = &ranges[i]
		body, err := r.Encode()
		if err != nil {
			return err
		}
		msgs = append(msgs, queue.Message{Body: body})
	}
	if err := firstError(p.Sender.Send(ctx, cfg.ControlQueueURL, msgs)); err != nil {
		return fmt.Errorf("listing %s: send its ranges: %w", job.Bucket, err)
	}
	p.logger().Info("listing split into ranges", "bucket", job.Bucket, "prefix", job.Prefix, "ranges", len(ranges))
	return nil
}

// clip keeps the entries of a page that lie in the range, and reports
// whether the page reached past its end (listings are in key order).
func (r *KeyRange) clip(objs, markers []messages.Object) (inObjs, inMarkers []messages.Object, past bool) {
	if r == nil {
		return objs, markers, false
	}
	keep := func(list []messages.Object) []messages.Object {
		var out []messages.Object
		for _, o := range list {
			if r.contains(o.Key) {
				out = append(out, o)
			} else if r.Until != "" && o.Key > r.Until {
				past = true
			}
		}
		return out
	}
	return keep(objs), keep(markers), past
}

// pageRead is one page of a listing, and the cursor after it.
type pageRead struct {
	objs, markers []messages.Object
	more          bool
	after         Job
	err           error
}

// readPage reads the page at job's cursor in the background.
func (p *Planner) readPage(ctx context.Context, job Job, owner string) <-chan pageRead {
	out := make(chan pageRead, 1) // a page read ahead and not used is dropped
	go func() {
		var r pageRead
		if job.Versions {
			r.objs, r.markers, r.more, r.err = p.listVersionsPage(ctx, &job, owner)
		} else {
			r.objs, r.more, r.err = p.listPage(ctx, &job, owner)
		}
		r.after = job
		out <- r
	}()
	return out
}

// listPage reads one page of current objects and advances job past it.
func (p *Planner) listPage(ctx context.Context, job *Job, owner string) ([]messages.Object, bool, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(job.Bucket), Prefix: nonEmpty(job.Prefix),
		ContinuationToken: nonEmpty(job.Token), ExpectedBucketOwner: aws.String(owner), EncodingType: types.EncodingTypeUrl}
	if job.Token == "" {
		in.StartAfter = nonEmpty(job.StartAfter)
	}
	out, err := p.List.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, false, err
	}
	objs := make([]messages.Object, len(out.Contents))
	for i, o := range out.Contents {
		key, err := listedKey(o.Key, out.EncodingType)
		if err != nil {
			return nil, false, err
		}
		objs[i] = messages.Object{Bucket: job.Bucket, Key: key}
	}
	job.Token = aws.ToString(out.NextContinuationToken)
	return objs, aws.ToBool(out.IsTruncated), nil
}

// listVersionsPage reads one page of versions and advances job past it;
// it returns the versions and the delete markers apart.
func (p *Planner) listVersionsPage(ctx context.Context, job *Job, owner string) (objs, markers []messages.Object, more bool, err error) {
	out, err := p.List.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(job.Bucket), Prefix: nonEmpty(job.Prefix),
		KeyMarker: nonEmpty(job.KeyMarker), VersionIdMarker: nonEmpty(job.VersionIDMarker), ExpectedBucketOwner: aws.String(owner),
		EncodingType: types.EncodingTypeUrl})
	if err != nil {
		return nil, nil, false, err
	}
	for _, v := range out.Versions {
		key, err := listedKey(v.Key, out.EncodingType)
		if err != nil {
			return nil, nil, false, err
		}
		objs = append(objs, messages.Object{Bucket: job.Bucket, Key: key, VersionID: aws.ToString(v.VersionId)})
	}
	for _, d := range out.DeleteMarkers {
		key, err := listedKey(d.Key, out.EncodingType)
		if err != nil {
			return nil, nil, false, err
		}
		markers = append(markers, messages.Object{Bucket: job.Bucket, Key: key, VersionID: aws.ToString(d.VersionId)})
	}
	marker, err := listedKey(out.NextKeyMarker, out.EncodingType)
	if err != nil {
		return nil, nil, false, err
	}
	job.KeyMarker, job.VersionIDMarker = marker, aws.ToString(out.NextVersionIdMarker)
	return objs, markers, aws.ToBool(out.IsTruncated), nil
}

// listedKey decodes a key (or key marker) listed with encoding-type=url:
// without it, a key holding a character XML 1.0 forbids makes its whole
// page unreadable, and with it S3 URL-encodes every key in the answer.
// Only an answer that says it is encoded is decoded (API_ListObjectsV2
// and API_ListObjectVersions, EncodingType: "If you specify the
// encoding-type request parameter, Amazon S3 includes this element in the
// response, and returns encoded key name values"): a server that ignores
// the parameter sends keys as they are, and decoding them would turn
// "a+b" into "a b".
func listedKey(s *string, encoding types.EncodingType) (string, error) {
	raw := aws.ToString(s)
	if encoding != types.EncodingTypeUrl || !strings.ContainsAny(raw, "%+") {
		return raw, nil
	}
	key, err := url.QueryUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("listed key %q is not URL-encoded: %w", raw, err)
	}
	return key, nil
}
