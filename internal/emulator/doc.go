// Package emulator is s3rekey's local AWS: S3, SQS and KMS on one loopback
// HTTP endpoint, spoken to by the real aws-sdk-go-v2 clients with an endpoint
// override. Each service lives in its own package (s3, sqs, kms, iam)
// around a small shared core; this package routes requests to them and
// evaluates IAM for each. It models AWS from its documentation and
// imports nothing of the product.
//
// No public emulator implements S3's UpdateObjectEncryption, so this one is
// the project's only witness that the pipeline is right. It therefore models
// encryption for real: every object body is stored as AES-GCM ciphertext under
// a per-object data key, and that data key is wrapped by the S3 master key
// (SSE-S3), by a KMS key (SSE-KMS, DSSE-KMS) or replaced by the customer's key
// (SSE-C). UpdateObjectEncryption re-wraps the data key only, so the stored
// ciphertext, ETag, Last-Modified, checksum and version id stay identical, and
// every error case of the S3 API reference is answered with its documented
// code and message.
//
// Requests are routed by X-Amz-Target (SQS: AWS JSON 1.0, KMS: JSON 1.1) and
// otherwise served as path-style S3. Requests must be SigV4-signed; the
// signature itself is not verified, any credentials are accepted.
//
// NewOrganization serves several accounts behind one endpoint, each its
// own Emulator, with STS and AWS Organizations (packages sts and
// organizations): requests go to the signing key's account, S3 requests to
// the bucket's owner and KMS requests to the key's account, where the
// caller's identity policy and the bucket, key or trust policy are
// evaluated together as IAM's cross-account evaluation logic says.
//
// Faults (per-operation error rates) and latency can be injected, and every
// request is counted per service and operation, which the cost model reads.
// The admin endpoint under /_emulator/ exposes the counters over HTTP.
package emulator
