package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/tlsconf"
	"github.com/mash-hub/mash/pkg/tlsconf/tlsconftest"
)

func startTLS(t *testing.T, files tlsconf.Files) Listeners {
	t.Helper()
	set, err := tlsconf.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", GRPCTLS: set.Server(), HTTPTLS: set.Public()},
		zap.NewNop(), fixedAuth{}, prometheus.NewRegistry())
	return serve(t, s)
}

func httpsClient(t *testing.T, caFile string, cert *tls.Certificate) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

func healthCheck(conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(false))
	return err
}

// With a certificate, both listeners speak TLS only.
func TestTLSServesGRPCAndHTTP(t *testing.T) {
	t.Parallel()
	pki := tlsconftest.New(t)
	ls := startTLS(t, pki.Server)

	resp, err := httpsClient(t, pki.CA, nil).Get("https://" + ls.HTTP.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("https: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := http.Get("http://" + ls.HTTP.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served alongside TLS")
		}
	}

	client, err := tlsconf.Load(pki.Client)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(ls.GRPC.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(client.Client())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := healthCheck(conn); err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	plain, err := grpc.NewClient(ls.GRPC.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := healthCheck(plain); err == nil {
		t.Fatal("plaintext gRPC served alongside TLS")
	}
}

// Under mutual TLS a peer must present a certificate from the cluster's CA; the HTTP
// listener, which people and outside systems reach, asks for none.
func TestMutualTLSRefusesAPeerWithoutACertificate(t *testing.T) {
	t.Parallel()
	pki := tlsconftest.New(t)
	files := pki.Server
	files.ClientCA = pki.CA
	ls := startTLS(t, files)
	addr := ls.GRPC.Addr().String()

	// A peer with the cluster's certificate is served.
	client, err := tlsconf.Load(pki.Client)
	if err != nil {
		t.Fatal(err)
	}
	book := peers.NewBook(addr, nil, peers.WithTLS(client.Client()))
	defer book.Close()
	conn, err := book.Conn("rules")
	if err != nil {
		t.Fatal(err)
	}
	if err := healthCheck(conn); err != nil {
		t.Fatalf("peer with a client certificate: %v", err)
	}

	// One that trusts the server but shows no certificate is refused.
	pem, _ := os.ReadFile(pki.CA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	anon, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if err := healthCheck(anon); err == nil {
		t.Fatal("a peer without a client certificate was served under mutual TLS")
	}

	// Nor one whose certificate comes from another CA.
	other := tlsconftest.New(t)
	stranger := other.Client
	stranger.CA = pki.CA
	strangerSet, err := tlsconf.Load(stranger)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(strangerSet.Client())))
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	if err := healthCheck(foreign); err == nil {
		t.Fatal("a peer with another CA's certificate was served under mutual TLS")
	}

	resp, err := httpsClient(t, pki.CA, nil).Get("https://" + ls.HTTP.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("https without a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("https without a client certificate: %d", resp.StatusCode)
	}
}
