package policy

import (
	"errors"
	"fmt"
	"slices"
)

// TrustedKeys pins the keys the policy's aliases may resolve to, so that
// whoever can repoint an alias (kms:UpdateAlias) cannot move the buckets
// onto a key of their choosing. A resolved key is trusted when it is in
// KeyARNs or carries Tag; with neither set, any key of the bucket owner's
// account is (as before). Either way a target must be a customer managed
// symmetric encryption key (internal/keyalias).
type TrustedKeys struct {
	// KeyARNs are the key ARNs an alias may resolve to.
	KeyARNs []string `json:"keyArns,omitempty"`
	// Tag is a KMS resource tag a key an alias resolves to must carry.
	Tag *KeyTag `json:"tag,omitempty"`
}

// KeyTag is a KMS resource tag, key and value as TagResource sets them.
type KeyTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// checkTrust validates trustedKeys.
func (p *Policy) checkTrust() error {
	t := p.TrustedKeys
	if t == nil {
		return nil
	}
	if len(t.KeyARNs) == 0 && t.Tag == nil {
		return errors.New("trustedKeys: set keyArns, tag or both (leave trustedKeys out to trust any key of the bucket owner)")
	}
	for i, arn := range t.KeyARNs {
		if !keyARNPattern.MatchString(arn) {
			return fmt.Errorf("trustedKeys.keyArns[%d]: %q is not a full KMS key ARN", i, arn)
		}
	}
	// TagResource: a tag key is 1 to 128 characters, a value 0 to 256.
	if t.Tag != nil && (t.Tag.Key == "" || len(t.Tag.Key) > 128 || len(t.Tag.Value) > 256) {
		return errors.New("trustedKeys.tag: key must be 1 to 128 characters and value at most 256")
	}
	return nil
}

// Pinned reports that the policy restricts the keys aliases may resolve to.
func (p *Policy) Pinned() bool { return p.TrustedKeys != nil }

// TrustsKeyARN reports a key ARN in trustedKeys.keyArns.
func (p *Policy) TrustsKeyARN(arn string) bool {
	return p.TrustedKeys != nil && slices.Contains(p.TrustedKeys.KeyARNs, arn)
}

// TrustTag is the tag trusted keys carry, nil when none is required.
func (p *Policy) TrustTag() *KeyTag {
	if p.TrustedKeys == nil {
		return nil
	}
	return p.TrustedKeys.Tag
}
