package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/tlsconf"
	"github.com/mash-hub/mash/pkg/tlsconf/tlsconftest"
)

// One process with certificates and mutual TLS: HTTP, gRPC and the embedded NATS listener
// speak TLS only; triage reaches rules through its peer connection, over mutual TLS with the
// process's certificate; a gRPC client without a certificate is refused.
func TestServeOverMutualTLS(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	pki := tlsconftest.New(t)
	referrer := s.credential(t, "south-wales-police")
	out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf")
	if code != 0 {
		t.Fatalf("clients create: %d %s", code, errOut)
	}
	practitioner := strings.TrimSpace(out)

	p := &process{cmd: exec.Command(mashBinary, "serve"), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = s.env("MASH_TLS_CERT="+pki.Server.Cert, "MASH_TLS_KEY="+pki.Server.Key, "MASH_TLS_CA="+pki.CA, "MASH_TLS_CLIENT_CA="+pki.CA)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.stop(t) })

	pem, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	// People reach HTTP without a client certificate.
	web := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	base := "https://" + s.httpAddr
	call := func(method, path, token string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := web.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	exited := false
	if !poll(60*time.Second, func() bool {
		select {
		case <-p.exited:
			exited = true
			return true
		default:
		}
		code, _ := call("GET", "/readyz", "", nil)
		return code == 200
	}) {
		t.Fatalf("mash not ready over HTTPS after 60 s:\n%s", p.out)
	}
	if exited {
		t.Fatalf("mash exited before it was ready: %v\n%s", p.err, p.out)
	}
	if resp, err := http.Get("http://" + s.httpAddr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served")
		}
	}

	code, body := call("POST", "/v1/referrals", referrer, example(t))
	if code != 201 {
		t.Fatalf("submit over HTTPS: %d %s", code, body)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	_ = json.Unmarshal([]byte(body), &ack)
	// The case carries the decision triage fetched from rules as a peer, over mutual TLS.
	if !poll(30*time.Second, func() bool {
		code, body = call("GET", "/v1/cases/"+ack.ReferralID, practitioner, nil)
		var c struct {
			Decision map[string]any `json:"decision"`
		}
		_ = json.Unmarshal([]byte(body), &c)
		return code == 200 && c.Decision != nil
	}) {
		t.Fatalf("case without the decision from rules: %d %s\n%s", code, body, p.out)
	}

	// gRPC: served to a client with the cluster's certificate, refused without one.
	health := func(cfg *tls.Config) error {
		conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	client, err := tlsconf.Load(pki.Client)
	if err != nil {
		t.Fatal(err)
	}
	if err := health(client.Client()); err != nil {
		t.Fatalf("gRPC with a client certificate: %v", err)
	}
	if err := health(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("gRPC without a client certificate was served under mutual TLS")
	}

	// NATS: the listener takes TLS with a certificate, and still a user.
	out, errOut, code = s.run(t, "bus", "users", "create", "--operator", "tls")
	if code != 0 {
		t.Fatalf("bus users create: %d %s", code, errOut)
	}
	op := busauth.User{Name: busauth.UserName(busauth.KindOperator, "tls"), Password: strings.TrimSpace(out)}
	if nc, err := nats.Connect("nats://"+s.nats, op.Options()...); err == nil {
		nc.Close()
		t.Fatal("NATS without TLS accepted")
	}
	nc, err := nats.Connect("tls://"+s.nats, append(op.Options(), nats.Secure(client.Client()), nats.Timeout(20*time.Second))...)
	if err != nil {
		t.Fatalf("NATS over mutual TLS: %v", err)
	}
	nc.Close()
}
