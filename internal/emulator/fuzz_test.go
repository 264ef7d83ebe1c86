package emulator_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

const fuzzAuth = "AWS4-HMAC-SHA256 Credential=AKIAEMULATOR0000TEST/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"

// fuzzEmulator has a versioned bucket with an object of two versions, so
// that fuzzed requests reach deep into the handlers. Each input gets a fresh
// one: state piling up across inputs would measure the pile, not the input.
func fuzzEmulator(t testing.TB) *emulator.Emulator {
	emu, err := emulator.New(emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	emu.SetURL("http://127.0.0.1:1")
	for _, r := range []struct{ method, path, body string }{
		{"PUT", "/fuzz", ""},
		{"PUT", "/fuzz/key", "data"},
		{"PUT", "/fuzz?versioning", "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"},
		{"PUT", "/fuzz/key", "more"},
	} {
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
		req.Header.Set("Authorization", fuzzAuth)
		emu.ServeHTTP(httptest.NewRecorder(), req)
	}
	return emu
}

// FuzzS3Request sends arbitrary S3 requests: the emulator must answer each
// with a valid HTTP status and never panic.
func FuzzS3Request(f *testing.F) {
	seeds := []struct{ method, target, body, copySource string }{
		{"PUT", "/fuzz/key?encryption", `<ObjectEncryption><SSE-KMS><KMSKeyArn>arn:aws:kms:us-east-1:111122223333:key/x</KMSKeyArn><BucketKeyEnabled>maybe</BucketKeyEnabled></SSE-KMS></ObjectEncryption>`, ""},
		{"PUT", "/fuzz/key?encryption&versionId=null", `<ObjectEncryption><DSSE-KMS/></ObjectEncryption>`, ""},
		{"GET", "/fuzz?list-type=2&delimiter=/&max-keys=1&continuation-token=%%%", "", ""},
		{"GET", "/fuzz?versions&key-marker=key&version-id-marker=null", "", ""},
		{"PUT", "/fuzz/copy", "", "/fuzz/key?versionId=zzz"},
		{"PUT", "/fuzz?notification", `<NotificationConfiguration><QueueConfiguration><Queue>arn:aws:sqs:us-east-1:111122223333:q</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>`, ""},
		{"PUT", "/fuzz/key?retention", `<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2099-01-01T00:00:00Z</RetainUntilDate></Retention>`, ""},
		{"PUT", "/fuzz?encryption", `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`, ""},
		{"GET", "/fuzz/key", "", ""},
		{"DELETE", "/fuzz/key?versionId=null", "", ""},
		{"HEAD", "/%zz/key", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.body, s.copySource)
	}
	f.Fuzz(func(t *testing.T, method, target, body, copySource string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return
		}
		switch method {
		case "GET", "PUT", "HEAD", "DELETE", "POST":
		default:
			return
		}
		req, err := http.NewRequest(method, "http://127.0.0.1"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", fuzzAuth)
		if copySource != "" && !strings.ContainsAny(copySource, "\r\n") {
			req.Header.Set("X-Amz-Copy-Source", copySource)
		}
		rec := httptest.NewRecorder()
		fuzzEmulator(t).ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("%s %s: status %d", method, target, rec.Code)
		}
	})
}

// FuzzJSONRequest sends arbitrary SQS and KMS bodies to every operation.
func FuzzJSONRequest(f *testing.F) {
	f.Add("AmazonSQS.CreateQueue", `{"QueueName":"q","Attributes":{"RedrivePolicy":"{\"deadLetterTargetArn\":\"x\",\"maxReceiveCount\":\"0\"}"}}`)
	f.Add("AmazonSQS.SendMessageBatch", `{"QueueUrl":"http://h/111122223333/q","Entries":[{"Id":"a","MessageBody":"x","DelaySeconds":-1}]}`)
	f.Add("AmazonSQS.ReceiveMessage", `{"QueueUrl":"http://h/111122223333/q","MaxNumberOfMessages":11}`)
	f.Add("AmazonSQS.DeleteMessageBatch", `{"QueueUrl":"http://h/111122223333/q","Entries":[{"Id":"a","ReceiptHandle":"#"}]}`)
	f.Add("AmazonSQS.StartMessageMoveTask", `{"SourceArn":"arn:aws:sqs:us-east-1:111122223333:q"}`)
	f.Add("TrentService.CreateAlias", `{"AliasName":"alias/a","TargetKeyId":"alias/a"}`)
	f.Add("TrentService.ListKeys", `{"Limit":1,"Marker":"-3"}`)
	f.Add("TrentService.DescribeKey", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/"}`)
	f.Fuzz(func(t *testing.T, target, body string) {
		if strings.ContainsAny(target, "\r\n") {
			return
		}
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("Authorization", strings.Replace(fuzzAuth, "/s3/", "/sqs/", 1))
		rec := httptest.NewRecorder()
		fuzzEmulator(t).ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("%s: status %d", target, rec.Code)
		}
	})
}

// FuzzParseFlags checks the flag parsers never panic and that what they
// accept is in range.
func FuzzParseFlags(f *testing.F) {
	f.Add("s3:UpdateObjectEncryption=SlowDown:0.05")
	f.Add("sqs:*=ThrottlingException:1")
	f.Add("inventory:manifest.checksum=control")
	f.Fuzz(func(t *testing.T, s string) {
		if fault, err := emulator.ParseFault(s); err == nil && (fault.Rate < 0 || fault.Rate > 1) {
			t.Fatalf("ParseFault(%q) accepted rate %v", s, fault.Rate)
		}
		if l, err := emulator.ParseLatency(s); err == nil && l.Delay < 0 {
			t.Fatalf("ParseLatency(%q) accepted %v", s, l.Delay)
		}
		_, _ = emulator.ParseEventBridgeRule(s)
	})
}
