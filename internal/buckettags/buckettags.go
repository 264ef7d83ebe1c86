// Package buckettags reads buckets' tags for the policy's tag selectors
// (S3 GetBucketTagging) and caches them, so that a function reads a
// bucket's tags once per TTL, not once per object. A tag change therefore
// reaches the functions within the TTL; the enroll function, which reads
// tags itself, follows it at the tag-change event or the next sweep.
package buckettags

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// API is the one S3 call the package makes.
type API interface {
	GetBucketTagging(ctx context.Context, in *s3.GetBucketTaggingInput, optFns ...func(*s3.Options)) (*s3.GetBucketTaggingOutput, error)
}

var _ API = (*s3.Client)(nil)

// DefaultTTL is how long a bucket's tags are used before they are read again.
const DefaultTTL = 5 * time.Minute

// Cache is a policy.TagSource over GetBucketTagging.
type Cache struct {
	API API
	// ExpectedOwner, when set, is sent as ExpectedBucketOwner: the tags of
	// a bucket of another account are never read as if they were ours.
	ExpectedOwner string
	TTL           time.Duration // 0: DefaultTTL
	Now           func() time.Time

	mu      sync.Mutex
	entries map[string]entry
}

var _ policy.TagSource = (*Cache)(nil)

type entry struct {
	tags map[string]string
	at   time.Time
}

// Read returns a bucket's tags from S3: none (not an error) for a bucket
// without a tag set, as S3 answers NoSuchTagSet.
func Read(ctx context.Context, api API, bucket, expectedOwner string) (map[string]string, error) {
	in := &s3.GetBucketTaggingInput{Bucket: aws.String(bucket)}
	if expectedOwner != "" {
		in.ExpectedBucketOwner = aws.String(expectedOwner)
	}
	out, err := api.GetBucketTagging(ctx, in)
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchTagSet" {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	tags := make(map[string]string, len(out.TagSet))
	for _, t := range out.TagSet {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, nil
}

// BucketTags returns the bucket's tags, read at most once per TTL. A failed
// read is not cached: the next object tries again.
func (c *Cache) BucketTags(ctx context.Context, bucket string) (map[string]string, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	c.mu.Lock()
	e, ok := c.entries[bucket]
	c.mu.Unlock()
	if ok && now().Sub(e.at) < ttl {
		return e.tags, nil
	}
	tags, err := Read(ctx, c.API, bucket, c.ExpectedOwner)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]entry{}
	}
	c.entries[bucket] = entry{tags, now()}
	c.mu.Unlock()
	return tags, nil
}

// Attach returns the policy reading tags through a Cache over api when a
// selector uses tags, and the policy itself otherwise.
func Attach(p *policy.Policy, api API) *policy.Policy {
	if !p.UsesTags() {
		return p
	}
	return p.WithTags(&Cache{API: api})
}
