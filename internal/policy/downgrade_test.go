package policy

import (
	"strings"
	"testing"
)

// A copy of a DSSE-KMS object is SSE-KMS: one layer of encryption where
// DSSE-KMS has two (userguide UsingDSSEncryption). The opt-in names the
// downgrade; a bare "copy" is refused with the name to use.
func TestDSSEKMSCopyIsANamedDowngrade(t *testing.T) {
	const key = "arn:aws:kms:us-east-1:123456789012:key/k"
	doc := func(v string) []byte {
		return []byte(`{"buckets":{"bkt":{"kmsKeyArn":"` + key + `","unsupportedSources":{"dsseKms":"` + v + `"}}}}`)
	}
	if _, err := Parse(doc("copy")); err == nil || !strings.Contains(err.Error(), SourceCopyDowngrade) {
		t.Errorf(`dsseKms "copy": %v, want refused, naming %q`, err, SourceCopyDowngrade)
	}
	p, err := Parse(doc(SourceCopyDowngrade))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.Lookup("bkt"); !b.CopiesDSSEKMS() || b.CopiesNotEncrypted() {
		t.Errorf("dsseKms copy-downgrade: copies DSSE-KMS %v, unencrypted %v", b.CopiesDSSEKMS(), b.CopiesNotEncrypted())
	}
	if _, err := Parse([]byte(`{"buckets":{"bkt":{"kmsKeyArn":"` + key + `","unsupportedSources":{"notEncrypted":"copy-downgrade"}}}}`)); err == nil {
		t.Error(`notEncrypted "copy-downgrade" accepted; it is "copy" or "skip"`)
	}
}
