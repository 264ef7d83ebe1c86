// Package events holds sample payloads of every message shape s3rekey
// consumes, embedded for the tests that decode them.
package events

import "embed"

// Samples holds the *.json payloads of this directory.
//
//go:embed *.json
var Samples embed.FS
