// Package ownercheck holds the test that every S3 request s3rekey builds
// for a named bucket says whose bucket it expects (ExpectedBucketOwner):
// S3 then refuses the request with 403 Access Denied when the bucket
// belongs to another account, so a bucket deleted and re-created under the
// same name by someone else is never read or written
// (docs/AmazonS3/latest/userguide/bucket-owner-condition.md in the AWS
// docs). It has no code of its own.
package ownercheck
