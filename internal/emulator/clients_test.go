package emulator_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
)

// queryCall makes one signed SQS query-protocol request, as the AWS CLI
// before 2024 and boto3 do: a form-encoded POST, an XML answer.
func queryCall(t *testing.T, e *emutest.Env, form url.Values) (int, string) {
	t.Helper()
	form.Set("Version", "2012-11-05")
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, e.Emu.URL()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds, _ := e.Cfg.Credentials.Retrieve(context.Background())
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sqs", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// SQS's query protocol (SQS Developer Guide, "Making query API
// requests"): every operation the JSON protocol serves, with XML answers
// and the query protocol's error codes.
func TestSQSQueryProtocol(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	code, body := queryCall(t, e, url.Values{"Action": {"CreateQueue"}, "QueueName": {"legacy"},
		"Attribute.1.Name": {"VisibilityTimeout"}, "Attribute.1.Value": {"7"}})
	var created struct {
		QueueURL string `xml:"CreateQueueResult>QueueUrl"`
	}
	if err := xml.Unmarshal([]byte(body), &created); code != 200 || err != nil || !strings.HasSuffix(created.QueueURL, "/legacy") {
		t.Fatalf("CreateQueue: %d %s", code, body)
	}
	q := created.QueueURL
	if code, body = queryCall(t, e, url.Values{"Action": {"SendMessage"}, "QueueUrl": {q}, "MessageBody": {"hello <world>"},
		"MessageAttribute.1.Name": {"k"}, "MessageAttribute.1.Value.DataType": {"String"}, "MessageAttribute.1.Value.StringValue": {"v"}}); code != 200 ||
		!strings.Contains(body, "<MD5OfMessageBody>") || !strings.Contains(body, "<MD5OfMessageAttributes>") {
		t.Errorf("SendMessage: %d %s", code, body)
	}
	if code, body = queryCall(t, e, url.Values{"Action": {"SendMessageBatch"}, "QueueUrl": {q},
		"SendMessageBatchRequestEntry.1.Id": {"a"}, "SendMessageBatchRequestEntry.1.MessageBody": {"one"},
		"SendMessageBatchRequestEntry.2.Id": {"b"}, "SendMessageBatchRequestEntry.2.MessageBody": {"two"}}); code != 200 ||
		strings.Count(body, "<SendMessageBatchResultEntry>") != 2 {
		t.Errorf("SendMessageBatch: %d %s", code, body)
	}
	code, body = queryCall(t, e, url.Values{"Action": {"ReceiveMessage"}, "QueueUrl": {q}, "MaxNumberOfMessages": {"10"},
		"AttributeName.1": {"All"}, "MessageAttributeName.1": {"All"}})
	var received struct {
		Messages []struct {
			Body          string `xml:"Body"`
			ReceiptHandle string `xml:"ReceiptHandle"`
			Attributes    []struct {
				Name, Value string
			} `xml:"Attribute"`
			MessageAttributes []struct {
				Name  string
				Value struct{ StringValue, DataType string }
			} `xml:"MessageAttribute"`
		} `xml:"ReceiveMessageResult>Message"`
	}
	if err := xml.Unmarshal([]byte(body), &received); code != 200 || err != nil || len(received.Messages) != 3 {
		t.Fatalf("ReceiveMessage: %d %s", code, body)
	}
	var sawAttr bool
	for _, m := range received.Messages {
		if m.Body == "hello <world>" && len(m.MessageAttributes) == 1 && m.MessageAttributes[0].Value.StringValue == "v" && len(m.Attributes) > 0 {
			sawAttr = true
		}
	}
	if !sawAttr {
		t.Errorf("the message with attributes did not come back whole: %s", body)
	}
	if code, body = queryCall(t, e, url.Values{"Action": {"DeleteMessage"}, "QueueUrl": {q}, "ReceiptHandle": {received.Messages[0].ReceiptHandle}}); code != 200 ||
		!strings.Contains(body, "<DeleteMessageResponse") {
		t.Errorf("DeleteMessage: %d %s", code, body)
	}
	if code, body = queryCall(t, e, url.Values{"Action": {"GetQueueAttributes"}, "QueueUrl": {q}, "AttributeName.1": {"VisibilityTimeout"}}); code != 200 ||
		!strings.Contains(body, "<Attribute><Name>VisibilityTimeout</Name><Value>7</Value></Attribute>") {
		t.Errorf("GetQueueAttributes: %d %s", code, body)
	}
	if code, body = queryCall(t, e, url.Values{"Action": {"ListQueues"}}); code != 200 || !strings.Contains(body, "<QueueUrl>"+q+"</QueueUrl>") {
		t.Errorf("ListQueues: %d %s", code, body)
	}
	code, body = queryCall(t, e, url.Values{"Action": {"GetQueueUrl"}, "QueueName": {"missing"}})
	var failure struct {
		Type string `xml:"Error>Type"`
		Code string `xml:"Error>Code"`
	}
	if err := xml.Unmarshal([]byte(body), &failure); code != 400 || err != nil || failure.Code != "AWS.SimpleQueueService.NonExistentQueue" || failure.Type != "Sender" {
		t.Errorf("a missing queue: %d %s", code, body)
	}
}

// ListObjects (version 1) and DeleteObjects, which `aws s3api list-objects`
// and `aws s3 rm --recursive` use; every S3 answer carries
// x-amz-request-id and x-amz-id-2.
func TestListObjectsV1DeleteObjectsAndRequestIDs(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	var missingIDs []string
	cfg := e.Cfg.Copy()
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("request-ids", func(ctx context.Context, in middleware.DeserializeInput,
			next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && (resp.Header.Get("x-amz-request-id") == "" || resp.Header.Get("x-amz-id-2") == "") {
				missingIDs = append(missingIDs, resp.Request.Method+" "+resp.Request.URL.String())
			}
			return out, md, err
		}), middleware.After)
	})
	c := s3.NewFromConfig(cfg, emulator.PathStyle)
	e.Bucket(t, "listing", false)
	for _, k := range []string{"a/1", "a/2", "b/1", "c"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("listing"), Key: aws.String(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("listing"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)})
	if err != nil || len(page.CommonPrefixes) != 2 || !aws.ToBool(page.IsTruncated) || aws.ToString(page.NextMarker) != "b/" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	page, err = c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("listing"), Delimiter: aws.String("/"), Marker: page.NextMarker})
	if err != nil || len(page.Contents) != 1 || aws.ToString(page.Contents[0].Key) != "c" || aws.ToBool(page.IsTruncated) {
		t.Fatalf("second page: %+v %v", page, err)
	}
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("listing"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("a/1")}, {Key: aws.String("a/2")}, {Key: aws.String("never")}}}})
	if err != nil || len(del.Deleted) != 3 || len(del.Errors) != 0 {
		t.Fatalf("DeleteObjects: %+v %v", del, err)
	}
	all, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("listing")})
	if err != nil || len(all.Contents) != 2 {
		t.Errorf("after DeleteObjects: %+v %v", all, err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("listing"), Key: aws.String("a/1")}); status(err) != 404 {
		t.Errorf("a deleted key: %v", err)
	}
	if len(missingIDs) > 0 {
		t.Errorf("answers without x-amz-request-id and x-amz-id-2: %v", missingIDs)
	}
}
