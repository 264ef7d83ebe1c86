// Package encrypt is the encrypt function's logic: an SQS batch handler
// (ReportBatchItemFailures) for the work queue and the uploads queue (each
// message's follow-ups stay on its path: paths.go) that decodes each message, rekeys its
// objects concurrently, and accounts for every object: a terminal outcome,
// a re-enqueued retry with exponential delay, or a dead letter with its
// reason. It logs one summary line per batch and one line per object not
// updated, and prints CloudWatch Embedded Metric Format counts per outcome
// and bucket.
package encrypt
