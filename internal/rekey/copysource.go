package rekey

import "net/url"

// CopySource is the x-amz-copy-source naming one version of an object, for
// callers outside this package that copy a version themselves: the key
// percent-encoded as copySource does (S3 reads a raw '+' there as a space,
// API_CopyObject), then the version id as a query parameter.
func CopySource(bucket, key, versionID string) string {
	src := copySource(bucket, key)
	if versionID != "" {
		src += "?versionId=" + url.QueryEscape(versionID)
	}
	return src
}
