package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/cost"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

func sortStrings(s []string) { sort.Strings(s) }

// httpStatus is the HTTP status of an AWS error, 0 if none.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// listVersions calls fn with every version and delete marker of a bucket.
func listVersions(ctx context.Context, api ListVersionsAPI, bucket, owner string, req *Requests, fn func(v Version, marker bool)) error {
	p := s3.NewListObjectVersionsPaginator(api, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), ExpectedBucketOwner: bucketowner.Named(owner)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list versions of s3://%s: %w", bucket, err)
		}
		req.List++
		for _, o := range page.Versions {
			fn(Version{Key: aws.ToString(o.Key), VersionID: aws.ToString(o.VersionId), Latest: aws.ToBool(o.IsLatest),
				LastModified: aws.ToTime(o.LastModified)}, false)
		}
		for _, m := range page.DeleteMarkers {
			fn(Version{Key: aws.ToString(m.Key), VersionID: aws.ToString(m.VersionId), Latest: aws.ToBool(m.IsLatest),
				LastModified: aws.ToTime(m.LastModified)}, true)
		}
	}
	return nil
}

// fromListing verifies a bucket by listing every version and reading
// each one's encryption with a HEAD.
func fromListing(ctx context.Context, c Clients, b *Bucket, target policy.Bucket, opts Options) error {
	var versions []Version
	err := listVersions(ctx, c.List, b.Bucket, b.owner, &b.Requests, func(v Version, marker bool) {
		if marker {
			b.DeleteMarkers++
			return
		}
		versions = append(versions, v)
	})
	if err != nil {
		return err
	}
	b.SourceRef = "ListObjectVersions"
	if err := announce(opts, b, target, int64(len(versions)), b.Requests.List); err != nil {
		return err
	}
	t := newTally(b, target, opts)
	if err := headAll(ctx, c.Head, b, target, opts, versions, t); err != nil {
		return err
	}
	t.finish()
	b.NotSeen = append(b.NotSeen, "versions written or deleted after the listing passed their key")
	return nil
}

// announce prices the HEADs (and listings) and tells opts.Estimate.
func announce(opts Options, b *Bucket, target policy.Bucket, heads, lists int64) error {
	e := Estimate{Bucket: b.Bucket, Source: b.Source, Heads: heads, Lists: lists,
		Dollars: float64(heads)*cost.S3GetPerRequest + float64(lists)*cost.S3PutPerRequest}
	if target.MaxObjectsPerSecond > 0 {
		e.AtBudget = time.Duration(float64(heads) / target.MaxObjectsPerSecond * float64(time.Second))
	}
	if opts.Estimate != nil {
		return opts.Estimate(e)
	}
	return nil
}

// pacer spaces requests at a rate shared by every worker.
type pacer struct {
	mu    sync.Mutex
	next  time.Time
	every time.Duration
}

func newPacer(perSecond float64) *pacer {
	if perSecond <= 0 {
		return &pacer{}
	}
	return &pacer{every: time.Duration(float64(time.Second) / perSecond)}
}

func (p *pacer) wait(ctx context.Context) error {
	if p.every == 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.every)
	p.mu.Unlock()
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// headAll reads each version's encryption with a HEAD, at most
// opts.Concurrency at once and paced by the bucket's budget
// (maxObjectsPerSecond), and tallies it. A version gone since it was
// listed is recorded as gone, not counted.
func headAll(ctx context.Context, api HeadAPI, b *Bucket, target policy.Bucket, opts Options, versions []Version, t *tally) error {
	n := opts.Concurrency
	if n <= 0 {
		n = 16
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pace := newPacer(target.MaxObjectsPerSecond)
	work := make(chan Version)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range work {
				if err := pace.wait(ctx); err != nil {
					return
				}
				got, gone, err := head(ctx, api, b.Bucket, b.owner, v)
				mu.Lock()
				b.Requests.Head++
				switch {
				case err != nil:
					if firstErr == nil {
						firstErr = err
						cancel()
					}
				case gone:
					v.Reason = "listed, gone before its HEAD"
					b.GoneSinceSnapshot = append(b.GoneSinceSnapshot, v)
				default:
					t.add(got)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, v := range versions {
		select {
		case work <- v:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	sortVersions(b.GoneSinceSnapshot)
	return ctx.Err()
}

// head reads one version's encryption.
func head(ctx context.Context, api HeadAPI, bucket, owner string, v Version) (Version, bool, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(v.Key), ExpectedBucketOwner: bucketowner.Named(owner)}
	if v.VersionID != "" {
		in.VersionId = aws.String(v.VersionID)
	}
	out, err := api.HeadObject(ctx, in)
	if err != nil {
		switch httpStatus(err) {
		case http.StatusNotFound:
			return v, true, nil
		case http.StatusBadRequest:
			// HEAD of an SSE-C object without its key answers 400 (S3 API
			// reference, HeadObject: "If you encrypt an object by using
			// server-side encryption with customer-provided encryption
			// keys (SSE-C) ... you get an HTTP 400 Bad Request error").
			v.Encryption, v.Reason = EncSSEC, "HEAD answered 400, as S3 does for an SSE-C version"
			return v, false, nil
		}
		return v, false, fmt.Errorf("HEAD s3://%s/%s version %s: %w", bucket, v.Key, v.VersionID, err)
	}
	st := rekey.StateFromHead(out)
	v.Encryption, v.KMSKeyARN, v.BucketKey = st.Encryption, st.KMSKeyARN, st.BucketKey
	return v, false, nil
}
