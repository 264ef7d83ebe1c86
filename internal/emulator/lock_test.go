package emulator_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestReadsAndWritesDoNotDeadlock: HeadObject authorizes its retention
// and legal hold headers, reading the bucket policy, while writes to the
// same account wait for the store's lock. The policy read once took the
// store's read lock a second time, which deadlocks as soon as a writer
// waits between the two; bounded by count and by a deadline.
func TestReadsAndWritesDoNotDeadlock(t *testing.T) {
	o := startOrg(t)
	c := root(o, memberA).s3
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("locks")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("locks"), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 150 {
				var err error
				if w%3 == 0 {
					_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("locks"), Key: aws.String("k"), Body: strings.NewReader("y")})
				} else {
					_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("locks"), Key: aws.String("k")})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent HeadObject and PutObject: %v (a deadlock ends at the deadline)", err)
	}
}
