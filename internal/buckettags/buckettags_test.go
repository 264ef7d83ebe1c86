package buckettags

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

type fakeS3 struct {
	tags  map[string][]types.Tag
	err   error
	calls int
	owner string
}

func (f *fakeS3) GetBucketTagging(_ context.Context, in *s3.GetBucketTaggingInput, _ ...func(*s3.Options)) (*s3.GetBucketTaggingOutput, error) {
	f.calls++
	f.owner = aws.ToString(in.ExpectedBucketOwner)
	if f.err != nil {
		return nil, f.err
	}
	ts, ok := f.tags[aws.ToString(in.Bucket)]
	if !ok {
		// GetBucketTagging's reference: a bucket without tags answers
		// NoSuchTagSet.
		return nil, &smithy.GenericAPIError{Code: "NoSuchTagSet", Message: "The TagSet does not exist"}
	}
	return &s3.GetBucketTaggingOutput{TagSet: ts}, nil
}

func TestCacheReadsOncePerTTL(t *testing.T) {
	api := &fakeS3{tags: map[string][]types.Tag{"b": {{Key: aws.String("team"), Value: aws.String("a")}}}}
	now := time.Unix(0, 0)
	c := &Cache{API: api, ExpectedOwner: "111122223333", TTL: time.Minute, Now: func() time.Time { return now }}
	for range 3 {
		tags, err := c.BucketTags(context.Background(), "b")
		if err != nil || tags["team"] != "a" {
			t.Fatalf("tags %v, %v", tags, err)
		}
	}
	if api.calls != 1 || api.owner != "111122223333" {
		t.Errorf("%d reads (owner %q), want 1 with the expected owner", api.calls, api.owner)
	}
	now = now.Add(time.Minute)
	if _, err := c.BucketTags(context.Background(), "b"); err != nil || api.calls != 2 {
		t.Errorf("after the TTL: %d reads, %v", api.calls, err)
	}
	if tags, err := c.BucketTags(context.Background(), "untagged"); err != nil || len(tags) != 0 {
		t.Errorf("NoSuchTagSet is no tags: %v, %v", tags, err)
	}
	api.err = errors.New("AccessDenied")
	now = now.Add(time.Minute)
	if _, err := c.BucketTags(context.Background(), "b"); err == nil {
		t.Error("a failed read must be an error, not an empty tag set")
	}
}
