package rekey

import "testing"

// x-amz-copy-source is URL-encoded, and S3 decodes a raw '+' in it as a
// space (API_CopyObject, "x-amz-copy-source": "The value must be URL-encoded").
func TestCopySourceOfAVersion(t *testing.T) {
	for _, tc := range []struct{ name, key, version, want string }{
		{"plus and unicode", "photos/été+hiver/a b.dat", "v1", "bkt/photos/%C3%A9t%C3%A9%2Bhiver/a%20b.dat?versionId=v1"},
		{"no version", "a+b", "", "bkt/a%2Bb"},
		{"version id with reserved characters", "k", "a+b/c", "bkt/k?versionId=a%2Bb%2Fc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CopySource("bkt", tc.key, tc.version); got != tc.want {
				t.Errorf("CopySource(%q, %q) = %q, want %q", tc.key, tc.version, got, tc.want)
			}
		})
	}
}
