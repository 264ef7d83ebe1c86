// Package cost prices s3rekey's work with AWS list prices (us-east-1) and
// compares it with S3 Batch Operations, from counted requests and measured
// function time. The UpdateObjectEncryption request itself, and the KMS
// calls S3 makes for it, are priced separately: every tool pays them.
package cost
