package pipeline

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// QueueDepth is one queue's message counts.
type QueueDepth struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	Waiting  int64  `json:"waiting"`
	InFlight int64  `json:"inFlight"`
	Delayed  int64  `json:"delayed"`
}

// Messages is every message the queue holds: waiting, in flight and
// delayed.
func (d QueueDepth) Messages() int64 { return d.Waiting + d.InFlight + d.Delayed }

// QueueAttributesAPI is the one call Depth makes.
type QueueAttributesAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ QueueAttributesAPI = (*sqs.Client)(nil)

// Depth reads a queue's approximate message counts.
func Depth(ctx context.Context, api QueueAttributesAPI, name, url string) (QueueDepth, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{
		"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"}})
	if err != nil {
		return QueueDepth{}, fmt.Errorf("%s: %w", url, err)
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(out.Attributes[k], 10, 64); return v }
	return QueueDepth{Name: name, URL: url, Waiting: n("ApproximateNumberOfMessages"),
		InFlight: n("ApproximateNumberOfMessagesNotVisible"), Delayed: n("ApproximateNumberOfMessagesDelayed")}, nil
}

// Queue names in Depths' answer.
const (
	DepthWork       = "work"
	DepthWorkDLQ    = "work DLQ"
	DepthControl    = "control"
	DepthControlDLQ = "control DLQ"
	DepthUploads    = "uploads"
	DepthUploadsDLQ = "uploads DLQ"
)

// Depths reads the depth of the work, control and uploads queues and of
// their dead-letter queues, in that order; a queue with no URL (the uploads
// queue of a deployment whose uploads share the work queue) is left out.
func Depths(ctx context.Context, api QueueAttributesAPI, q Queues) ([]QueueDepth, error) {
	var depths []QueueDepth
	for _, x := range []struct{ name, url string }{{DepthWork, q.Work}, {DepthWorkDLQ, q.WorkDLQ}, {DepthControl, q.Control}, {DepthControlDLQ, q.ControlDLQ},
		{DepthUploads, q.Uploads}, {DepthUploadsDLQ, q.UploadsDLQ}} {
		if x.url == "" {
			continue
		}
		d, err := Depth(ctx, api, x.name, x.url)
		if err != nil {
			return nil, err
		}
		depths = append(depths, d)
	}
	return depths, nil
}
