package messages

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// SQS accepts in a message body only the characters of XML 1.0: #x9, #xA,
// #xD, #x20 to #xD7FF, #xE000 to #xFFFD and #x10000 to #x10FFFF (SQS API
// reference, SendMessage, MessageBody). An S3 key is any UTF-8 string
// (userguide object-keys), so a key can hold characters SQS refuses. In
// task JSON those are written as JSON \u escapes, which are ASCII for SQS
// and which any JSON decoder turns back into the very same characters:
// Go's encoder already escapes the controls below #x20; sqsEscape
// escapes the two noncharacters U+FFFE and U+FFFF, the only other code
// points valid UTF-8 can hold that SQS refuses (the surrogates #xD800 to
// #xDFFF cannot be encoded in UTF-8 at all).

// SQSAllowed reports whether SQS accepts r in a message body.
func SQSAllowed(r rune) bool {
	switch {
	case r == 0x9, r == 0xA, r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// SQSSafe reports whether body is UTF-8 whose every character SQS accepts.
func SQSSafe(body string) bool {
	if !utf8.ValidString(body) {
		return false
	}
	for _, r := range body {
		if !SQSAllowed(r) {
			return false
		}
	}
	return true
}

// noncharacters are U+FFFE and U+FFFF in UTF-8, and their JSON escapes.
var noncharacters = []struct{ raw, escaped []byte }{
	{[]byte("\uFFFE"), []byte(`\ufffe`)},
	{[]byte("\uFFFF"), []byte(`\uffff`)},
}

// sqsEscape rewrites JSON so that SQS accepts it: the noncharacters,
// which can only stand inside JSON strings, become their \u escapes.
func sqsEscape(js []byte) []byte {
	for _, n := range noncharacters {
		if bytes.Contains(js, n.raw) {
			js = bytes.ReplaceAll(js, n.raw, n.escaped)
		}
	}
	return js
}

// checkUTF8 refuses a task whose object names are not UTF-8 (S3 keys
// always are): JSON would replace the invalid bytes with U+FFFD, naming
// another object.
func (t Task) checkUTF8() error {
	for i, o := range t.Objects {
		for field, s := range map[string]string{"bucket": o.Bucket, "key": o.Key, "raw key": o.RawKey, "version id": o.VersionID} {
			if !utf8.ValidString(s) {
				return fmt.Errorf("task object %d: %s %q is not valid UTF-8 (S3 names are UTF-8)", i, field, s)
			}
		}
	}
	return nil
}
