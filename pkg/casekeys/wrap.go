package casekeys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Wrapper wraps and unwraps data keys with a key-encryption key it holds. LocalWrapper keeps
// the key-encryption key in the process (from configuration); an external KMS implements the
// same two calls, so the key-encryption key never leaves it.
type Wrapper interface {
	// Wrap encrypts key, binding it to caseID so a wrapped key cannot be moved to another
	// case.
	Wrap(ctx context.Context, key []byte, caseID string) ([]byte, error)
	// Unwrap reverses Wrap for the same caseID.
	Unwrap(ctx context.Context, wrapped []byte, caseID string) ([]byte, error)
}

// KEKSize is the length of a LocalWrapper's key-encryption key: AES-256.
const KEKSize = 32

// LocalWrapper wraps data keys with AES-256-GCM under a key-encryption key from
// configuration: nonce || ciphertext, the case id as additional data.
type LocalWrapper struct {
	aead cipher.AEAD
}

// NewLocalWrapper returns a wrapper using kek, which must be KEKSize random bytes.
func NewLocalWrapper(kek []byte) (*LocalWrapper, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("case key-encryption key: %d bytes, want %d", len(kek), KEKSize)
	}
	aead, err := newGCM(kek)
	if err != nil {
		return nil, fmt.Errorf("case key-encryption key: %w", err)
	}
	return &LocalWrapper{aead: aead}, nil
}

// Wrap implements Wrapper.
func (w *LocalWrapper) Wrap(_ context.Context, key []byte, caseID string) ([]byte, error) {
	nonce := make([]byte, w.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("wrap key of case %s: %w", caseID, err)
	}
	return w.aead.Seal(nonce, nonce, key, []byte(caseID)), nil
}

// Unwrap implements Wrapper.
func (w *LocalWrapper) Unwrap(_ context.Context, wrapped []byte, caseID string) ([]byte, error) {
	n := w.aead.NonceSize()
	if len(wrapped) < n {
		return nil, fmt.Errorf("unwrap key of case %s: %d bytes is too short", caseID, len(wrapped))
	}
	key, err := w.aead.Open(nil, wrapped[:n], wrapped[n:], []byte(caseID))
	if err != nil {
		return nil, fmt.Errorf("unwrap key of case %s (a different key-encryption key?): %w", caseID, err)
	}
	return key, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// errShortNonce is returned for a sealed payload whose nonce is not a GCM nonce.
var errShortNonce = errors.New("nonce is not 12 bytes")
