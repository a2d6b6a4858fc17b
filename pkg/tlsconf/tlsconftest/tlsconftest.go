// Package tlsconftest makes a throwaway certificate authority and certificates for tests
// of TLS and mutual TLS: nothing is read from the repository, so no key is ever committed.
package tlsconftest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/tlsconf"
)

// PKI is a test CA and the files of certificates it signed.
type PKI struct {
	// CA is the CA certificate's file.
	CA string
	// Server is a certificate for 127.0.0.1, ::1 and localhost, usable by servers and
	// clients alike (as cert-manager issues mash's).
	Server tlsconf.Files
	// Client is a second certificate from the same CA, for a client.
	Client tlsconf.Files

	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// New makes a CA in a temporary directory and a server and client certificate signed by it.
// Server and Client have CA set as their CA; ClientCA is left for the test to set.
func New(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{dir: t.TempDir()}
	key := newKey(t)
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mash test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caKey = key
	p.CA = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.Server = p.Issue(t, "server")
	p.Client = p.Issue(t, "client")
	return p
}

// Issue makes another certificate signed by the CA, named name, for loopback addresses.
func (p *PKI) Issue(t testing.TB, name string) tlsconf.Files {
	t.Helper()
	key := newKey(t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return tlsconf.Files{
		Cert: p.write(t, name+".pem", "CERTIFICATE", der),
		Key:  p.write(t, name+"-key.pem", "PRIVATE KEY", keyDER),
		CA:   p.CA,
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func (p *PKI) write(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
