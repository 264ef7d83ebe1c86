package s3

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"hash/crc64"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// sseKind is an object's server-side encryption type, named as S3 Inventory
// names it.
type sseKind string

const (
	sseNone sseKind = "NOT-SSE"
	sseS3   sseKind = "SSE-S3"
	sseKMS  sseKind = "SSE-KMS"
	sseDSSE sseKind = "DSSE-KMS"
	sseC    sseKind = "SSE-C"
)

// headerValue is the x-amz-server-side-encryption value of a kind.
func (k sseKind) headerValue() string {
	switch k {
	case sseS3:
		return "AES256"
	case sseKMS:
		return "aws:kms"
	case sseDSSE:
		return "aws:kms:dsse"
	}
	return ""
}

// envelope is how an object's data key is protected. The ciphertext of the
// object never changes with it: UpdateObjectEncryption replaces the envelope.
type envelope struct {
	kind           sseKind
	kmsKeyARN      string // SSE-KMS, DSSE-KMS
	bucketKey      bool   // SSE-KMS
	customerKeyMD5 string // SSE-C: base64 MD5 of the customer key
	wrappedKey     []byte // the data key, sealed; nil for SSE-C and NOT-SSE
}

func newDataKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// wrap seals a data key for an envelope kind. kmsMaterial is the KMS key's
// material for SSE-KMS and DSSE-KMS (the second layer of DSSE is the S3
// master key).
func wrap(kind sseKind, dataKey, s3Master, kmsMaterial []byte, keyARN string) []byte {
	switch kind {
	case sseS3:
		return core.Seal(s3Master, dataKey, []byte("sse-s3"))
	case sseKMS:
		return core.Seal(kmsMaterial, dataKey, []byte(keyARN))
	case sseDSSE:
		inner := core.Seal(kmsMaterial, dataKey, []byte(keyARN))
		return core.Seal(s3Master, inner, []byte("dsse-outer"))
	}
	return nil
}

func unwrap(env envelope, s3Master, kmsMaterial []byte) ([]byte, error) {
	switch env.kind {
	case sseS3:
		return core.Open(s3Master, env.wrappedKey, []byte("sse-s3"))
	case sseKMS:
		return core.Open(kmsMaterial, env.wrappedKey, []byte(env.kmsKeyARN))
	case sseDSSE:
		inner, err := core.Open(s3Master, env.wrappedKey, []byte("dsse-outer"))
		if err != nil {
			return nil, err
		}
		return core.Open(kmsMaterial, inner, []byte(env.kmsKeyARN))
	}
	return nil, core.ErrWrongKey
}

// customerKeyMD5 is the base64 MD5 S3 expects beside an SSE-C key.
func customerKeyMD5(key []byte) string {
	sum := md5.Sum(key)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// crc64NVME is the reflected CRC-64/NVME polynomial S3 uses by default.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// checksumAlgorithms computes S3's flexible checksums: base64 of the
// big-endian digest. Keys are lower case, as in x-amz-checksum-<alg>.
var checksumAlgorithms = map[string]func([]byte) string{
	"crc32": func(b []byte) string {
		return b64uint32(crc32.ChecksumIEEE(b))
	},
	"crc32c": func(b []byte) string {
		return b64uint32(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	},
	"crc64nvme": func(b []byte) string {
		var out [8]byte
		binary.BigEndian.PutUint64(out[:], crc64.Checksum(b, crc64NVME))
		return base64.StdEncoding.EncodeToString(out[:])
	},
	"sha1": func(b []byte) string {
		s := sha1.Sum(b)
		return base64.StdEncoding.EncodeToString(s[:])
	},
	"sha256": func(b []byte) string {
		s := sha256.Sum256(b)
		return base64.StdEncoding.EncodeToString(s[:])
	},
}

func b64uint32(v uint32) string {
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], v)
	return base64.StdEncoding.EncodeToString(out[:])
}
