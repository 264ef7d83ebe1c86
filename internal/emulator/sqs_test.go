package emulator_test

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

func queueCounts(t *testing.T, e *env, url string) (visible, inflight, delayed int) {
	t.Helper()
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"}})
	if err != nil {
		t.Fatal(err)
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	return atoi(out.Attributes["ApproximateNumberOfMessages"]), atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"]), atoi(out.Attributes["ApproximateNumberOfMessagesDelayed"])
}

func TestSQSRedriveToDLQAndBack(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	dlq := mustQueue(t, e, "work-dlq", nil)
	work := mustQueue(t, e, "work", map[string]string{
		"VisibilityTimeout": "0",
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"3"}`, dlq.arn),
	})
	if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(work.url), MessageBody: aws.String("poison")}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(work.url),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"ApproximateReceiveCount"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 1 || out.Messages[0].Attributes["ApproximateReceiveCount"] != strconv.Itoa(i) {
			t.Fatalf("receive %d: %+v", i, out.Messages)
		}
	}
	out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(work.url)})
	if err != nil || len(out.Messages) != 0 {
		t.Fatalf("fourth receive: %+v %v; want the message moved to the DLQ", out.Messages, err)
	}
	got, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq.url),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
	if err != nil || len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != "poison" ||
		got.Messages[0].Attributes["DeadLetterQueueSourceArn"] != work.arn {
		t.Fatalf("DLQ: %+v %v", got.Messages, err)
	}
	if _, err := e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(dlq.url),
		ReceiptHandle: got.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	task, err := e.sqs.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(dlq.arn)})
	if err != nil || aws.ToString(task.TaskHandle) == "" {
		t.Fatalf("StartMessageMoveTask: %v", err)
	}
	tasks, err := e.sqs.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(dlq.arn)})
	if err != nil || len(tasks.Results) != 1 || tasks.Results[0].ApproximateNumberOfMessagesMoved != 1 || aws.ToString(tasks.Results[0].Status) != "COMPLETED" {
		t.Fatalf("ListMessageMoveTasks: %+v %v", tasks, err)
	}
	back, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(work.url)})
	if err != nil || len(back.Messages) != 1 || aws.ToString(back.Messages[0].Body) != "poison" {
		t.Fatalf("after redrive: %+v %v", back.Messages, err)
	}
	_, err = e.sqs.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(work.arn)})
	if apiCode(err) != "InvalidParameterValue" {
		t.Errorf("move task from a queue that is no DLQ: %v", err)
	}
}

func TestSQSVisibilityDeleteAndStaleReceipts(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	q := mustQueue(t, e, "q", map[string]string{"VisibilityTimeout": "30"})
	if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String("m")}); err != nil {
		t.Fatal(err)
	}
	first, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url)})
	if err != nil || len(first.Messages) != 1 {
		t.Fatal(first, err)
	}
	if v, inflight, _ := queueCounts(t, e, q.url); v != 0 || inflight != 1 {
		t.Errorf("after receive: visible %d in flight %d", v, inflight)
	}
	if again, _ := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url)}); len(again.Messages) != 0 {
		t.Fatal("an invisible message was delivered")
	}
	if _, err := e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q.url),
		ReceiptHandle: first.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	second, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url)})
	if err != nil || len(second.Messages) != 1 {
		t.Fatal("message not visible again after ChangeMessageVisibility(0)")
	}
	// A stale receipt handle deletes nothing, as in SQS.
	if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: first.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if _, inflight, _ := queueCounts(t, e, q.url); inflight != 1 {
		t.Error("a stale receipt handle deleted the message")
	}
	if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: second.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if v, inflight, _ := queueCounts(t, e, q.url); v+inflight != 0 {
		t.Error("message still there after delete")
	}
	_, err = e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String("garbage")})
	var invalid *sqstypes.ReceiptHandleIsInvalid
	if !errors.As(err, &invalid) {
		t.Errorf("malformed receipt handle: %v", err)
	}
	_, err = e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(strings.Replace(q.url, "/q", "/missing", 1)), MessageBody: aws.String("m")})
	var missing *sqstypes.QueueDoesNotExist
	if !errors.As(err, &missing) {
		t.Errorf("send to a missing queue: %v, want QueueDoesNotExist", err)
	}
}

func TestSQSLongPollingAndDelays(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	q := mustQueue(t, e, "lp", nil)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String("late")})
	}()
	out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), WaitTimeSeconds: 5})
	if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "late" {
		t.Fatalf("long poll: %+v %v", out, err)
	}
	if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String("delayed"), DelaySeconds: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, delayed := queueCounts(t, e, q.url); delayed != 1 {
		t.Errorf("delayed count %d, want 1", delayed)
	}
	if now, _ := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url)}); len(now.Messages) != 0 {
		t.Error("a delayed message was delivered at once")
	}
	later, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), WaitTimeSeconds: 3})
	if err != nil || len(later.Messages) != 1 {
		t.Errorf("delayed message after its delay: %+v %v", later, err)
	}
}

// md5OfAttributes is SQS's documented digest, written here independently
// of the emulator.
func md5OfAttributes(attrs map[string]sqstypes.MessageAttributeValue, names []string) string {
	h := md5.New()
	lv := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, name := range names {
		a := attrs[name]
		lv([]byte(name))
		lv([]byte(aws.ToString(a.DataType)))
		if a.BinaryValue != nil {
			h.Write([]byte{2})
			lv(a.BinaryValue)
		} else {
			h.Write([]byte{1})
			lv([]byte(aws.ToString(a.StringValue)))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestSQSBatchesAndAttributes(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	q := mustQueue(t, e, "batch", nil)
	attrs := map[string]sqstypes.MessageAttributeValue{
		"reason":  {DataType: aws.String("String"), StringValue: aws.String("SlowDown")},
		"attempt": {DataType: aws.String("Number"), StringValue: aws.String("3")},
		"blob":    {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
	}
	var entries []sqstypes.SendMessageBatchRequestEntry
	for i := range 10 {
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprintf("e%d", i)), MessageBody: aws.String(fmt.Sprintf("body %d", i)), MessageAttributes: attrs})
	}
	out, err := e.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
	if err != nil || len(out.Successful) != 10 || len(out.Failed) != 0 {
		t.Fatalf("batch of 10: %+v %v", out, err)
	}
	wantMD5 := md5OfAttributes(attrs, []string{"attempt", "blob", "reason"})
	if got := aws.ToString(out.Successful[0].MD5OfMessageAttributes); got != wantMD5 {
		t.Errorf("MD5OfMessageAttributes %s, want %s", got, wantMD5)
	}
	_, err = e.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: append(entries, entries[0])})
	var tooMany *sqstypes.TooManyEntriesInBatchRequest
	if !errors.As(err, &tooMany) {
		t.Errorf("batch of 11: %v", err)
	}
	_, err = e.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: []sqstypes.SendMessageBatchRequestEntry{entries[0], entries[0]}})
	var notDistinct *sqstypes.BatchEntryIdsNotDistinct
	if !errors.As(err, &notDistinct) {
		t.Errorf("duplicate batch ids: %v", err)
	}
	mixed, err := e.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("ok"), MessageBody: aws.String("fine")},
		{Id: aws.String("bad"), MessageBody: aws.String("fine"), DelaySeconds: 901},
	}})
	if err != nil || len(mixed.Successful) != 1 || len(mixed.Failed) != 1 || aws.ToString(mixed.Failed[0].Id) != "bad" {
		t.Errorf("partly failing batch: %+v %v", mixed, err)
	}
	recv, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
	if err != nil || len(recv.Messages) != 10 {
		t.Fatalf("receive 10: %d %v", len(recv.Messages), err)
	}
	m := recv.Messages[0]
	if aws.ToString(m.MessageAttributes["reason"].StringValue) != "SlowDown" || aws.ToString(m.MD5OfMessageAttributes) != wantMD5 {
		t.Errorf("received attributes %+v md5 %s", m.MessageAttributes, aws.ToString(m.MD5OfMessageAttributes))
	}
	var del []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range recv.Messages {
		del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
	}
	dout, err := e.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: del})
	if err != nil || len(dout.Successful) != 10 {
		t.Fatalf("delete batch: %+v %v", dout, err)
	}
	if _, err := e.sqs.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(q.url)}); err != nil {
		t.Fatal(err)
	}
	if v, inflight, delayed := queueCounts(t, e, q.url); v+inflight+delayed != 0 {
		t.Errorf("after purge: %d %d %d", v, inflight, delayed)
	}
	list, err := e.sqs.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("bat")})
	if err != nil || len(list.QueueUrls) != 1 || list.QueueUrls[0] != q.url {
		t.Errorf("ListQueues: %+v %v", list, err)
	}
	if u, err := e.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("batch")}); err != nil || aws.ToString(u.QueueUrl) != q.url {
		t.Errorf("GetQueueUrl: %v %v", u, err)
	}
	_, err = e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("batch"), Attributes: map[string]string{"VisibilityTimeout": "99"}})
	var exists *sqstypes.QueueNameExists
	if !errors.As(err, &exists) {
		t.Errorf("re-create with other attributes: %v", err)
	}
}

func TestBilledSQSRequestsCountChunks(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	q := mustQueue(t, e, "billing", nil)
	e.emu.ResetCounts()
	big := strings.Repeat("x", 100<<10) // two 64 KiB chunks
	if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(big)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String("small")}); err != nil {
		t.Fatal(err)
	}
	if got := e.emu.BilledSQSRequests(); got != 3 {
		t.Errorf("billed %d after a 100 KiB and a small send, want 3", got)
	}
	if _, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), MaxNumberOfMessages: 10}); err != nil {
		t.Fatal(err)
	}
	if got := e.emu.BilledSQSRequests(); got != 5 {
		t.Errorf("billed %d after receiving both, want 5", got)
	}
}

func TestDuplicateDeliveryAndNoOpUpdateCounter(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	q := mustQueue(t, e, "dup", map[string]string{"VisibilityTimeout": "30"})
	e.emu.SetDuplicateDelivery(1)
	if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String("once")}); err != nil {
		t.Fatal(err)
	}
	receiveAndDelete := func() string {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
		if err != nil || len(out.Messages) == 0 {
			return ""
		}
		if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		return out.Messages[0].Attributes["ApproximateReceiveCount"]
	}
	if first, second, third := receiveAndDelete(), receiveAndDelete(), receiveAndDelete(); first != "1" || second != "2" || third != "" {
		t.Errorf("receive counts %q, %q, %q; want 1, then the duplicate 2, then nothing", first, second, third)
	}

	mustBucket(t, e, "noop", false)
	key := mustKey(t, e)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("noop"), Key: aws.String("k")}, "x")
	for range 2 {
		if _, err := e.s3.UpdateObjectEncryption(ctx, uoeInput("noop", "k", key)); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.emu.CountOf("s3", emulator.UOEOnCompliant, "noop"); n != 1 {
		t.Errorf("%d updates counted on an already compliant object, want 1 (the second)", n)
	}
}
