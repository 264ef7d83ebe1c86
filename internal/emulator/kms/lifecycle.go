package kms

// Key lifecycle: DisableKey, EnableKey, ScheduleKeyDeletion,
// CancelKeyDeletion, key policies, and the key-state rules every
// cryptographic use of a key obeys (KMS developer guide, key-state.md, "Key
// state table" and its footnotes [1] to [4]).

import (
	"net/http"
	"sort"
	"time"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
	"github.com/s3rekey/s3rekey/internal/emulator/iam"
)

// Key states, as DescribeKey names them.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
)

// The deletion waiting period (API_ScheduleKeyDeletion.md,
// PendingWindowInDays: 7 to 30, default 30).
const (
	minPendingWindowDays     = 7
	maxPendingWindowDays     = 30
	defaultPendingWindowDays = 30
)

// keyLife is the part of a key that changes after creation. It is read and
// written under Service.mu.
type keyLife struct {
	// deletionDate is when a key pending deletion would be deleted; zero
	// when no deletion is scheduled. The emulator never deletes the key: the
	// shortest window, 7 days, outlasts any run.
	deletionDate  time.Time
	pendingWindow int
	// policy is the key policy set by PutKeyPolicy; nil is the default key
	// policy, which lets IAM policies decide (key-policy-default.md).
	policy    *iam.Policy
	policyDoc string
	// tags are the key's resource tags (TagResource).
	tags map[string]string
}

// stateLocked is a key's state.
func stateLocked(key *Key) string {
	switch {
	case !key.life.deletionDate.IsZero():
		return StatePendingDeletion
	case !key.enabled:
		return StateDisabled
	}
	return StateEnabled
}

// State is the key state of a key by any reference, and whether the key
// exists.
func (k *Service) State(ref string) (string, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.resolveLocked(ref)
	if !ok {
		return "", false
	}
	return stateLocked(key), true
}

// UnusableError is the KMS error of a cryptographic operation on a key in
// a state that forbids it, nil for an enabled key: DisabledException for a
// disabled key (footnote [1]), KMSInvalidStateException for one pending
// deletion (footnote [3]). Both are HTTP 400 in every operation's Errors.
func (k *Service) UnusableError(key *Key) *core.Error {
	k.mu.RLock()
	state := stateLocked(key)
	k.mu.RUnlock()
	switch state {
	case StateDisabled:
		return core.Errorf(http.StatusBadRequest, "DisabledException", key.ARN+" is disabled.")
	case StatePendingDeletion:
		return core.Errorf(http.StatusBadRequest, "KMSInvalidStateException", key.ARN+" is pending deletion.")
	}
	return nil
}

// KeyPolicyAllows evaluates a key's policy for a use of it. With the default
// key policy IAM policies decide alone; a key policy set by PutKeyPolicy
// must allow the action and not deny it ("no principal has any permission
// on a KMS key unless the key policy allows it", key-policies.md). The
// emulator ignores a statement's Principal: every statement applies to
// every caller of the account.
func (k *Service) KeyPolicyAllows(key *Key, action string, context map[string][]string) bool {
	k.mu.RLock()
	policy := key.life.policy
	k.mu.RUnlock()
	if policy == nil || k.PrincipalPolicies {
		return true
	}
	return policy.Evaluate(iam.Request{Action: action, Resource: key.ARN, Context: context}) == iam.Allowed
}

// KeyPolicy is the key policy of the key ref names (the default key policy
// when none was put), and the key's ARN; ok is false for an unknown key.
func (k *Service) KeyPolicy(ref string) (policy *iam.Policy, keyARN string, ok bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, found := k.resolveLocked(ref)
	if !found {
		return nil, "", false
	}
	if key.life.policy != nil {
		return key.life.policy, key.ARN, true
	}
	p, err := iam.ParsePolicy([]byte(k.defaultKeyPolicy()))
	if err != nil {
		return nil, "", false
	}
	return p, key.ARN, true
}

// checkedKey resolves the KeyId of a lifecycle request: a key id or key ARN
// of a customer managed key (the AWS managed key's lifecycle is AWS's).
func (k *Service) checkedKey(keyID string) (*Key, *core.Error) {
	if keyID == "" {
		return nil, core.Errorf(http.StatusBadRequest, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	key, ok := k.resolveLocked(keyID)
	if !ok {
		return nil, kmsNotFound(keyID)
	}
	if key.AWSManaged {
		return nil, core.Errorf(http.StatusBadRequest, "UnsupportedOperationException", key.ARN+" is an AWS managed key.")
	}
	return key, nil
}

func errPendingDeletion(key *Key) *core.Error {
	return core.Errorf(http.StatusBadRequest, "KMSInvalidStateException", key.ARN+" is pending deletion.")
}

// lifecycle serves DisableKey, EnableKey, ScheduleKeyDeletion,
// CancelKeyDeletion, PutKeyPolicy and GetKeyPolicy.
func (k *Service) lifecycle(op string, body []byte) (any, *core.Error) {
	var in struct {
		KeyId               string
		PendingWindowInDays *int
		Policy              string
		PolicyName          string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, apiErr := k.checkedKey(in.KeyId)
	if apiErr != nil {
		return nil, apiErr
	}
	pending := !key.life.deletionDate.IsZero()
	switch op {
	case "DisableKey", "EnableKey":
		// key-state.md: DisableKey and EnableKey fail on a key pending
		// deletion (footnote [3]) and succeed on enabled and disabled keys.
		if pending {
			return nil, errPendingDeletion(key)
		}
		key.enabled = op == "EnableKey"
		return struct{}{}, nil
	case "ScheduleKeyDeletion":
		days := defaultPendingWindowDays
		if in.PendingWindowInDays != nil {
			days = *in.PendingWindowInDays
		}
		if days < minPendingWindowDays || days > maxPendingWindowDays {
			return nil, core.Errorf(http.StatusBadRequest, "ValidationException",
				"1 validation error detected: Value at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30")
		}
		if pending {
			return nil, errPendingDeletion(key)
		}
		key.life.deletionDate = time.Now().UTC().Add(time.Duration(days) * 24 * time.Hour)
		key.life.pendingWindow = days
		key.enabled = false
		return map[string]any{
			"KeyId": key.ARN, "KeyState": StatePendingDeletion, "PendingWindowInDays": days,
			"DeletionDate": float64(key.life.deletionDate.UnixMilli()) / 1000,
		}, nil
	case "CancelKeyDeletion":
		// API_CancelKeyDeletion.md: the key is Disabled afterwards;
		// key-state.md footnote [4] for a key not pending deletion.
		if !pending {
			return nil, core.Errorf(http.StatusBadRequest, "KMSInvalidStateException", key.ARN+" is not pending deletion.")
		}
		key.life.deletionDate, key.life.pendingWindow = time.Time{}, 0
		key.enabled = false
		return map[string]any{"KeyId": key.ARN}, nil
	case "PutKeyPolicy":
		if in.PolicyName != "" && in.PolicyName != "default" {
			return nil, core.Errorf(http.StatusBadRequest, "ValidationException", "PolicyName must be default")
		}
		p, err := iam.ParsePolicy([]byte(in.Policy))
		if err != nil {
			return nil, core.Errorf(http.StatusBadRequest, "MalformedPolicyDocumentException", err.Error())
		}
		key.life.policy, key.life.policyDoc = p, in.Policy
		return struct{}{}, nil
	default: // GetKeyPolicy
		doc := key.life.policyDoc
		if doc == "" {
			doc = k.defaultKeyPolicy()
		}
		return map[string]any{"Policy": doc, "PolicyName": "default"}, nil
	}
}

// tagging serves TagResource, UntagResource and ListResourceTags
// (API_TagResource.md, API_UntagResource.md, API_ListResourceTags.md): at
// most 50 tags a key, keys of 1 to 128 characters, values up to 256, not
// on AWS managed keys.
func (k *Service) tagging(op string, body []byte) (any, *core.Error) {
	var in struct {
		KeyId   string
		Tags    []struct{ TagKey, TagValue string }
		TagKeys []string
		Limit   int
		Marker  string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, apiErr := k.checkedKey(in.KeyId)
	if apiErr != nil {
		return nil, apiErr
	}
	switch op {
	case "TagResource":
		next := map[string]string{}
		for name, v := range key.life.tags {
			next[name] = v
		}
		for _, t := range in.Tags {
			if t.TagKey == "" || len(t.TagKey) > 128 || len(t.TagValue) > 256 {
				return nil, core.Errorf(http.StatusBadRequest, "TagException", "tag keys are 1 to 128 characters, values at most 256")
			}
			next[t.TagKey] = t.TagValue
		}
		if len(next) > 50 {
			return nil, core.Errorf(http.StatusBadRequest, "LimitExceededException", "a KMS key has at most 50 tags")
		}
		key.life.tags = next
		return struct{}{}, nil
	case "UntagResource":
		for _, name := range in.TagKeys {
			delete(key.life.tags, name)
		}
		return struct{}{}, nil
	}
	names := make([]string, 0, len(key.life.tags))
	for name := range key.life.tags {
		names = append(names, name)
	}
	sort.Strings(names)
	limit := in.Limit
	if limit == 0 {
		limit = 50
	}
	start, end, next, apiErr := pageBounds(limit, in.Marker, len(names))
	if apiErr != nil {
		return nil, apiErr
	}
	type tag struct{ TagKey, TagValue string }
	out := make([]tag, 0, end-start)
	for _, name := range names[start:end] {
		out = append(out, tag{name, key.life.tags[name]})
	}
	return map[string]any{"Tags": out, "Truncated": next != "", "NextMarker": next}, nil
}

// defaultKeyPolicy is the default key policy: the account root may do
// everything, so IAM policies decide (key-policy-default.md).
func (k *Service) defaultKeyPolicy() string {
	return `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow",` +
		`"Principal":{"AWS":"arn:aws:iam::` + k.account + `:root"},"Action":"kms:*","Resource":"*"}]}`
}

// lifecycleMetadata adds what DescribeKey tells of a key's lifecycle:
// Enabled, KeyState, and for a key pending deletion its DeletionDate and
// PendingDeletionWindowInDays (API_KeyMetadata.md).
func (k *Service) lifecycleMetadata(key *Key, md *kmsKeyMetadata) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	md.KeyState = stateLocked(key)
	md.Enabled = md.KeyState == StateEnabled
	if !key.life.deletionDate.IsZero() {
		d := float64(key.life.deletionDate.UnixMilli()) / 1000
		w := key.life.pendingWindow
		md.DeletionDate, md.PendingDeletionWindowInDays = &d, &w
	}
}

// reEncrypt decrypts a ciphertext under its key and encrypts the plaintext
// under DestinationKeyId (API_ReEncrypt.md). The destination must be
// usable; a source key pending deletion still decrypts (key-state.md,
// footnote [10]), a disabled one does not.
func (k *Service) reEncrypt(body []byte) (any, *core.Error) {
	var in struct {
		CiphertextBlob   []byte
		DestinationKeyId string
	}
	if err := core.DecodeJSON(body, &in); err != nil {
		return nil, err
	}
	source, plain, apiErr := k.open(in.CiphertextBlob)
	if apiErr != nil {
		return nil, apiErr
	}
	k.mu.RLock()
	sourceDisabled := stateLocked(source) == StateDisabled
	k.mu.RUnlock()
	if sourceDisabled {
		return nil, k.UnusableError(source)
	}
	dest, ok := k.Resolve(in.DestinationKeyId)
	if !ok {
		return nil, kmsNotFound(in.DestinationKeyId)
	}
	if apiErr := k.UnusableError(dest); apiErr != nil {
		return nil, apiErr
	}
	return map[string]any{
		"CiphertextBlob": k.seal(dest, plain), "KeyId": dest.ARN, "SourceKeyId": source.ARN,
		"SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
	}, nil
}

// open decrypts a ciphertext blob and returns the key that sealed it.
func (k *Service) open(blob []byte) (*Key, []byte, *core.Error) {
	invalid := core.Errorf(http.StatusBadRequest, "InvalidCiphertextException", "The ciphertext is not valid")
	id, sealed, ok := cutBlob(blob)
	if !ok {
		return nil, nil, invalid
	}
	key, found := k.Resolve(id)
	if !found {
		return nil, nil, invalid
	}
	plain, err := core.Open(key.Material, sealed, []byte(key.ARN))
	if err != nil {
		return nil, nil, invalid
	}
	return key, plain, nil
}

// seal makes a ciphertext blob of plain under key.
func (k *Service) seal(key *Key, plain []byte) []byte {
	return append([]byte(key.ID+blobSeparator), core.Seal(key.Material, plain, []byte(key.ARN))...)
}

func cutBlob(blob []byte) (id string, sealed []byte, ok bool) {
	for i, c := range blob {
		if c == blobSeparator[0] {
			return string(blob[:i]), blob[i+1:], true
		}
	}
	return "", nil, false
}

// usable is the key-state and key-policy check of a direct cryptographic
// call on key.
func (k *Service) usable(op string, key *Key) *core.Error {
	if apiErr := k.UnusableError(key); apiErr != nil {
		return apiErr
	}
	if !k.KeyPolicyAllows(key, "kms:"+op, map[string][]string{"kms:CallerAccount": {k.account}}) {
		return core.Errorf(http.StatusBadRequest, "AccessDeniedException",
			"User is not authorized to perform: kms:"+op+" on resource: "+key.ARN+" because no resource-based policy allows the kms:"+op+" action")
	}
	return nil
}
