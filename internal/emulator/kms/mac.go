package kms

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"net/http"
	"sync"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// HMAC KMS keys (KMS developer guide, hmac; API reference, GenerateMac and
// VerifyMac): KeyUsage GENERATE_VERIFY_MAC, KeySpec HMAC_224 to HMAC_512,
// the algorithm must match the key spec, the message is 1 to 4096 bytes.
var macSpecs = map[string]struct {
	algorithm string
	hash      func() hash.Hash
}{
	"HMAC_224": {"HMAC_SHA_224", sha256.New224},
	"HMAC_256": {"HMAC_SHA_256", sha256.New},
	"HMAC_384": {"HMAC_SHA_384", sha512.New384},
	"HMAC_512": {"HMAC_SHA_512", sha512.New},
}

// extraState holds what the keys of kms.go do not: HMAC key specs and the
// last successful cryptographic use of each key.
type extraState struct {
	mu       sync.Mutex
	macSpec  map[string]string // key id -> HMAC key spec
	lastUsed map[string]keyUse // key id -> last use
}

type keyUse struct {
	at                 time.Time
	operation, request string
}

// createMacKey serves CreateKey for an HMAC key spec.
func (k *Service) createMacKey(description, spec, usage string) (any, *core.Error) {
	if _, ok := macSpecs[spec]; !ok {
		return nil, core.Errorf(http.StatusBadRequest, "ValidationException", "KeySpec "+spec+" is not an HMAC key spec")
	}
	if usage != "GENERATE_VERIFY_MAC" {
		return nil, core.Errorf(http.StatusBadRequest, "ValidationException", "HMAC keys require KeyUsage GENERATE_VERIFY_MAC")
	}
	k.mu.Lock()
	key := k.createKey(description, false)
	k.mu.Unlock()
	k.extra.mu.Lock()
	if k.extra.macSpec == nil {
		k.extra.macSpec = map[string]string{}
	}
	k.extra.macSpec[key.ID] = spec
	k.extra.mu.Unlock()
	md := k.metadata(key)
	md.KeyUsage, md.KeySpec, md.CustomerMasterKeySpec, md.EncryptionAlgorithms = "GENERATE_VERIFY_MAC", spec, spec, nil
	return map[string]any{"KeyMetadata": md, "MacAlgorithms": []string{macSpecs[spec].algorithm}}, nil
}

// macSpecOf returns an HMAC key's spec, or "" for other keys.
func (k *Service) macSpecOf(id string) string {
	k.extra.mu.Lock()
	defer k.extra.mu.Unlock()
	return k.extra.macSpec[id]
}

// mac serves GenerateMac and VerifyMac.
func (k *Service) mac(op string, body []byte) (any, *core.Error) {
	var in struct {
		KeyId, MacAlgorithm string
		Message, Mac        []byte
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	key, ok := k.Resolve(in.KeyId)
	if !ok {
		return nil, kmsNotFound(in.KeyId)
	}
	spec := k.macSpecOf(key.ID)
	if spec == "" {
		return nil, core.Errorf(http.StatusBadRequest, "InvalidKeyUsageException", "KMS key "+key.ARN+" is not an HMAC key")
	}
	if apiErr := k.usable(op, key); apiErr != nil {
		return nil, apiErr
	}
	if in.MacAlgorithm != macSpecs[spec].algorithm {
		return nil, core.Errorf(http.StatusBadRequest, "InvalidKeyUsageException", "MacAlgorithm "+in.MacAlgorithm+" is not supported by "+spec)
	}
	if len(in.Message) < 1 || len(in.Message) > 4096 {
		return nil, core.Errorf(http.StatusBadRequest, "ValidationException", "Message must be 1 to 4096 bytes")
	}
	h := hmac.New(macSpecs[spec].hash, key.Material)
	h.Write(in.Message)
	sum := h.Sum(nil)
	k.RecordUse(key.ARN, op)
	if op == "GenerateMac" {
		return map[string]any{"KeyId": key.ARN, "Mac": sum, "MacAlgorithm": in.MacAlgorithm}, nil
	}
	if !hmac.Equal(sum, in.Mac) {
		return nil, core.Errorf(http.StatusBadRequest, "KMSInvalidMacException", "The MAC is not valid for this message and key.")
	}
	return map[string]any{"KeyId": key.ARN, "MacValid": true, "MacAlgorithm": in.MacAlgorithm}, nil
}

// RecordUse records a successful cryptographic operation with a key, made
// through the API or by S3 on a caller's behalf (GetKeyLastUsage).
func (k *Service) RecordUse(keyARN, operation string) {
	key, ok := k.Resolve(keyARN)
	if !ok {
		return
	}
	k.extra.mu.Lock()
	defer k.extra.mu.Unlock()
	if k.extra.lastUsed == nil {
		k.extra.lastUsed = map[string]keyUse{}
	}
	k.extra.lastUsed[key.ID] = keyUse{at: time.Now().UTC(), operation: operation, request: core.NewUUID()}
}

// recordResult records the use of the key a successful Encrypt,
// Decrypt or GenerateDataKey names in its answer.
func (k *Service) recordResult(op string, out any, err *core.Error) (any, *core.Error) {
	if m, ok := out.(map[string]any); ok && err == nil {
		if arn, ok := m["KeyId"].(string); ok {
			k.RecordUse(arn, op)
		}
	}
	return out, err
}

// lastUsage serves GetKeyLastUsage (API reference): the last successful
// cryptographic operation, and TrackingStartDate, here the key's creation.
func (k *Service) lastUsage(body []byte) (any, *core.Error) {
	var in struct{ KeyId string }
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	key, ok := k.Resolve(in.KeyId)
	if !ok || len(in.KeyId) > 6 && in.KeyId[:6] == "alias/" {
		return nil, kmsNotFound(in.KeyId)
	}
	created := float64(key.created.UnixMilli()) / 1000
	out := map[string]any{"KeyId": key.ID, "KeyCreationDate": created, "TrackingStartDate": created, "KeyLastUsage": map[string]any{}}
	k.extra.mu.Lock()
	use, used := k.extra.lastUsed[key.ID]
	k.extra.mu.Unlock()
	if used {
		out["KeyLastUsage"] = map[string]any{"Timestamp": float64(use.at.UnixMilli()) / 1000, "Operation": use.operation,
			"KmsRequestId": use.request, "CloudTrailEventId": core.NewUUID()}
	}
	return out, nil
}
