// Package seal encrypts agency webhook secrets at rest: AES-256-GCM under a key-encryption
// key from configuration (MASH_NOTIFY_SECRET_KEY), never stored beside the data. Each
// sealed value is bound to what it belongs to (the additional data, e.g. the agency's
// partnership and id), so a sealed secret copied onto another row does not open. A database
// dump alone yields no secret.
//
// A sealed value is: version byte (1) || 12-byte nonce || ciphertext with its tag.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the key-encryption key's length: AES-256.
const KeySize = 32

const version byte = 1

// Box seals and opens values under one key.
type Box struct{ aead cipher.AEAD }

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: the key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Box{aead: g}, nil
}

// ParseKey reads a key given as base64 (standard or URL alphabet, padded or not).
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("must be base64 of %d random bytes (openssl rand -base64 32)", KeySize)
}

// NewKey returns a fresh random key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("seal: new key: %w", err)
	}
	return k, nil
}

// Seal encrypts plain bound to aad. An empty plain seals to nil: nothing to keep.
func (b *Box) Seal(plain []byte, aad string) ([]byte, error) {
	if len(plain) == 0 {
		return nil, nil
	}
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:], plain, []byte(aad)), nil
}

// ErrOpen means a sealed value could not be opened: another key, another row's value, or
// damaged bytes.
var ErrOpen = errors.New("seal: cannot open (wrong MASH_NOTIFY_SECRET_KEY, or the value belongs elsewhere)")

// Open decrypts a value sealed for aad. nil opens to nil.
func (b *Box) Open(sealed []byte, aad string) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	n := b.aead.NonceSize()
	if sealed[0] != version || len(sealed) < 1+n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(aad))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
