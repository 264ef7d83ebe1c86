package sqs

import (
	"encoding/json"
	"net/url"
	"testing"
)

// FuzzQueryInput: query-protocol forms come from any client: every form
// becomes a JSON object (or an error), never a panic.
func FuzzQueryInput(f *testing.F) {
	f.Add("Action=SendMessageBatch&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x&SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=k")
	f.Add("Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=7&Attribute.x.Name=y")
	f.Add("Action=ReceiveMessage&MaxNumberOfMessages=ten&AttributeName.1=All&AttributeName.2")
	f.Fuzz(func(t *testing.T, form string) {
		values, err := url.ParseQuery(form)
		if err != nil {
			return
		}
		_, body, err := QueryInput(values)
		if err != nil {
			return
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("QueryInput made invalid JSON %s: %v", body, err)
		}
	})
}
