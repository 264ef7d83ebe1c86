package emulator

import (
	"net/http"

	"github.com/s3rekey/s3rekey/internal/emulator/s3"
)

// The S3 names tests and the CLI use, from the S3 package.
type (
	// EventBridgeRule stands in for an EventBridge rule with an SQS target.
	EventBridgeRule = s3.EventBridgeRule
	// InventoryOptions describes one S3 Inventory report to publish.
	InventoryOptions = s3.InventoryOptions
	// ObjectState is what Inspect reports of one stored object version.
	ObjectState = s3.ObjectState
)

const (
	// UOEOnCompliant counts UpdateObjectEncryption calls on objects already
	// compliant (a pseudo-operation in Counts).
	UOEOnCompliant = s3.UOEOnCompliant
	// LegacyUnencryptedHeader makes PutObject store an unencrypted object,
	// as S3 did before January 2023.
	LegacyUnencryptedHeader = s3.LegacyUnencryptedHeader
)

// KeyARNPattern is the pattern the API reference gives for KMSKeyArn.
var KeyARNPattern = s3.KeyARNPattern

// ParseEventBridgeRule reads the flag form BUCKET[:KEY_SUFFIX]=QUEUE_NAME.
func ParseEventBridgeRule(s string) (EventBridgeRule, error) { return s3.ParseEventBridgeRule(s) }

// PublishInventory does what S3 Inventory does on its schedule, now, and
// returns the manifest's key.
func (e *Emulator) PublishInventory(opts InventoryOptions) (string, error) {
	return e.s3.PublishInventory(opts)
}

// Inspect returns a copy of a stored version (versionID "" = current),
// reading the store directly, not through the API, and counting nothing.
func (e *Emulator) Inspect(bucket, key, versionID string) (ObjectState, bool) {
	return e.s3.Inspect(bucket, key, versionID)
}

// Versions returns every version of a bucket, delete markers included, in
// key order and newest first, read directly from the store.
func (e *Emulator) Versions(bucket string) []ObjectState { return e.s3.Versions(bucket) }

var _ http.Handler = (*Emulator)(nil)

// SetNotS3UpdateEncryption turns Options.NotS3UpdateEncryption on or off
// while the emulator runs.
func (e *Emulator) SetNotS3UpdateEncryption(on bool) { e.s3.OverwriteOnUpdateEncryption.Store(on) }
