// Package kms emulates AWS KMS keys and aliases (AWS JSON 1.1): the
// key material S3 wraps data keys with, and the calls the product makes.
package kms

import (
	"encoding/json"

	"github.com/s3rekey/s3rekey/internal/emulator/core"

	"crypto/rand"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrorCodes: KMS has no query-protocol error codes to announce.
var ErrorCodes = core.QueryErrorCodes{}

// Key is a symmetric KMS key.
type Key struct {
	ID          string
	ARN         string
	description string
	created     time.Time
	enabled     bool
	AWSManaged  bool
	Material    []byte
	life        keyLife // lifecycle.go
}

type keyAlias struct {
	name, targetKeyID string
	created           time.Time
}

type Service struct {
	account, region string
	// PrincipalPolicies is set when the caller of the service evaluates
	// key policies with their Principal elements, as an organization of
	// accounts does (KeyPolicy); KeyPolicyAllows then leaves the decision
	// to it.
	PrincipalPolicies bool

	mu      sync.RWMutex
	keys    map[string]*Key // by key id
	order   []string        // key ids in creation order
	aliases map[string]*keyAlias
	extra   extraState // HMAC keys and last use (mac.go)
}

func New(account, region string) *Service {
	return &Service{account: account, region: region, keys: map[string]*Key{}, aliases: map[string]*keyAlias{}}
}

func (k *Service) arnPrefix() string {
	return "arn:aws:kms:" + k.region + ":" + k.account + ":"
}

// createKey makes a symmetric key with fresh material.
func (k *Service) createKey(description string, AWSManaged bool) *Key {
	id := core.NewUUID()
	material := make([]byte, 32)
	_, _ = rand.Read(material)
	key := &Key{
		ID: id, ARN: k.arnPrefix() + "key/" + id, description: description,
		created: time.Now().UTC(), enabled: true, AWSManaged: AWSManaged, Material: material,
	}
	k.keys[id] = key
	k.order = append(k.order, id)
	return key
}

// resolve finds a key by id, key ARN, alias name or alias ARN. A key ARN of
// another account or region is not found, as in KMS.
func (k *Service) Resolve(ref string) (*Key, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.resolveLocked(ref)
}

func (k *Service) resolveLocked(ref string) (*Key, bool) {
	name := ref
	if rest, ok := strings.CutPrefix(ref, k.arnPrefix()); ok {
		name = rest
	} else if strings.HasPrefix(ref, "arn:") {
		return nil, false
	}
	if id, ok := strings.CutPrefix(name, "key/"); ok {
		key, found := k.keys[id]
		return key, found
	}
	if strings.HasPrefix(name, "alias/") {
		a, ok := k.aliases[name]
		if !ok {
			return nil, false
		}
		key, found := k.keys[a.targetKeyID]
		return key, found
	}
	key, found := k.keys[name]
	return key, found
}

// awsManagedS3Key returns the aws/s3 key, made on first use as in AWS.
func (k *Service) AWSManagedS3Key() *Key {
	const alias = "alias/aws/s3"
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.aliases[alias]; ok {
		return k.keys[a.targetKeyID]
	}
	key := k.createKey("Default key that protects my S3 objects when no other key is defined", true)
	k.aliases[alias] = &keyAlias{name: alias, targetKeyID: key.ID, created: key.created}
	return key
}

type kmsKeyMetadata struct {
	AWSAccountID          string   `json:"AWSAccountId"`
	KeyID                 string   `json:"KeyId"`
	Arn                   string   `json:"Arn"`
	CreationDate          float64  `json:"CreationDate"`
	Enabled               bool     `json:"Enabled"`
	Description           string   `json:"Description"`
	KeyUsage              string   `json:"KeyUsage"`
	KeyState              string   `json:"KeyState"`
	Origin                string   `json:"Origin"`
	KeyManager            string   `json:"KeyManager"`
	KeySpec               string   `json:"KeySpec"`
	CustomerMasterKeySpec string   `json:"CustomerMasterKeySpec"`
	EncryptionAlgorithms  []string `json:"EncryptionAlgorithms"`
	MultiRegion           bool     `json:"MultiRegion"`
	// DeletionDate and PendingDeletionWindowInDays: lifecycle.go.
	DeletionDate                *float64 `json:"DeletionDate,omitempty"`
	PendingDeletionWindowInDays *int     `json:"PendingDeletionWindowInDays,omitempty"`
}

func (k *Service) metadata(key *Key) kmsKeyMetadata {
	manager := "CUSTOMER"
	if key.AWSManaged {
		manager = "AWS"
	}
	md := kmsKeyMetadata{
		AWSAccountID: k.account, KeyID: key.ID, Arn: key.ARN,
		CreationDate: float64(key.created.UnixMilli()) / 1000,
		Description:  key.description, KeyUsage: "ENCRYPT_DECRYPT",
		Origin: "AWS_KMS", KeyManager: manager, KeySpec: "SYMMETRIC_DEFAULT",
		CustomerMasterKeySpec: "SYMMETRIC_DEFAULT", EncryptionAlgorithms: []string{"SYMMETRIC_DEFAULT"},
	}
	k.lifecycleMetadata(key, &md)
	return md
}

func kmsNotFound(ref string) *core.Error {
	return core.Errorf(http.StatusBadRequest, "NotFoundException", "Invalid keyId '"+ref+"'")
}

func (k *Service) Dispatch(_ *http.Request, op string, body []byte) (any, *core.Error) {
	switch op {
	case "CreateKey":
		var in struct {
			Description string
			KeyUsage    string
			KeySpec     string
		}
		if err := core.DecodeJSON(body, &in); err != nil {
			return nil, err
		}
		if strings.HasPrefix(in.KeySpec, "HMAC_") {
			return k.createMacKey(in.Description, in.KeySpec, in.KeyUsage)
		}
		if in.KeyUsage != "" && in.KeyUsage != "ENCRYPT_DECRYPT" {
			return nil, core.Errorf(http.StatusBadRequest, "UnsupportedOperationException", "the emulator makes ENCRYPT_DECRYPT keys only")
		}
		if in.KeySpec != "" && in.KeySpec != "SYMMETRIC_DEFAULT" {
			return nil, core.Errorf(http.StatusBadRequest, "UnsupportedOperationException", "the emulator makes SYMMETRIC_DEFAULT keys only")
		}
		k.mu.Lock()
		key := k.createKey(in.Description, false)
		k.mu.Unlock()
		return map[string]any{"KeyMetadata": k.metadata(key)}, nil
	case "DescribeKey":
		var in struct{ KeyId string }
		if err := core.DecodeJSON(body, &in); err != nil {
			return nil, err
		}
		if in.KeyId == "" {
			return nil, core.Errorf(http.StatusBadRequest, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
		}
		key, ok := k.Resolve(in.KeyId)
		if !ok {
			if strings.HasPrefix(in.KeyId, "alias/") || strings.Contains(in.KeyId, ":alias/") {
				return nil, core.Errorf(http.StatusBadRequest, "NotFoundException", "Alias "+in.KeyId+" is not found.")
			}
			return nil, kmsNotFound(in.KeyId)
		}
		return map[string]any{"KeyMetadata": k.metadata(key)}, nil
	case "CreateAlias":
		return k.createAlias(body)
	case "UpdateAlias":
		return k.updateAlias(body)
	case "Encrypt", "GenerateDataKey", "Decrypt":
		out, err := k.crypto(op, body)
		return k.recordResult(op, out, err)
	case "GenerateMac", "VerifyMac":
		return k.mac(op, body)
	case "GetKeyLastUsage":
		return k.lastUsage(body)
	case "ReEncrypt":
		return k.reEncrypt(body)
	case "DisableKey", "EnableKey", "ScheduleKeyDeletion", "CancelKeyDeletion", "PutKeyPolicy", "GetKeyPolicy":
		return k.lifecycle(op, body)
	case "TagResource", "UntagResource", "ListResourceTags":
		return k.tagging(op, body)
	case "ListAliases":
		return k.listAliases(body)
	case "ListKeys":
		return k.listKeys(body)
	default:
		return nil, core.Errorf(http.StatusBadRequest, "UnknownOperationException", "the emulator does not implement KMS "+op)
	}
}

func (k *Service) createAlias(body []byte) (any, *core.Error) {
	var in struct{ AliasName, TargetKeyId string }
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(in.AliasName, "alias/") || len(in.AliasName) <= len("alias/") {
		return nil, core.Errorf(http.StatusBadRequest, "ValidationException", "Alias must start with the prefix \"alias/\"")
	}
	if strings.HasPrefix(in.AliasName, "alias/aws/") {
		return nil, core.Errorf(http.StatusBadRequest, "NotAuthorizedException", "Cannot create alias with prefix 'alias/aws/'")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, exists := k.aliases[in.AliasName]; exists {
		return nil, core.Errorf(http.StatusBadRequest, "AlreadyExistsException",
			"An alias with the name "+k.arnPrefix()+in.AliasName+" already exists")
	}
	key, ok := k.resolveLocked(in.TargetKeyId)
	if !ok || strings.HasPrefix(in.TargetKeyId, "alias/") {
		return nil, kmsNotFound(in.TargetKeyId)
	}
	k.aliases[in.AliasName] = &keyAlias{name: in.AliasName, targetKeyID: key.ID, created: time.Now().UTC()}
	return struct{}{}, nil
}

// updateAlias points an existing alias at another key (KMS API reference,
// UpdateAlias): the way key rotation by alias is done.
func (k *Service) updateAlias(body []byte) (any, *core.Error) {
	var in struct{ AliasName, TargetKeyId string }
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	a, ok := k.aliases[in.AliasName]
	if !ok {
		return nil, core.Errorf(http.StatusBadRequest, "NotFoundException", "Alias "+k.arnPrefix()+in.AliasName+" is not found.")
	}
	key, ok := k.resolveLocked(in.TargetKeyId)
	if !ok || strings.Contains(in.TargetKeyId, "alias/") {
		return nil, kmsNotFound(in.TargetKeyId)
	}
	a.targetKeyID = key.ID
	return struct{}{}, nil
}

// cryptoBlob prefixes a ciphertext with the key id that sealed it, as
// KMS's ciphertext blobs carry their key (Decrypt needs no KeyId for
// symmetric keys).
const blobSeparator = "\x00"

// crypto serves Encrypt, GenerateDataKey and Decrypt with real AES-GCM
// under the key's material, for callers that use KMS directly.
func (k *Service) crypto(op string, body []byte) (any, *core.Error) {
	var in struct {
		KeyId          string
		Plaintext      []byte
		CiphertextBlob []byte
		KeySpec        string
		NumberOfBytes  int
		// EncryptionContext is bound to the ciphertext: Decrypt must be
		// given the same one (KMS API reference, Decrypt:
		// "InvalidCiphertextException ... the encryption context ... does
		// not match"; concepts, encryption context).
		EncryptionContext map[string]string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	if op == "Decrypt" {
		id, sealed, ok := strings.Cut(string(in.CiphertextBlob), blobSeparator)
		key, found := k.Resolve(id)
		if !ok || !found {
			return nil, core.Errorf(http.StatusBadRequest, "InvalidCiphertextException", "The ciphertext is not valid")
		}
		plain, err := core.Open(key.Material, []byte(sealed), boundData(key.ARN, in.EncryptionContext))
		if err != nil {
			return nil, core.Errorf(http.StatusBadRequest, "InvalidCiphertextException", "The ciphertext is not valid")
		}
		if apiErr := k.usable(op, key); apiErr != nil {
			return nil, apiErr
		}
		return map[string]any{"KeyId": key.ARN, "Plaintext": plain, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
	}
	key, ok := k.Resolve(in.KeyId)
	if !ok {
		return nil, kmsNotFound(in.KeyId)
	}
	if apiErr := k.usable(op, key); apiErr != nil {
		return nil, apiErr
	}
	plain := in.Plaintext
	if op == "GenerateDataKey" {
		n := in.NumberOfBytes
		switch in.KeySpec {
		case "AES_256":
			n = 32
		case "AES_128":
			n = 16
		}
		if n < 1 || n > 1024 {
			return nil, core.Errorf(http.StatusBadRequest, "ValidationException", "KeySpec or NumberOfBytes (1 to 1024) is required")
		}
		plain = make([]byte, n)
		_, _ = rand.Read(plain)
	} else if len(plain) == 0 || len(plain) > 4096 {
		return nil, core.Errorf(http.StatusBadRequest, "ValidationException", "Plaintext must be 1 to 4096 bytes")
	}
	blob := append([]byte(key.ID+blobSeparator), core.Seal(key.Material, plain, boundData(key.ARN, in.EncryptionContext))...)
	out := map[string]any{"KeyId": key.ARN, "CiphertextBlob": blob, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
	if op == "GenerateDataKey" {
		out["Plaintext"] = plain
	}
	return out, nil
}

// Aliases lists the alias names that point at a key (the condition key
// kms:ResourceAliases of a request on that key).
func (k *Service) Aliases(keyARN string) []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.resolveLocked(keyARN)
	if !ok {
		return nil
	}
	var out []string
	for name, a := range k.aliases {
		if a.targetKeyID == key.ID {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// pageBounds reads Limit/Marker paging (marker = index of the next item).
func pageBounds(limit int, marker string, n int) (start, end int, next string, err *core.Error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return 0, 0, "", core.Errorf(http.StatusBadRequest, "ValidationException", "Limit must be from 1 to 1000")
	}
	if marker != "" {
		v, convErr := strconv.Atoi(marker)
		if convErr != nil || v < 0 || v > n {
			return 0, 0, "", core.Errorf(http.StatusBadRequest, "InvalidMarkerException", "invalid marker")
		}
		start = v
	}
	end = min(start+limit, n)
	if end < n {
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

func (k *Service) listAliases(body []byte) (any, *core.Error) {
	var in struct {
		KeyId  string
		Limit  int
		Marker string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	filterID := ""
	if in.KeyId != "" {
		key, ok := k.resolveLocked(in.KeyId)
		if !ok {
			return nil, kmsNotFound(in.KeyId)
		}
		filterID = key.ID
	}
	names := make([]string, 0, len(k.aliases))
	for name, a := range k.aliases {
		if filterID == "" || a.targetKeyID == filterID {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	start, end, next, apiErr := pageBounds(in.Limit, in.Marker, len(names))
	if apiErr != nil {
		return nil, apiErr
	}
	type aliasEntry struct {
		AliasName, AliasArn, TargetKeyId string
		CreationDate                     float64
	}
	out := make([]aliasEntry, 0, end-start)
	for _, name := range names[start:end] {
		a := k.aliases[name]
		out = append(out, aliasEntry{name, k.arnPrefix() + name, a.targetKeyID, float64(a.created.UnixMilli()) / 1000})
	}
	return map[string]any{"Aliases": out, "Truncated": next != "", "NextMarker": next}, nil
}

func (k *Service) listKeys(body []byte) (any, *core.Error) {
	var in struct {
		Limit  int
		Marker string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	start, end, next, apiErr := pageBounds(in.Limit, in.Marker, len(k.order))
	if apiErr != nil {
		return nil, apiErr
	}
	type entry struct{ KeyId, KeyArn string }
	out := make([]entry, 0, end-start)
	for _, id := range k.order[start:end] {
		out = append(out, entry{id, k.keys[id].ARN})
	}
	return map[string]any{"Keys": out, "Truncated": next != "", "NextMarker": next}, nil
}

// Permission is the IAM action and resource of a request, the key a KeyId
// names (by id, ARN or alias) or every key of the account, and the
// request's kms:ResourceAliases: the aliases of that key.
func (k *Service) Permission(op string, body []byte) (action, resource string, context map[string][]string) {
	var in struct {
		KeyId, TargetKeyId string
		CiphertextBlob     []byte
	}
	_ = json.Unmarshal(body, &in)
	ref := in.KeyId
	if ref == "" {
		ref = in.TargetKeyId
	}
	if id, _, ok := strings.Cut(string(in.CiphertextBlob), blobSeparator); ref == "" && ok {
		ref = id // Decrypt names its key in the ciphertext
	}
	if key, ok := k.Resolve(ref); ok {
		return "kms:" + op, key.ARN, map[string][]string{"kms:ResourceAliases": k.Aliases(key.ARN)}
	}
	return "kms:" + op, k.arnPrefix() + "key/*", nil
}

// boundData is what a ciphertext is sealed to: its key and its encryption
// context, in a canonical order (the context is a set of pairs).
func boundData(keyARN string, context map[string]string) []byte {
	names := make([]string, 0, len(context))
	for n := range context {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []byte(keyARN)
	for _, n := range names {
		out = strconv.AppendQuote(append(out, 0), n)
		out = strconv.AppendQuote(append(out, '='), context[n])
	}
	return out
}
