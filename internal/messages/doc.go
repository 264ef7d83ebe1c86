// Package messages decodes what arrives on s3rekey's work queue into object
// references: s3rekey's own object task (versioned JSON, one or more objects
// with facts an inventory row already proved), the EventBridge "Object
// Created" envelope from S3, and classic S3 event notification records.
// Keys in S3 events are form-encoded ('+' is a space) and are decoded here
// once. Anything else is rejected with a reason, never retried.
package messages
