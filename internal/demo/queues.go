package demo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/pipeline"
)

// createDeploymentQueues makes a deployment's queues as the stack does: the work
// and control queues (and, with uploads, the uploads queue), each with its
// DLQ, the DLQs first (a redrive policy names an existing queue); DLQs
// keep messages 14 days, the others redrive after 5 receives.
func createDeploymentQueues(ctx context.Context, api *sqs.Client, region, account string, uploads bool) (pipeline.Queues, error) {
	type queue struct {
		url                   *string
		name, dlq, visibility string // dlq "" for a DLQ itself
	}
	var q pipeline.Queues
	specs := []queue{
		{&q.WorkDLQ, "s3rekey-work-dlq", "", ""}, {&q.ControlDLQ, "s3rekey-control-dlq", "", ""},
		{&q.Work, WorkQueue, "s3rekey-work-dlq", "60"}, {&q.Control, ControlQueue, "s3rekey-control-dlq", "120"},
	}
	if uploads {
		specs = append(specs, queue{&q.UploadsDLQ, "s3rekey-uploads-dlq", "", ""}, queue{&q.Uploads, UploadsQueue, "s3rekey-uploads-dlq", "60"})
	}
	for _, s := range specs {
		attrs := map[string]string{"MessageRetentionPeriod": "1209600"}
		if s.dlq != "" {
			attrs = map[string]string{"VisibilityTimeout": s.visibility,
				"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":"arn:aws:sqs:%s:%s:%s","maxReceiveCount":5}`, region, account, s.dlq)}
		}
		out, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(s.name), Attributes: attrs})
		if err != nil {
			return q, fmt.Errorf("create queue %s: %w", s.name, err)
		}
		*s.url = aws.ToString(out.QueueUrl)
	}
	return q, nil
}
