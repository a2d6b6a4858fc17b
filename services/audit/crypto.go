package audit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Keys: each case (referral) has a random 32-byte data key; it is stored wrapped with the
// master key (AES-256-GCM, nonce || sealed, the referral id as additional data so a wrapped
// key cannot be moved to another case). Payloads are sealed with the case key, the event id
// as additional data so a ciphertext cannot be moved to another event.

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// wrapKey seals key with the master key.
func wrapKey(master, key []byte, referralID string) ([]byte, error) {
	g, err := newGCM(master)
	if err != nil {
		return nil, fmt.Errorf("wrap case key: %w", err)
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("wrap case key: %w", err)
	}
	return g.Seal(nonce, nonce, key, []byte(referralID)), nil
}

// unwrapKey opens a key sealed by wrapKey.
func unwrapKey(master, wrapped []byte, referralID string) ([]byte, error) {
	g, err := newGCM(master)
	if err != nil {
		return nil, fmt.Errorf("unwrap case key: %w", err)
	}
	if len(wrapped) < g.NonceSize() {
		return nil, errors.New("unwrap case key: too short")
	}
	key, err := g.Open(nil, wrapped[:g.NonceSize()], wrapped[g.NonceSize():], []byte(referralID))
	if err != nil {
		return nil, fmt.Errorf("unwrap case key of %s (wrong master key?): %w", referralID, err)
	}
	return key, nil
}

// seal encrypts plaintext with a case key; it returns the nonce and ciphertext.
func seal(key, plaintext []byte, eventID string) (nonce, ciphertext []byte, err error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("seal payload: %w", err)
	}
	nonce = make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("seal payload: %w", err)
	}
	return nonce, g.Seal(nil, nonce, plaintext, []byte(eventID)), nil
}

// open decrypts a payload sealed by seal.
func open(key, nonce, ciphertext []byte, eventID string) ([]byte, error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, fmt.Errorf("open payload: %w", err)
	}
	if len(nonce) != g.NonceSize() {
		return nil, errors.New("open payload: bad nonce")
	}
	p, err := g.Open(nil, nonce, ciphertext, []byte(eventID))
	if err != nil {
		return nil, fmt.Errorf("open payload %s: %w", eventID, err)
	}
	return p, nil
}
