package messages

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// roundTrip encodes a task naming key and decodes it back.
func roundTrip(t testing.TB, key string) {
	t.Helper()
	body, err := Task{Source: SourceListing, Objects: []Object{{Bucket: "bkt", Key: key, RawKey: key}}}.Encode()
	if err != nil {
		t.Fatalf("encode %q: %v", key, err)
	}
	if !SQSSafe(body) {
		t.Fatalf("key %q: body %q has characters SQS refuses", key, body)
	}
	got, err := Decode(body)
	if err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	if len(got.Objects) != 1 || got.Objects[0].Key != key || got.Objects[0].RawKey != key {
		t.Fatalf("key %q came back as %+v", key, got.Objects)
	}
}

// Every code point UTF-8 can hold, in keys, reaches SQS as characters it
// accepts (SQS SendMessage, MessageBody: #x9 #xA #xD #x20-#xD7FF
// #xE000-#xFFFD #x10000-#x10FFFF) and comes back exactly, U+FFFE and
// U+FFFF (which S3 keys may hold) included.
func TestEveryCodePointRoundTrips(t *testing.T) {
	var b strings.Builder
	n := 0
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue // surrogates: no UTF-8 string holds them
		}
		b.WriteRune(r)
		if n++; n == 512 || r == utf8.MaxRune {
			roundTrip(t, "k/"+b.String())
			b.Reset()
			n = 0
		}
	}
	for _, key := range []string{"\uFFFE", "a\uFFFFb", "\uFFFD", "tab\tnew\nline\rret", "\x00nul\x1f", "\u2028\u2029"} {
		roundTrip(t, key)
	}
}

// SQS's set, read from its reference: U+FFFD is allowed, U+FFFE is not.
func TestSQSAllowed(t *testing.T) {
	for r, want := range map[rune]bool{0x8: false, 0x9: true, 0xA: true, 0xB: false, 0xD: true, 0x1F: false, 0x20: true, 0xD7FF: true,
		0xE000: true, 0xFFFD: true, 0xFFFE: false, 0xFFFF: false, 0x10000: true, 0x10FFFF: true} {
		if SQSAllowed(r) != want {
			t.Errorf("SQSAllowed(%U) = %v, want %v", r, !want, want)
		}
	}
}

// A name that is not UTF-8 is refused rather than silently changed.
func TestEncodeRefusesInvalidUTF8(t *testing.T) {
	if _, err := (Task{Source: SourceListing, Objects: []Object{{Bucket: "bkt", Key: "bad\xffkey"}}}).Encode(); err == nil {
		t.Error("a key with an invalid UTF-8 byte was encoded")
	}
}

// FuzzKeyRoundTrip: any UTF-8 key survives task JSON exactly, in a body
// SQS accepts.
func FuzzKeyRoundTrip(f *testing.F) {
	for _, s := range []string{"a+b", "\uFFFE\uFFFF", "\x00", "日本", "\U0010FFFF", "\uFFFD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if key == "" || !utf8.ValidString(key) {
			return
		}
		roundTrip(t, key)
	})
}
