// Package tlsconf turns certificate files into TLS configurations for mash's listeners
// (gRPC, HTTP, the embedded NATS server) and its clients (peers, NATS). One certificate
// serves both directions: a process presents it to its callers and, under mutual TLS, to
// the services and the NATS servers it calls.
//
// The certificate and key are read again when their files change (cert-manager renews them
// in place), so a renewal needs no restart. CA bundles are read once, at start.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Files names the PEM files of a process's TLS settings.
type Files struct {
	// Cert and Key are the process's certificate chain and private key.
	Cert, Key string
	// CA is the bundle that servers this process calls (peers, NATS) must chain to; empty
	// means the system's roots.
	CA string
	// ClientCA, when set, turns on mutual TLS: a client of the gRPC listener (and of the
	// embedded NATS listener) must present a certificate that chains to it.
	ClientCA string
}

// Enabled reports whether a certificate is configured.
func (f Files) Enabled() bool { return f.Cert != "" }

// Validate checks the files as a set and loads each once, naming the setting at fault
// through names (Cert, Key, CA, ClientCA -> the environment variable).
func (f Files) Validate(names Files) error {
	if (f.Cert == "") != (f.Key == "") {
		return fmt.Errorf("%s and %s: set both or neither", names.Cert, names.Key)
	}
	if !f.Enabled() && f.ClientCA != "" {
		return fmt.Errorf("%s: mutual TLS needs the process's own certificate too: set %s and %s", names.ClientCA, names.Cert, names.Key)
	}
	if f.Enabled() {
		if _, err := tls.LoadX509KeyPair(f.Cert, f.Key); err != nil {
			return fmt.Errorf("%s/%s: %w", names.Cert, names.Key, err)
		}
	}
	for _, c := range []struct{ file, name string }{{f.CA, names.CA}, {f.ClientCA, names.ClientCA}} {
		if c.file == "" {
			continue
		}
		if _, err := loadPool(c.file); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

// Set is loaded TLS settings; its configurations share one reloading certificate.
type Set struct {
	files    Files
	pair     *keyPair
	ca       *x509.CertPool
	clientCA *x509.CertPool
}

// Load reads the files. It returns nil, nil when no certificate is configured.
func Load(f Files) (*Set, error) {
	if !f.Enabled() {
		return nil, nil
	}
	s := &Set{files: f, pair: &keyPair{cert: f.Cert, key: f.Key}}
	if _, err := s.pair.get(); err != nil {
		return nil, err
	}
	var err error
	if f.CA != "" {
		if s.ca, err = loadPool(f.CA); err != nil {
			return nil, err
		}
	}
	if f.ClientCA != "" {
		if s.clientCA, err = loadPool(f.ClientCA); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Mutual reports whether clients must present certificates.
func (s *Set) Mutual() bool { return s != nil && s.clientCA != nil }

// Server is the configuration of a listener that takes client certificates when mutual TLS
// is on (gRPC between services, the embedded NATS server).
func (s *Set) Server() *tls.Config {
	c := s.Public()
	if s.clientCA != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = s.clientCA
	}
	return c
}

// Public is the configuration of a listener people and outside systems reach (HTTP): TLS,
// but no client certificate asked for.
func (s *Set) Public() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.pair.get()
		},
	}
}

// Client is the configuration for calling a server (a peer, NATS): its certificate must
// chain to CA (or the system roots), and this process presents its own certificate when
// asked.
func (s *Set) Client() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    s.ca,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.pair.get()
		},
	}
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s: no PEM certificates in it", file)
	}
	return pool, nil
}

// keyPair is a certificate read again when its files' modification times change.
type keyPair struct {
	cert, key string

	mu      sync.Mutex
	loaded  *tls.Certificate
	modCert time.Time
	modKey  time.Time
}

func (k *keyPair) get() (*tls.Certificate, error) {
	ci, err := os.Stat(k.cert)
	if err != nil {
		return k.fallback(fmt.Errorf("certificate: %w", err))
	}
	ki, err := os.Stat(k.key)
	if err != nil {
		return k.fallback(fmt.Errorf("key: %w", err))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.loaded != nil && ci.ModTime().Equal(k.modCert) && ki.ModTime().Equal(k.modKey) {
		return k.loaded, nil
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.loaded != nil {
			// A renewal caught half-written (certificate new, key old): keep serving the
			// previous pair until both files agree.
			return k.loaded, nil
		}
		return nil, fmt.Errorf("load certificate %s: %w", k.cert, err)
	}
	k.loaded, k.modCert, k.modKey = &c, ci.ModTime(), ki.ModTime()
	return k.loaded, nil
}

func (k *keyPair) fallback(err error) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.loaded != nil {
		return k.loaded, nil
	}
	return nil, errors.Join(errors.New("load TLS key pair"), err)
}
