package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SendMessageBatchAPI is the one SQS call the sender makes.
type SendMessageBatchAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ SendMessageBatchAPI = (*sqs.Client)(nil)

// Limits of one SendMessageBatch call. The byte limit is SQS's classic
// 256 KiB, which every queue accepts whatever its MaximumMessageSize.
const (
	MaxBatchEntries = 10
	MaxBatchBytes   = 256 << 10
)

// Message is one message to send.
type Message struct {
	Body         string
	DelaySeconds int32
	// Attributes are String message attributes (for example the reason a
	// message was dead-lettered).
	Attributes map[string]string
}

func (m Message) size() int {
	n := len(m.Body)
	for k, v := range m.Attributes {
		n += len(k) + len("String") + len(v)
	}
	return n
}

// Sender sends batches. The zero value is not usable: set API.
type Sender struct {
	API SendMessageBatchAPI
	// Parallel is the number of batches in flight (default 8).
	Parallel int
	// Attempts bounds the tries of an entry SQS failed (default 5).
	Attempts int
	// Backoff is the first pause before a retry, doubled each time
	// (default 100ms).
	Backoff time.Duration
}

// SendError is why one message could not be sent.
type SendError struct {
	Code        string
	Message     string
	SenderFault bool
}

func (e *SendError) Error() string { return e.Code + ": " + e.Message }

// Send sends every message to queueURL and returns one error per message,
// nil for those sent. It returns early only when ctx ends.
func (s *Sender) Send(ctx context.Context, queueURL string, msgs []Message) []error {
	errs := make([]error, len(msgs))
	batches := split(msgs)
	parallel := s.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, batch := range batches {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.sendBatch(ctx, queueURL, msgs, batch, errs)
		}()
	}
	wg.Wait()
	return errs
}

// split groups message indexes into batches within the entry and byte
// limits; a message larger than the byte limit travels alone.
func split(msgs []Message) [][]int {
	var out [][]int
	var cur []int
	size := 0
	for i, m := range msgs {
		n := m.size()
		if len(cur) > 0 && (len(cur) == MaxBatchEntries || size+n > MaxBatchBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// sendBatch sends one batch, retrying the entries that failed for reasons
// that pass (not the sender's fault) and whole calls that failed.
func (s *Sender) sendBatch(ctx context.Context, queueURL string, msgs []Message, batch []int, errs []error) {
	attempts := s.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	backoff := s.Backoff
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	pending := batch
	for try := 1; len(pending) > 0; try++ {
		entries := make([]types.SendMessageBatchRequestEntry, len(pending))
		for j, i := range pending {
			m := msgs[i]
			e := types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(m.Body), DelaySeconds: m.DelaySeconds}
			if len(m.Attributes) > 0 {
				e.MessageAttributes = map[string]types.MessageAttributeValue{}
				for k, v := range m.Attributes {
					e.MessageAttributes[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
				}
			}
			entries[j] = e
		}
		out, err := s.API.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
		var retry []int
		if err != nil {
			for _, i := range pending {
				errs[i] = fmt.Errorf("send to %s: %w", queueURL, err)
			}
			retry = pending
		} else {
			for _, ok := range out.Successful {
				if i, convErr := strconv.Atoi(aws.ToString(ok.Id)); convErr == nil && i < len(errs) {
					errs[i] = nil
				}
			}
			for _, f := range out.Failed {
				i, convErr := strconv.Atoi(aws.ToString(f.Id))
				if convErr != nil || i >= len(errs) {
					continue
				}
				errs[i] = &SendError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault}
				if !f.SenderFault {
					retry = append(retry, i)
				}
			}
		}
		if len(retry) == 0 || try >= attempts || ctx.Err() != nil {
			return
		}
		pending = retry
		select {
		case <-time.After(backoff << (try - 1)):
		case <-ctx.Done():
			for _, i := range pending {
				errs[i] = errors.Join(errs[i], ctx.Err())
			}
			return
		}
	}
}
