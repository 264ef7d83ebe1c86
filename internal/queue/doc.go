// Package queue sends messages to SQS in batches: at most 10 entries and a
// bounded size per SendMessageBatch, several batches in flight, and the
// entries SQS failed retried with backoff. What still fails is reported per
// message, so the caller can decide what must not be lost.
package queue
