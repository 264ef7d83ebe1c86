// Package policy is s3rekey's per-bucket target: which KMS key and
// bucket-key setting each managed bucket's objects must end up under, which
// prefixes are in scope, and whether noncurrent versions count. The same JSON
// is read by the functions (S3REKEY_POLICY or S3REKEY_POLICY_FILE), the CLI
// and the CDK app, and is validated once, at start, with errors that name
// the offending field.
package policy
