package core

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// ErrWrongKey is a sealed value that does not open under the key given.
var ErrWrongKey = errors.New("data key cannot be unwrapped")

// Seal encrypts plaintext with AES-256-GCM; the nonce leads the output.
func Seal(key, plaintext, aad []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("emulator: AES key must be 32 bytes: " + err.Error()) // keys are made here, always 32 bytes
	}
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	_, _ = rand.Read(nonce)
	return gcm.Seal(nonce, nonce, plaintext, aad)
}

// Open decrypts what Seal sealed under the same key and data.
func Open(key, sealed, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, _ := cipher.NewGCM(block)
	if len(sealed) < gcm.NonceSize() {
		return nil, ErrWrongKey
	}
	out, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], aad)
	if err != nil {
		return nil, ErrWrongKey
	}
	return out, nil
}
