package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/mash-hub/mash/services/notify/seal"
)

func TestSealOpensOnlyWithItsKeyAndRow(t *testing.T) {
	k1, _ := seal.NewKey()
	k2, _ := seal.NewKey()
	b1, err := seal.New(k1)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := seal.New(k2)
	secret := []byte("0123456789abcdef0123456789abcdef-webhook")
	sealed, err := b1.Seal(secret, "p/agency-a")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed value holds the secret in clear")
	}
	again, _ := b1.Seal(secret, "p/agency-a")
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	got, err := b1.Open(sealed, "p/agency-a")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q %v", got, err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"another key": func() ([]byte, error) { return b2.Open(sealed, "p/agency-a") },
		"another row": func() ([]byte, error) { return b1.Open(sealed, "p/agency-b") },
		"damaged":     func() ([]byte, error) { d := bytes.Clone(sealed); d[len(d)-1] ^= 1; return b1.Open(d, "p/agency-a") },
		"clear text":  func() ([]byte, error) { return b1.Open(secret, "p/agency-a") },
	} {
		if _, err := open(); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("%s: opened (%v)", name, err)
		}
	}
	if s, err := b1.Seal(nil, "x"); s != nil || err != nil {
		t.Fatalf("empty secret sealed to %v %v", s, err)
	}
}

func TestParseKey(t *testing.T) {
	k, _ := seal.NewKey()
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		got, err := seal.ParseKey(" " + enc.EncodeToString(k) + "\n")
		if err != nil || !bytes.Equal(got, k) {
			t.Fatalf("parse: %v", err)
		}
	}
	for _, bad := range []string{"", "short", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := seal.ParseKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := seal.New(make([]byte, 16)); err == nil {
		t.Fatal("16-byte key accepted")
	}
}
