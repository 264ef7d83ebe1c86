package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
)

// EvidenceFormat names the evidence file's layout.
const EvidenceFormat = "s3rekey-evidence/1"

// MacAlgorithm is the MAC of the evidence digest: an HMAC_256 KMS key
// (KMS API reference, GenerateMac).
const MacAlgorithm = kmstypes.MacAlgorithmSpecHmacSha256

// Evidence is what an evidence file holds.
type Evidence struct {
	Format      string    `json:"format"`
	GeneratedAt time.Time `json:"generatedAt"`
	// PolicySHA256 identifies the policy verified against: the SHA-256
	// of its file.
	PolicySHA256 string `json:"policySha256"`
	// Purpose says why it was made ("verify", "retire-key ARN").
	Purpose string    `json:"purpose"`
	Totals  Totals    `json:"totals"`
	Buckets []*Bucket `json:"buckets"`
}

// Totals sum the buckets.
type Totals struct {
	Versions     int64 `json:"versions"`
	Compliant    int64 `json:"compliant"`
	NonCompliant int64 `json:"nonCompliant"`
	Exempt       int64 `json:"exempt"`
	Unknown      int64 `json:"unknown"`
}

// NewEvidence wraps a result.
func NewEvidence(res *Result, policySHA256, purpose string) *Evidence {
	ev := &Evidence{Format: EvidenceFormat, GeneratedAt: res.GeneratedAt, PolicySHA256: policySHA256, Purpose: purpose, Buckets: res.Buckets}
	for _, b := range res.Buckets {
		ev.Totals.Versions += b.Versions
		ev.Totals.Compliant += b.Compliant
		ev.Totals.NonCompliant += b.NonCompliant
		ev.Totals.Exempt += b.Exempt
		ev.Totals.Unknown += b.Unknown
	}
	return ev
}

// PolicyDigest is the policy version an evidence file names.
func PolicyDigest(policyFile []byte) string {
	sum := sha256.Sum256(policyFile)
	return hex.EncodeToString(sum[:])
}

// GenerateMacAPI signs evidence.
type GenerateMacAPI interface {
	GenerateMac(ctx context.Context, in *kms.GenerateMacInput, optFns ...func(*kms.Options)) (*kms.GenerateMacOutput, error)
}

// VerifyMacAPI checks evidence.
type VerifyMacAPI interface {
	VerifyMac(ctx context.Context, in *kms.VerifyMacInput, optFns ...func(*kms.Options)) (*kms.VerifyMacOutput, error)
}

var (
	_ GenerateMacAPI = (*kms.Client)(nil)
	_ VerifyMacAPI   = (*kms.Client)(nil)
)

// The signature is the file's last line:
//
//	s3rekey-signature sha256=HEX mac=HMAC_SHA_256:BASE64 key=KEY_ARN
//
// sha256 is the digest of every byte before that line; mac is KMS
// GenerateMac of the digest's 32 bytes under key.
const signaturePrefix = "s3rekey-signature "

func signatureLine(digest []byte, mac []byte, keyARN string) string {
	return fmt.Sprintf("%ssha256=%s mac=%s:%s key=%s\n", signaturePrefix, hex.EncodeToString(digest),
		MacAlgorithm, base64.StdEncoding.EncodeToString(mac), keyARN)
}

// Seal renders evidence as a signed file.
func Seal(ctx context.Context, api GenerateMacAPI, macKey string, ev *Evidence) ([]byte, error) {
	content, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	content = append(content, '\n')
	digest := sha256.Sum256(content)
	out, err := api.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(macKey), MacAlgorithm: MacAlgorithm, Message: digest[:]})
	if err != nil {
		return nil, fmt.Errorf("sign the evidence with %s (GenerateMac): %w", macKey, err)
	}
	return append(content, signatureLine(digest[:], out.Mac, aws.ToString(out.KeyId))...), nil
}

// ErrRejected marks evidence that does not check.
var ErrRejected = errors.New("evidence rejected")

// Check verifies a signed evidence file: the digest of its content, the
// MAC under the key it names (which must be wantKey when that is set),
// and the line's exact form; then decodes it.
func Check(ctx context.Context, api VerifyMacAPI, data []byte, wantKey string) (*Evidence, string, error) {
	i := bytes.LastIndex(data, []byte("\n"+signaturePrefix))
	if i < 0 {
		return nil, "", fmt.Errorf("%w: no signature line", ErrRejected)
	}
	content, line := data[:i+1], string(data[i+1:])
	var macField, keyARN string
	for _, f := range strings.Fields(strings.TrimPrefix(line, signaturePrefix)) {
		switch k, v, _ := strings.Cut(f, "="); k {
		case "mac":
			macField = v
		case "key":
			keyARN = v
		}
	}
	alg, macB64, _ := strings.Cut(macField, ":")
	mac, err := base64.StdEncoding.DecodeString(macB64)
	if err != nil || alg != string(MacAlgorithm) || keyARN == "" {
		return nil, "", fmt.Errorf("%w: unreadable signature line", ErrRejected)
	}
	digest := sha256.Sum256(content)
	if signatureLine(digest[:], mac, keyARN) != line {
		return nil, keyARN, fmt.Errorf("%w: the content's digest is not the one signed, or the signature line was changed", ErrRejected)
	}
	if wantKey != "" && wantKey != keyARN {
		return nil, keyARN, fmt.Errorf("%w: signed with %s, not %s", ErrRejected, keyARN, wantKey)
	}
	out, err := api.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(keyARN), MacAlgorithm: MacAlgorithm, Message: digest[:], Mac: mac})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "KMSInvalidMacException" {
			return nil, keyARN, fmt.Errorf("%w: the MAC does not verify under %s", ErrRejected, keyARN)
		}
		return nil, keyARN, fmt.Errorf("check the MAC with %s (VerifyMac): %w", keyARN, err)
	}
	if !out.MacValid {
		return nil, keyARN, fmt.Errorf("%w: the MAC does not verify under %s", ErrRejected, keyARN)
	}
	var ev Evidence
	if err := json.Unmarshal(content, &ev); err != nil || ev.Format != EvidenceFormat {
		return nil, keyARN, fmt.Errorf("%w: not %s content", ErrRejected, EvidenceFormat)
	}
	return &ev, keyARN, nil
}

// PutObjectAPI stores evidence.
type PutObjectAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Store writes a sealed file to the report location, encrypted under
// kmsKey (SSE-KMS), and returns its s3:// URL.
func Store(ctx context.Context, api PutObjectAPI, bucket, prefix, kmsKey string, at time.Time, file []byte) (string, error) {
	if kmsKey == "" {
		return "", errors.New("evidence: no KMS key to encrypt it with")
	}
	key := strings.TrimSuffix(prefix, "/")
	if key != "" {
		key += "/"
	}
	key += "evidence/" + at.UTC().Format("20060102T150405Z") + ".evidence"
	_, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(file), ExpectedBucketOwner: bucketowner.Of(api),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(kmsKey), ContentType: aws.String("text/plain")})
	if err != nil {
		return "", fmt.Errorf("write the evidence to s3://%s/%s: %w", bucket, key, err)
	}
	return "s3://" + bucket + "/" + key, nil
}
