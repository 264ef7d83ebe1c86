package emulator

import (
	"crypto/rand"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var kmsErrorCodes = jsonErrorCodes{}

type kmsKey struct {
	id          string
	arn         string
	description string
	created     time.Time
	enabled     bool
	awsManaged  bool
	material    []byte
}

type kmsAlias struct {
	name, targetKeyID string
	created           time.Time
}

type kmsService struct {
	account, region string

	mu      sync.RWMutex
	keys    map[string]*kmsKey // by key id
	order   []string           // key ids in creation order
	aliases map[string]*kmsAlias
}

func newKMSService(account, region string) *kmsService {
	return &kmsService{account: account, region: region, keys: map[string]*kmsKey{}, aliases: map[string]*kmsAlias{}}
}

func (k *kmsService) arnPrefix() string {
	return "arn:aws:kms:" + k.region + ":" + k.account + ":"
}

// createKey makes a symmetric key with fresh material.
func (k *kmsService) createKey(description string, awsManaged bool) *kmsKey {
	id := newUUID()
	material := make([]byte, 32)
	_, _ = rand.Read(material)
	key := &kmsKey{
		id: id, arn: k.arnPrefix() + "key/" + id, description: description,
		created: time.Now().UTC(), enabled: true, awsManaged: awsManaged, material: material,
	}
	k.keys[id] = key
	k.order = append(k.order, id)
	return key
}

// resolve finds a key by id, key ARN, alias name or alias ARN. A key ARN of
// another account or region is not found, as in KMS.
func (k *kmsService) resolve(ref string) (*kmsKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.resolveLocked(ref)
}

func (k *kmsService) resolveLocked(ref string) (*kmsKey, bool) {
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
func (k *kmsService) awsManagedS3Key() *kmsKey {
	const alias = "alias/aws/s3"
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.aliases[alias]; ok {
		return k.keys[a.targetKeyID]
	}
	key := k.createKey("Default key that protects my S3 objects when no other key is defined", true)
	k.aliases[alias] = &kmsAlias{name: alias, targetKeyID: key.id, created: key.created}
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
}

func (k *kmsService) metadata(key *kmsKey) kmsKeyMetadata {
	manager, state := "CUSTOMER", "Enabled"
	if key.awsManaged {
		manager = "AWS"
	}
	if !key.enabled {
		state = "Disabled"
	}
	return kmsKeyMetadata{
		AWSAccountID: k.account, KeyID: key.id, Arn: key.arn,
		CreationDate: float64(key.created.UnixMilli()) / 1000, Enabled: key.enabled,
		Description: key.description, KeyUsage: "ENCRYPT_DECRYPT", KeyState: state,
		Origin: "AWS_KMS", KeyManager: manager, KeySpec: "SYMMETRIC_DEFAULT",
		CustomerMasterKeySpec: "SYMMETRIC_DEFAULT", EncryptionAlgorithms: []string{"SYMMETRIC_DEFAULT"},
	}
}

func kmsNotFound(ref string) *apiError {
	return errorf(http.StatusBadRequest, "NotFoundException", "Invalid keyId '"+ref+"'")
}

func (k *kmsService) dispatch(_ *http.Request, op string, body []byte) (any, *apiError) {
	switch op {
	case "CreateKey":
		var in struct {
			Description string
			KeyUsage    string
			KeySpec     string
		}
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		if in.KeyUsage != "" && in.KeyUsage != "ENCRYPT_DECRYPT" {
			return nil, errorf(http.StatusBadRequest, "UnsupportedOperationException", "the emulator makes ENCRYPT_DECRYPT keys only")
		}
		if in.KeySpec != "" && in.KeySpec != "SYMMETRIC_DEFAULT" {
			return nil, errorf(http.StatusBadRequest, "UnsupportedOperationException", "the emulator makes SYMMETRIC_DEFAULT keys only")
		}
		k.mu.Lock()
		key := k.createKey(in.Description, false)
		k.mu.Unlock()
		return map[string]any{"KeyMetadata": k.metadata(key)}, nil
	case "DescribeKey":
		var in struct{ KeyId string }
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
		if in.KeyId == "" {
			return nil, errorf(http.StatusBadRequest, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
		}
		key, ok := k.resolve(in.KeyId)
		if !ok {
			if strings.HasPrefix(in.KeyId, "alias/") || strings.Contains(in.KeyId, ":alias/") {
				return nil, errorf(http.StatusBadRequest, "NotFoundException", "Alias "+in.KeyId+" is not found.")
			}
			return nil, kmsNotFound(in.KeyId)
		}
		return map[string]any{"KeyMetadata": k.metadata(key)}, nil
	case "CreateAlias":
		return k.createAlias(body)
	case "ListAliases":
		return k.listAliases(body)
	case "ListKeys":
		return k.listKeys(body)
	default:
		return nil, errorf(http.StatusBadRequest, "UnknownOperationException", "the emulator does not implement KMS "+op)
	}
}

func (k *kmsService) createAlias(body []byte) (any, *apiError) {
	var in struct{ AliasName, TargetKeyId string }
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(in.AliasName, "alias/") || len(in.AliasName) <= len("alias/") {
		return nil, errorf(http.StatusBadRequest, "ValidationException", "Alias must start with the prefix \"alias/\"")
	}
	if strings.HasPrefix(in.AliasName, "alias/aws/") {
		return nil, errorf(http.StatusBadRequest, "NotAuthorizedException", "Cannot create alias with prefix 'alias/aws/'")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, exists := k.aliases[in.AliasName]; exists {
		return nil, errorf(http.StatusBadRequest, "AlreadyExistsException",
			"An alias with the name "+k.arnPrefix()+in.AliasName+" already exists")
	}
	key, ok := k.resolveLocked(in.TargetKeyId)
	if !ok || strings.HasPrefix(in.TargetKeyId, "alias/") {
		return nil, kmsNotFound(in.TargetKeyId)
	}
	k.aliases[in.AliasName] = &kmsAlias{name: in.AliasName, targetKeyID: key.id, created: time.Now().UTC()}
	return struct{}{}, nil
}

// pageBounds reads Limit/Marker paging (marker = index of the next item).
func pageBounds(limit int, marker string, n int) (start, end int, next string, err *apiError) {
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return 0, 0, "", errorf(http.StatusBadRequest, "ValidationException", "Limit must be from 1 to 1000")
	}
	if marker != "" {
		v, convErr := strconv.Atoi(marker)
		if convErr != nil || v < 0 || v > n {
			return 0, 0, "", errorf(http.StatusBadRequest, "InvalidMarkerException", "invalid marker")
		}
		start = v
	}
	end = min(start+limit, n)
	if end < n {
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

func (k *kmsService) listAliases(body []byte) (any, *apiError) {
	var in struct {
		KeyId  string
		Limit  int
		Marker string
	}
	if err := decodeJSON(body, &in); err != nil {
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
		filterID = key.id
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
	type alias struct {
		AliasName, AliasArn, TargetKeyId string
		CreationDate                     float64
	}
	out := make([]alias, 0, end-start)
	for _, name := range names[start:end] {
		a := k.aliases[name]
		out = append(out, alias{name, k.arnPrefix() + name, a.targetKeyID, float64(a.created.UnixMilli()) / 1000})
	}
	return map[string]any{"Aliases": out, "Truncated": next != "", "NextMarker": next}, nil
}

func (k *kmsService) listKeys(body []byte) (any, *apiError) {
	var in struct {
		Limit  int
		Marker string
	}
	if err := decodeJSON(body, &in); err != nil {
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
		out = append(out, entry{id, k.keys[id].arn})
	}
	return map[string]any{"Keys": out, "Truncated": next != "", "NextMarker": next}, nil
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return string(out)
}
