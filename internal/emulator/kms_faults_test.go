package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

func TestKMSKeysAndAliases(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	created, err := e.kms.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("target")})
	if err != nil {
		t.Fatal(err)
	}
	md := created.KeyMetadata
	if !emulator.KeyARNPattern.MatchString(aws.ToString(md.Arn)) || aws.ToString(md.AWSAccountId) != "111122223333" || md.KeyState != kmstypes.KeyStateEnabled {
		t.Errorf("CreateKey metadata %+v", md)
	}
	if _, err := e.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/s3rekey"), TargetKeyId: md.KeyId}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{aws.ToString(md.KeyId), aws.ToString(md.Arn), "alias/s3rekey", "arn:aws:kms:us-east-1:111122223333:alias/s3rekey"} {
		out, err := e.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
		if err != nil || aws.ToString(out.KeyMetadata.Arn) != aws.ToString(md.Arn) {
			t.Errorf("DescribeKey(%s): %v %v", ref, out, err)
		}
	}
	_, err = e.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/none")})
	var notFound *kmstypes.NotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("unknown alias: %v, want NotFoundException", err)
	}
	_, err = e.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/s3rekey"), TargetKeyId: md.KeyId})
	var exists *kmstypes.AlreadyExistsException
	if !errors.As(err, &exists) {
		t.Errorf("duplicate alias: %v", err)
	}
	aliases, err := e.kms.ListAliases(ctx, &kms.ListAliasesInput{KeyId: md.KeyId})
	if err != nil || len(aliases.Aliases) != 1 || aws.ToString(aliases.Aliases[0].AliasName) != "alias/s3rekey" {
		t.Errorf("ListAliases: %+v %v", aliases, err)
	}
	for range 3 {
		mustKey(t, e)
	}
	var ids []string
	p := kms.NewListKeysPaginator(e.kms, &kms.ListKeysInput{Limit: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			ids = append(ids, aws.ToString(k.KeyId))
		}
	}
	if len(ids) != 4 || ids[0] != aws.ToString(md.KeyId) {
		t.Errorf("ListKeys paged: %v", ids)
	}
}

func TestFaultsLatencyAndCounters(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "faulty", false)
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("faulty"), Key: aws.String("k")}, "x")

	f, err := emulator.ParseFault("s3:HeadObject=SlowDown:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.emu.SetFault(f); err != nil {
		t.Fatal(err)
	}
	_, err = e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("faulty"), Key: aws.String("k")})
	if httpStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("injected SlowDown on HEAD: %v, want 503", err)
	}
	if !retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool() {
		t.Errorf("the SDK does not see the injected fault as retryable: %v", err)
	}
	if _, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("faulty"), Key: aws.String("k")}); err != nil {
		t.Errorf("a fault on HeadObject failed GetObject: %v", err)
	}
	f.Rate = 0
	if err := e.emu.SetFault(f); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("faulty"), Key: aws.String("k")}); err != nil {
		t.Errorf("after removing the fault: %v", err)
	}
	throttle, _ := emulator.ParseFault("sqs:*=ThrottlingException:1")
	if err := e.emu.SetFault(throttle); err != nil {
		t.Fatal(err)
	}
	_, err = e.sqs.ListQueues(ctx, &sqs.ListQueuesInput{})
	if apiCode(err) != "ThrottlingException" || !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		t.Errorf("SQS throttling: %v", err)
	}
	e.emu.ClearFaults()

	lat, err := emulator.ParseLatency("s3:HeadObject=150ms")
	if err != nil {
		t.Fatal(err)
	}
	e.emu.SetLatency(lat)
	began := time.Now()
	if _, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("faulty"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 150*time.Millisecond {
		t.Errorf("HEAD took %v with 150ms injected latency", d)
	}

	if n := e.emu.CountOf("s3", "HeadObject", "faulty"); n != 3 {
		t.Errorf("HeadObject count %d, want 3 (faulted requests count too)", n)
	}
	resp, err := http.Get(e.emu.URL() + "/_emulator/counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var counts []emulator.Count
	if err := json.NewDecoder(resp.Body).Decode(&counts); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range counts {
		if c.Service == "s3" && c.Operation == "PutObject" && c.Bucket == "faulty" && c.N == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("admin counts lack s3 PutObject on faulty: %+v", counts)
	}
	reset, err := http.Post(e.emu.URL()+"/_emulator/counts/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	reset.Body.Close()
	if len(e.emu.Counts()) != 0 {
		t.Errorf("counts after reset: %+v", e.emu.Counts())
	}
}

func TestParseFlagsRejectBadInput(t *testing.T) {
	for _, s := range []string{"s3:Put=SlowDown", "s3=SlowDown:0.1", "ec2:X=SlowDown:0.1", "s3:X=Teapot:0.1", "s3:X=SlowDown:2"} {
		if _, err := emulator.ParseFault(s); err == nil {
			t.Errorf("ParseFault(%q) accepted", s)
		}
	}
	for _, s := range []string{"s3:*", "s3:*=fast", "s3:*=-1s"} {
		if _, err := emulator.ParseLatency(s); err == nil {
			t.Errorf("ParseLatency(%q) accepted", s)
		}
	}
	for _, s := range []string{"bucket", "=q", "b=bad queue name"} {
		if _, err := emulator.ParseEventBridgeRule(s); err == nil {
			t.Errorf("ParseEventBridgeRule(%q) accepted", s)
		}
	}
	r, err := emulator.ParseEventBridgeRule("inventory:manifest.checksum=control")
	if err != nil || r != (emulator.EventBridgeRule{Bucket: "inventory", KeySuffix: "manifest.checksum", Queue: "control"}) {
		t.Errorf("ParseEventBridgeRule: %+v %v", r, err)
	}
	if _, err := emulator.Start(context.Background(), emulator.Options{Addr: "0.0.0.0:0"}); err == nil {
		t.Error("emulator listened on a non-loopback address")
	}
}

// TestConcurrentUse drives S3, SQS and KMS from many goroutines at once;
// run under -race it checks the emulator's locking.
func TestConcurrentUse(t *testing.T) {
	e := start(t, emulator.Options{})
	ctx := context.Background()
	mustBucket(t, e, "busy", false)
	q := mustQueue(t, e, "busy", nil)
	keyARN := mustKey(t, e)
	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*3)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				key := fmt.Sprintf("w%d/o%d", w, i)
				if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("busy"), Key: aws.String(key), Body: strings.NewReader(key)}); err != nil {
					errs <- err
					continue
				}
				if _, err := e.s3.UpdateObjectEncryption(ctx, uoeInput("busy", key, keyARN)); err != nil {
					errs <- err
				}
				if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(key)}); err != nil {
					errs <- err
				}
			}
		}()
	}
	received := make(chan int)
	go func() {
		n := 0
		deadline := time.Now().Add(20 * time.Second)
		for n < workers*perWorker && time.Now().Before(deadline) {
			out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				errs <- err
				break
			}
			for _, m := range out.Messages {
				if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: m.ReceiptHandle}); err != nil {
					errs <- err
				}
				n++
			}
		}
		received <- n
	}()
	wg.Wait()
	n := <-received
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n != workers*perWorker {
		t.Errorf("received %d messages, want %d", n, workers*perWorker)
	}
	list, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("busy")})
	if err != nil {
		t.Fatal(err)
	}
	if int(aws.ToInt32(list.KeyCount)) != workers*perWorker {
		t.Errorf("%d objects listed, want %d", aws.ToInt32(list.KeyCount), workers*perWorker)
	}
	for _, o := range list.Contents {
		if st, _ := e.emu.Inspect("busy", aws.ToString(o.Key), ""); st.KMSKeyARN != keyARN {
			t.Errorf("%s not updated: %s", aws.ToString(o.Key), st.Encryption)
		}
	}
}

func TestPublishInventory(t *testing.T) {
	e := start(t, emulator.Options{EventBridgeRules: []emulator.EventBridgeRule{{Bucket: "inv", KeySuffix: "manifest.checksum", Queue: "control"}}})
	ctx := context.Background()
	e.Versioned(t, "src")
	mustBucket(t, e, "inv", false)
	q := mustQueue(t, e, "control", nil)
	if _, err := e.s3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("inv"),
		NotificationConfiguration: &s3types.NotificationConfiguration{EventBridgeConfiguration: &s3types.EventBridgeConfiguration{}}}); err != nil {
		t.Fatal(err)
	}
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("a")}, "1")
	put(t, e, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("a")}, "2")
	resp, err := http.Post(e.emu.URL()+"/_emulator/inventory?source=src&destination=inv&format=CSV", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Manifest string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || !strings.HasSuffix(out.Manifest, "/manifest.json") {
		t.Fatalf("admin inventory: %+v %v", out, err)
	}
	// Exactly one event: manifest.checksum, the last file written.
	bodies := receiveAll(t, e, q.url, 1)
	if !strings.Contains(bodies[0], "manifest.checksum") {
		t.Errorf("event %s", bodies[0])
	}
	if extra := receiveAll(t, e, q.url, 0); len(extra) != 0 {
		t.Errorf("more events than the checksum's: %v", extra)
	}
}
