package encrypt

import (
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/s3rekey/s3rekey/internal/messages"
)

// path is the queue a message's follow-ups (retries, held and unstarted
// objects) go back to, and the DLQ its dead letters go to.
type path struct{ queue, dlq string }

// Uploads have a path of their own when the uploads queue is configured:
// an upload's retries and dead letters stay on it, so that they never
// wait behind a backfill's backlog on the work queue, and the uploads
// DLQ holds only uploads. Without it (a deployment from before the
// uploads queue) uploads share the work queue's path.
func (c Config) pathOf(t messages.Task) path {
	if IsUpload(t) && c.UploadsQueueURL != "" {
		return path{c.UploadsQueueURL, c.UploadsDLQURL}
	}
	return path{c.WorkQueueURL, c.DeadLetterQueueURL}
}

// arrivalPath is the path of the queue a message was received from, for a
// message that does not decode (its dead letter goes to that queue's DLQ).
// Lambda names the queue by its ARN, whose last part is the queue's name,
// as the last part of its URL is.
func (c Config) arrivalPath(rec events.SQSMessage) path {
	if c.UploadsQueueURL != "" && rec.EventSourceARN != "" && queueName(rec.EventSourceARN, ":") == queueName(c.UploadsQueueURL, "/") {
		return path{c.UploadsQueueURL, c.UploadsDLQURL}
	}
	return path{c.WorkQueueURL, c.DeadLetterQueueURL}
}

func queueName(s, sep string) string { return s[strings.LastIndex(s, sep)+1:] }

// IsUpload reports a task that enforces an upload (an S3 event, or a
// follow-up of one): it goes first, on its own path and ahead of the
// backfill under the budgets (see rekey.Rekeyer.Budget).
func IsUpload(t messages.Task) bool { return t.Source == messages.SourceEvent }
