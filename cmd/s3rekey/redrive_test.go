package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// redrive --json (documented) prints what it did as JSON on stdout.
func TestRedriveJSON(t *testing.T) {
	c := newCLIEnv(t, 0)
	for i := range 2 {
		if _, err := c.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(c.dlqURL), MessageBody: aws.String(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []redriveResult{{Waiting: 2, Moved: 2, Status: "completed"}, {Status: "nothing to move"}} {
		code, out, errOut := c.cli(t, "redrive", "--queue", "s3rekey-work", "--yes", "--json")
		var got redriveResult
		if err := json.Unmarshal([]byte(out), &got); code != exitOK || err != nil {
			t.Fatalf("exit %d, stdout %q (%v), stderr %q", code, out, err, errOut)
		}
		if got.Waiting != want.Waiting || got.Moved != want.Moved || got.Status != want.Status || got.URL != c.workURL || got.DeadLetterQueue != c.dlqURL {
			t.Errorf("redrive --json: %+v, want %+v", got, want)
		}
	}
}
