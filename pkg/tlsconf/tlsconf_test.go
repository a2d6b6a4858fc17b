package tlsconf_test

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/tlsconf"
	"github.com/mash-hub/mash/pkg/tlsconf/tlsconftest"
)

var names = tlsconf.Files{Cert: "MASH_TLS_CERT", Key: "MASH_TLS_KEY", CA: "MASH_TLS_CA", ClientCA: "MASH_TLS_CLIENT_CA"}

func TestValidateNamesTheSetting(t *testing.T) {
	t.Parallel()
	pki := tlsconftest.New(t)
	notPEM := t.TempDir() + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		files tlsconf.Files
		want  string
	}{
		{tlsconf.Files{Cert: pki.Server.Cert}, "MASH_TLS_CERT and MASH_TLS_KEY"},
		{tlsconf.Files{Key: pki.Server.Key}, "MASH_TLS_CERT and MASH_TLS_KEY"},
		{tlsconf.Files{ClientCA: pki.CA}, "MASH_TLS_CLIENT_CA"},
		{tlsconf.Files{Cert: pki.Server.Cert, Key: pki.Client.Key}, "MASH_TLS_CERT/MASH_TLS_KEY"},
		{tlsconf.Files{Cert: pki.Server.Cert, Key: pki.Server.Key, CA: notPEM}, "MASH_TLS_CA"},
		{tlsconf.Files{Cert: pki.Server.Cert, Key: pki.Server.Key, ClientCA: "/no/such/file"}, "MASH_TLS_CLIENT_CA"},
	} {
		err := c.files.Validate(names)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.files, err, c.want)
		}
	}
	if err := (tlsconf.Files{}).Validate(names); err != nil {
		t.Errorf("no TLS: %v", err)
	}
	full := pki.Server
	full.ClientCA = pki.CA
	if err := full.Validate(names); err != nil {
		t.Errorf("complete settings: %v", err)
	}
	if set, err := tlsconf.Load(tlsconf.Files{}); set != nil || err != nil || set.Mutual() {
		t.Errorf("no certificate: %v %v", set, err)
	}
}

// A certificate renewed in place (as cert-manager does) is served from the next handshake.
func TestRenewedCertificateIsServedWithoutARestart(t *testing.T) {
	t.Parallel()
	pki := tlsconftest.New(t)
	set, err := tlsconf.Load(pki.Server)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", set.Server())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	client, err := tlsconf.Load(pki.Client)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), client.Client())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	renewed := pki.Issue(t, "renewed")
	for _, f := range [][2]string{{renewed.Cert, pki.Server.Cert}, {renewed.Key, pki.Server.Key}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
		// Modification times must differ from the first load's even on coarse clocks.
		future := time.Now().Add(time.Minute)
		if err := os.Chtimes(f[1], future, future); err != nil {
			t.Fatal(err)
		}
	}
	if after := serial(); after == before {
		t.Fatalf("still serving certificate %s after renewal", before)
	}
}
