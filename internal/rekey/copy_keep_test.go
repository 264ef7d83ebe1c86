package rekey_test

import (
	"context"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"strings"
	"testing"

	"github.com/s3rekey/s3rekey/internal/messages"
	"github.com/s3rekey/s3rekey/internal/rekey"
	"github.com/s3rekey/s3rekey/internal/witness"
)

// Keys with characters URL encoding reserves are copied as themselves:
// x-amz-copy-source "must be URL-encoded" (API_CopyObject and
// API_UploadPartCopy, x-amz-copy-source), and S3 decodes it as URL
// encoding, where a raw "+" is a space. "a+b" beside its space-twin
// "a b" is the case that copied the wrong object (or found it gone).
func TestCopyReservedCharacterKeys(t *testing.T) {
	keys := []string{"a+b", "a b", "100%", "100%25", "what?x=1", "tag#1", "ünï/日本 語.txt", "x%2By", "sp  ace+plus/+/end+"}
	for _, multipart := range []bool{false, true} {
		name := "CopyObject"
		if multipart {
			name = "UploadPartCopy"
		}
		t.Run(name, func(t *testing.T) {
			witness.Run(t, func(t *testing.T, w witness.Witness) {
				c := &rekey.Copier{}
				if multipart {
					c.MultipartThreshold, c.PartSize = 8, 5<<20
				}
				b := newCopyBed(t, w, c, nil)
				for _, k := range keys {
					b.put(t, k, "content of "+k, nil)
				}
				for _, k := range keys {
					if got := b.rekeyer.Rekey(context.Background(), messages.Object{Bucket: b.bucket, Key: k}); got.Status != rekey.Copied {
						t.Errorf("%q: %+v, want copied", k, got.Outcome)
					}
				}
				for _, k := range keys {
					body, h := b.read(t, k)
					if body != "content of "+k || !b.onTarget(h) {
						t.Errorf("%q after its copy: %q, %s %s", k, body, h.ServerSideEncryption, aws.ToString(h.SSEKMSKeyId))
					}
				}
			})
		})
	}
}

// An object uploaded without a checksum gets CRC64NVME from S3
// (checking-object-integrity-upload: "S3 automatically attaches ... the
// CRC-64/NVME"); its multipart copy is created with that algorithm, and
// CompleteMultipartUpload needs each part's CRC64NVME back (API_CompletedPart:
// "This checksum is present if the multipart upload request was created
// with the CRC64NVME checksum algorithm"), as UploadPartCopy gave it
// (API_CopyPartResult).
func TestMultipartCopyCarriesPartChecksums(t *testing.T) {
	witness.Run(t, func(t *testing.T, w witness.Witness) {
		b := newCopyBed(t, w, &rekey.Copier{MultipartThreshold: 6 << 20, PartSize: 5 << 20}, nil)
		big := strings.Repeat("0123456789abcdef", 11<<20/16)
		var edit func(*s3.PutObjectInput)
		if w.IsMoto() {
			// moto 5.2.1 attaches no checksum to an upload without one,
			// where S3 attaches CRC64NVME (checking-object-integrity-upload):
			// for moto the upload names CRC64NVME itself.
			edit = func(in *s3.PutObjectInput) { in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc64nvme }
		}
		b.put(t, "big.bin", big, edit)
		sum, err := w.S3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String("big.bin"), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil || sum.ChecksumCRC64NVME == nil {
			t.Fatalf("the source's checksum: %v %v, want CRC64NVME", sum, err)
		}
		if got := b.rekeyer.Rekey(context.Background(), messages.Object{Bucket: b.bucket, Key: "big.bin"}); got.Status != rekey.Copied {
			t.Fatalf("big.bin: %+v, want copied", got.Outcome)
		}
		body, h := b.read(t, "big.bin")
		if body != big || !b.onTarget(h) || !strings.HasSuffix(aws.ToString(h.ETag), `-3"`) {
			t.Errorf("big.bin after its copy in parts: bytes equal %v, %s %s, ETag %s", body == big, h.ServerSideEncryption, aws.ToString(h.SSEKMSKeyId), aws.ToString(h.ETag))
		}
	})
}
