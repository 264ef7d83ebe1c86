package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func TestSplit(t *testing.T) {
	msgs := make([]Message, 25)
	if got := split(msgs); len(got) != 3 || len(got[0]) != 10 || len(got[2]) != 5 {
		t.Errorf("25 small messages: %v", got)
	}
	big := strings.Repeat("x", 100<<10)
	msgs = []Message{{Body: big}, {Body: big}, {Body: big}, {Body: strings.Repeat("y", 300<<10)}, {Body: "z"}}
	got := split(msgs)
	want := [][]int{{0, 1}, {2}, {3}, {4}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("byte-limited split %v, want %v", got, want)
	}
}

// fakeBatchAPI fails each entry the first failures[id] times.
type fakeBatchAPI struct {
	mu       sync.Mutex
	failures map[string]int
	calls    int
	sent     []string
	callErr  error
}

func (f *fakeBatchAPI) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.callErr != nil {
		return nil, f.callErr
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		if f.failures[body] > 0 {
			f.failures[body]--
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
			continue
		}
		if body == "poison" {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InvalidMessageContents"), SenderFault: true})
			continue
		}
		f.sent = append(f.sent, body)
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func TestSendRetriesFailedEntries(t *testing.T) {
	api := &fakeBatchAPI{failures: map[string]int{"m3": 2, "m7": 1}}
	s := &Sender{API: api, Backoff: 1}
	var msgs []Message
	for i := range 12 {
		msgs = append(msgs, Message{Body: "m" + strconv.Itoa(i)})
	}
	msgs = append(msgs, Message{Body: "poison"})
	errs := s.Send(context.Background(), "q", msgs)
	for i, err := range errs[:12] {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	var se *SendError
	if !errors.As(errs[12], &se) || !se.SenderFault {
		t.Errorf("poison message: %v, want a sender-fault SendError", errs[12])
	}
	if len(api.sent) != 12 {
		t.Errorf("sent %d messages, want 12", len(api.sent))
	}
}

func TestSendGivesUpAfterAttempts(t *testing.T) {
	api := &fakeBatchAPI{failures: map[string]int{"stuck": 100}}
	s := &Sender{API: api, Attempts: 3, Backoff: 1}
	errs := s.Send(context.Background(), "q", []Message{{Body: "stuck"}, {Body: "fine"}})
	if errs[0] == nil || errs[1] != nil {
		t.Errorf("errs %v", errs)
	}
	if api.calls != 3 {
		t.Errorf("%d calls, want 3 attempts", api.calls)
	}
	api = &fakeBatchAPI{callErr: errors.New("connection refused")}
	s = &Sender{API: api, Attempts: 2, Backoff: 1}
	if errs := s.Send(context.Background(), "q", []Message{{Body: "a"}}); errs[0] == nil || !strings.Contains(errs[0].Error(), "connection refused") {
		t.Errorf("whole-call failure: %v", errs)
	}
}
