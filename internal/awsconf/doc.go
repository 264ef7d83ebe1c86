// Package awsconf loads the AWS SDK configuration every s3rekey binary
// shares: the default credential chain and region, the SDK's standard
// retryer with bounded attempts, an HTTP pool sized for hundreds of
// concurrent requests that sends request bodies from memory (so that a
// fast response cannot race the SDK closing the body), and path-style S3
// when an endpoint override (AWS_ENDPOINT_URL, as for the emulator) is
// set.
package awsconf
