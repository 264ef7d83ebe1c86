package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/encrypt"
)

// The tally counts objects, not attempts: a throttled or retried attempt
// is tried again and counted apart; an object out of attempts is counted
// once, failed, when it is dead-lettered.
func TestTallyCountsObjectsNotAttempts(t *testing.T) {
	tally := newTally()
	tally.addBatch(encrypt.Summary{Outcomes: map[string]int{"updated": 3, "retry: SlowDown": 5, "retry: InternalError": 1, "failed: access-denied": 2},
		DeadLetter: 3}) // the 2 failed, and 1 retry out of attempts
	tally.addBatch(encrypt.Summary{Outcomes: map[string]int{"updated": 4, "retry: ThrottlingException": 2}})
	s := tally.Snapshot()
	want := map[string]int64{"updated": 7, "failed: access-denied": 2, "failed: attempts-exhausted": 1}
	if len(s.Outcomes) != len(want) {
		t.Errorf("outcomes %v, want %v", s.Outcomes, want)
	}
	for k, v := range want {
		if s.Outcomes[k] != v {
			t.Errorf("%s: %d, want %d", k, s.Outcomes[k], v)
		}
	}
	if s.Total() != 10 || s.Throttled != 7 || s.Retries["retry: InternalError"] != 1 {
		t.Errorf("total %d (want 10), throttled %d (want 7), retries %v", s.Total(), s.Throttled, s.Retries)
	}
}

func TestTallyFailedJobs(t *testing.T) {
	tally := newTally()
	if _, failed := tally.JobFailed("lst-000000000001"); failed {
		t.Fatal("a job failed before any failure")
	}
	tally.addFailedJob("lst-000000000001", "NoSuchBucket")
	tally.addFailedJob("lst-000000000001", "a later delivery's reason")
	if reason, failed := tally.JobFailed("lst-000000000001"); !failed || reason != "NoSuchBucket" {
		t.Errorf("failed %v, reason %q; want the first reason", failed, reason)
	}
	if got := tally.Snapshot().FailedJobs; len(got) != 1 {
		t.Errorf("failed jobs %v", got)
	}
}

type redrivePolicy string

func (r redrivePolicy) GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return nil, errors.New("not asked")
}

func (r redrivePolicy) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"RedrivePolicy": string(r)}}, nil
}

// SQS writes maxReceiveCount as a number, and also as a string.
func TestMaxReceives(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   int
		err    bool
	}{
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:111122223333:dlq","maxReceiveCount":5}`, 5, false},
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:111122223333:dlq","maxReceiveCount":"25"}`, 25, false},
		{``, 0, false},
		{`{"maxReceiveCount":"five"}`, 0, true},
	} {
		got, err := MaxReceives(context.Background(), redrivePolicy(tc.policy), "q")
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: %d, %v; want %d (error %v)", tc.policy, got, err, tc.want, tc.err)
		}
	}
}
