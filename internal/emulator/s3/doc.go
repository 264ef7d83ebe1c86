// Package s3 emulates Amazon S3 general purpose buckets on path-style
// requests: objects with real AES-GCM envelopes under SSE-S3, SSE-KMS,
// DSSE-KMS or SSE-C, versioning, Object Lock, listings, notifications to
// SQS and EventBridge, UpdateObjectEncryption, and S3 Inventory reports
// written to the documented format by its own writer.
package s3
