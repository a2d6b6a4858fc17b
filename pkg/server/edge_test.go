package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// countingAuth accepts "good" and "other" and counts every look-up, so a test can see
// which requests reached the credential store.
type countingAuth struct{ lookups atomic.Int64 }

func (a *countingAuth) Authenticate(_ context.Context, token string) (auth.Identity, error) {
	a.lookups.Add(1)
	switch token {
	case "good":
		return auth.Identity{ClientID: "c1", Agency: "a1", Role: auth.RoleReferrer}, nil
	case "other":
		return auth.Identity{ClientID: "c2", Agency: "a2", Role: auth.RoleReferrer}, nil
	}
	return auth.Identity{}, auth.ErrUnauthenticated
}

// echoIntake answers GetReferral with the access reason it was given as the reference.
type echoIntake struct {
	intakev1.UnimplementedIntakeServiceServer
}

func (echoIntake) GetReferral(ctx context.Context, req *intakev1.GetReferralRequest) (*intakev1.GetReferralResponse, error) {
	return &intakev1.GetReferralResponse{Referral: &intakev1.Referral{Id: req.GetId(), Reference: AccessReason(ctx)}}, nil
}

func (echoIntake) SubmitReferral(context.Context, *intakev1.SubmitReferralRequest) (*intakev1.SubmitReferralResponse, error) {
	return &intakev1.SubmitReferralResponse{}, nil
}

// echoTriage answers a strategy discussion's record with nothing: the edge tests check
// what the route refuses before the method.
type echoTriage struct {
	triagev1.UnimplementedTriageServiceServer
}

func (echoTriage) RecordStrategyDiscussion(context.Context, *triagev1.RecordStrategyDiscussionRequest) (*triagev1.RecordStrategyDiscussionResponse, error) {
	return &triagev1.RecordStrategyDiscussionResponse{}, nil
}

// edgeServer starts a server with cfg's limits, the whoami route, an echoing JSON route
// and the echoing intake gRPC service.
func edgeServer(t *testing.T, cfg Config) (*countingAuth, string, *grpc.ClientConn) {
	t.Helper()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	authn := &countingAuth{}
	s := New(cfg, zap.NewNop(), authn, prometheus.NewRegistry())
	s.HandleAPI("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.FromContext(r.Context())
		_, _ = io.WriteString(w, id.ClientID+" "+AccessReason(r.Context()))
	})
	s.HandlePublic("GET /console/page", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "page") }))
	s.HandleGateway(GatewayService{Desc: &triagev1.TriageService_ServiceDesc, Impl: echoTriage{},
		Register: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return triagev1.RegisterTriageServiceHandlerClient(ctx, mux, triagev1.NewTriageServiceClient(conn))
		}})
	intakev1.RegisterIntakeServiceServer(s.GRPC(), echoIntake{})
	ls := serve(t, s)
	conn, err := grpc.NewClient(ls.GRPC.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authn, "http://" + ls.HTTP.Addr().String(), conn
}

func bearer(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func TestResponsesAreNotCachedOrSniffed(t *testing.T) {
	t.Parallel()
	_, base, _ := edgeServer(t, Config{})
	for _, path := range []string{"/v1/whoami", "/console/page", "/healthz"} {
		_, _, h := get(t, base+path, "Authorization", "Bearer good")
		if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: Cache-Control %q, X-Content-Type-Options %q", path, h.Get("Cache-Control"), h.Get("X-Content-Type-Options"))
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain HTTP not behind TLS", path)
		}
	}
	if _, _, h := get(t, base+"/v1/whoami"); h.Get("Cache-Control") != "no-store" {
		t.Errorf("a 401 lacks no-store: %v", h)
	}
	_, tlsBase, _ := edgeServer(t, Config{BehindTLS: true})
	if _, _, h := get(t, tlsBase+"/v1/whoami", "Authorization", "Bearer good"); !strings.HasPrefix(h.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("behind TLS: Strict-Transport-Security %q", h.Get("Strict-Transport-Security"))
	}
}

func TestCredentialRateLimitAnswers429WithRetryAfter(t *testing.T) {
	t.Parallel()
	// A rate so slow the bucket does not refill during the test: exactly the burst passes.
	_, base, conn := edgeServer(t, Config{Limits: Limits{CredentialRate: 0.001, CredentialBurst: 2}})
	for i := range 2 {
		if code, body, _ := get(t, base+"/v1/whoami", "Authorization", "Bearer good"); code != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, code, body)
		}
	}
	code, body, h := get(t, base+"/v1/whoami", "Authorization", "Bearer good")
	if code != http.StatusTooManyRequests || !strings.Contains(body, "RESOURCE_EXHAUSTED") {
		t.Fatalf("over the limit: %d %s", code, body)
	}
	if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 {
		t.Fatalf("Retry-After %q", h.Get("Retry-After"))
	}
	if code, _, _ := get(t, base+"/v1/whoami", "Authorization", "Bearer other"); code != 200 {
		t.Fatalf("another credential is limited by the first one's use: %d", code)
	}
	// gRPC spends the same bucket: "good" has none left.
	var hdr metadata.MD
	_, err := intakev1.NewIntakeServiceClient(conn).GetReferral(bearer("good"), &intakev1.GetReferralRequest{Id: "x"}, grpc.Header(&hdr))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("gRPC over the limit: %v", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 || len(hdr.Get("retry-after")) != 1 {
		t.Fatalf("gRPC over the limit carries no retry delay: details %v, header %v", st.Details(), hdr)
	}
}

// A flood of bad credentials from one address is refused before any credential is looked
// up once it has spent its failed authentications, and a client at another address is
// served as usual.
func TestFailedAuthenticationFloodIsRefusedBeforeTheLookup(t *testing.T) {
	t.Parallel()
	authn, base, conn := edgeServer(t, Config{Limits: Limits{FailedAuthRate: 0.001, FailedAuthBurst: 3}})
	for i := range 3 {
		if code, _, _ := get(t, base+"/v1/whoami", "Authorization", "Bearer guess"+strconv.Itoa(i)); code != 401 {
			t.Fatalf("failed authentication %d: %d; want 401", i, code)
		}
	}
	before := authn.lookups.Load()
	for i := range 20 {
		code, _, h := get(t, base+"/v1/whoami", "Authorization", "Bearer flood"+strconv.Itoa(i))
		if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
			t.Fatalf("flood request %d: %d; want 429 with Retry-After", i, code)
		}
	}
	_, err := intakev1.NewIntakeServiceClient(conn).GetReferral(bearer("guess"), &intakev1.GetReferralRequest{Id: "x"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC from the flooding address: %v", err)
	}
	if n := authn.lookups.Load() - before; n != 0 {
		t.Fatalf("the flood reached the credential store %d times", n)
	}
	// 127.0.0.2 is another loopback address: another client, with its own budget.
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer good")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a real client at another address: %d", resp.StatusCode)
	}
}

func TestAddressRateLimitAndExemptNetworks(t *testing.T) {
	t.Parallel()
	_, base, conn := edgeServer(t, Config{Limits: Limits{AddressRate: 0.001, AddressBurst: 2}})
	get(t, base+"/v1/whoami", "Authorization", "Bearer good")
	get(t, base+"/console/page")
	if code, _, _ := get(t, base+"/console/page"); code != http.StatusTooManyRequests {
		t.Fatalf("public page over the address limit: %d", code)
	}
	if code, _, _ := get(t, base+"/v1/whoami", "Authorization", "Bearer other"); code != http.StatusTooManyRequests {
		t.Fatalf("API over the address limit: %d", code)
	}
	if code, _, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("probes are not limited: %d", code)
	}
	if _, err := intakev1.NewIntakeServiceClient(conn).GetReferral(bearer("good"), &intakev1.GetReferralRequest{Id: "x"}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC over the address limit: %v", err)
	}

	_, exemptBase, _ := edgeServer(t, Config{Limits: Limits{AddressRate: 0.001, AddressBurst: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	for i := range 5 {
		if code, _, _ := get(t, exemptBase+"/console/page"); code != 200 {
			t.Fatalf("request %d from an exempt network: %d", i, code)
		}
	}
}

func TestFreeTextWithAControlCharacterIsRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	_, base, conn := edgeServer(t, Config{})
	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"NUL in a list item", "/v1/cases/r1/strategy", `{"participants":["A. Jones","B\u0000"],"outcome":"ok"}`, "participants[1]"},
		{"escape in outcome", "/v1/cases/r1/strategy", `{"outcome":"\u001b[2J"}`, "outcome"},
		{"NUL in the path", "/v1/cases/r%001/strategy", `{"outcome":"ok"}`, "referralId"},
	} {
		code, body, _ := send(t, http.MethodPost, base+tc.path, tc.body, "Authorization", "Bearer good", "Content-Type", "application/json")
		if code != 400 || !strings.Contains(body, `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s; want 400 naming %s", tc.name, code, body, tc.field)
		}
	}
	if code, body, _ := send(t, http.MethodPost, base+"/v1/cases/r1/strategy", `{"outcome":"Agreed:\n\tS47 enquiry"}`, "Authorization", "Bearer good"); code != 200 {
		t.Errorf("multi-line text refused: %d %s", code, body)
	}

	_, err := intakev1.NewIntakeServiceClient(conn).SubmitReferral(bearer("good"), &intakev1.SubmitReferralRequest{Referral: &intakev1.ReferralSubmission{
		Child: &intakev1.Child{GivenName: "Al\x00ex"}}})
	st := status.Convert(err)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField())
			}
		}
	}
	if st.Code() != codes.InvalidArgument || strings.Join(fields, ",") != "referral.child.givenName" {
		t.Fatalf("gRPC NUL: %v, fields %v", err, fields)
	}
}

// An access reason is cut at a character boundary: 499 ASCII letters and an accented one
// are 501 bytes, and a cut at 500 inside the "é" would leave invalid UTF-8 behind.
func TestAccessReasonIsCutAtACharacterBoundary(t *testing.T) {
	t.Parallel()
	_, base, conn := edgeServer(t, Config{})
	reason := strings.Repeat("a", 499) + "é"
	code, body, _ := get(t, base+"/v1/whoami", "Authorization", "Bearer good", AccessReasonHeader, reason)
	if code != 200 || body != "c1 "+strings.Repeat("a", 499) {
		t.Fatalf("HTTP: %d, kept %d bytes", code, len(body)-3)
	}
	// ASCII metadata cannot carry "é": a UTF-8 reason travels as x-access-reason-bin.
	ctx := metadata.AppendToOutgoingContext(bearer("good"), AccessReasonHeader+"-bin", reason)
	resp, err := intakev1.NewIntakeServiceClient(conn).GetReferral(ctx, &intakev1.GetReferralRequest{Id: "x"})
	if err != nil || resp.GetReferral().GetReference() != strings.Repeat("a", 499) {
		t.Fatalf("gRPC: %v, kept %q", err, resp.GetReferral().GetReference())
	}
	// Bytes that are not UTF-8 pass HTTP's own header checks (Go's client will not send
	// them, so the request is written by hand) and are refused naming the header.
	c := dial(t, strings.TrimPrefix(base, "http://"))
	if _, err := io.WriteString(c, "GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\nX-Access-Reason: caf\xe9\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp2, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	if resp2.StatusCode != 400 || !strings.Contains(string(b), "X-Access-Reason") {
		t.Fatalf("a reason in Latin-1: %d %s", resp2.StatusCode, b)
	}
	ctx = metadata.AppendToOutgoingContext(bearer("good"), AccessReasonHeader+"-bin", "why\x00")
	if _, err := intakev1.NewIntakeServiceClient(conn).GetReferral(ctx, &intakev1.GetReferralRequest{Id: "x"}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), AccessReasonHeader) {
		t.Fatalf("gRPC reason with a NUL: %v", err)
	}
}

// An idle gRPC connection is sent away after the idle timeout; the client sees its
// connection leave READY.
func TestIdleGRPCConnectionIsClosed(t *testing.T) {
	t.Parallel()
	_, _, conn := edgeServer(t, Config{Limits: Limits{IdleTimeout: 200 * time.Millisecond}})
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for state := conn.GetState(); state == connectivity.Ready; state = conn.GetState() {
		if !conn.WaitForStateChange(ctx, state) {
			t.Fatalf("the idle connection is still %s", state)
		}
	}
}

// HTTP connections idle past the idle timeout, or slow to send their headers, are closed.
func TestHTTPIdleAndSlowHeaderConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	// Two servers, so that a slow test machine taking long to send the first request
	// cannot trip the short header timeout of the idle case.
	_, base, _ := edgeServer(t, Config{Limits: Limits{IdleTimeout: 200 * time.Millisecond}})
	_, slowBase, _ := edgeServer(t, Config{Limits: Limits{ReadHeaderTimeout: 200 * time.Millisecond}})

	idle := dial(t, strings.TrimPrefix(base, "http://"))
	if _, err := io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(idle)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	waitClosed(t, idle, r, 30*time.Second) // the default idle timeout is 2m

	slow := dial(t, strings.TrimPrefix(slowBase, "http://"))
	if _, err := io.WriteString(slow, "GET /healthz HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	// The default header timeout is 5s: closed well before it, the setting took effect.
	waitClosed(t, slow, bufio.NewReader(slow), DefaultReadHeaderTimeout-time.Second)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed reads until the server closes c, failing if it is still open after limit
// (set below the default timeout, so only the configured one can close it in time).
func waitClosed(t *testing.T, c net.Conn, r *bufio.Reader, limit time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open")
	}
}

// With a cap of one connection, a second connection is not served until the first closes.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	_, base, _ := edgeServer(t, Config{Limits: Limits{MaxConns: 1}})
	addr := strings.TrimPrefix(base, "http://")
	first := dial(t, addr)
	if _, err := io.WriteString(first, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(first), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first connection: %v", err)
	}
	second := dial(t, addr)
	if _, err := io.WriteString(second, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(second)
	// The kernel accepted the second connection; the server must not take it while the
	// first holds the only slot. Half a second is how long it is given to wrongly answer.
	_ = second.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := r.Peek(1); err == nil {
		t.Fatal("the second connection was served while the first was open")
	}
	first.Close()
	_ = second.SetReadDeadline(time.Now().Add(30 * time.Second))
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second connection after the first closed: %v", err)
	}
}

func TestClientAddressBehindTrustedProxies(t *testing.T) {
	t.Parallel()
	l := newLimiter(Limits{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, time.Now)
	for _, tc := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"192.0.2.1", []string{"203.0.113.7"}, "192.0.2.1"},                          // not a proxy: the header is the client's own claim
		{"10.1.2.3", nil, "10.1.2.3"},                                                // a proxy that forwards nothing
		{"10.1.2.3", []string{"203.0.113.7"}, "203.0.113.7"},                         // through one proxy
		{"10.1.2.3", []string{"198.51.100.1, 203.0.113.7, 10.9.9.9"}, "203.0.113.7"}, // made-up hop on the left is ignored
		{"10.1.2.3", []string{"198.51.100.1", "203.0.113.7"}, "203.0.113.7"},         // several headers read as one list
		{"10.1.2.3", []string{"unknown, 10.9.9.9"}, "10.9.9.9"},                      // garbage stops the walk
		{"10.1.2.3", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
	} {
		if got := l.client(tc.peer, tc.xff); got != tc.want {
			t.Errorf("client(%s, %q) = %s; want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}

// Behind a trusted proxy, each forwarded client has its own failed-authentication budget:
// a flood through the ingress does not lock out everyone else behind it.
func TestFailedAuthLimitCountsTheForwardedClient(t *testing.T) {
	t.Parallel()
	_, base, _ := edgeServer(t, Config{Limits: Limits{FailedAuthRate: 0.001, FailedAuthBurst: 2,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	for range 2 {
		get(t, base+"/v1/whoami", "Authorization", "Bearer guess", "X-Forwarded-For", "203.0.113.7")
	}
	if code, _, _ := get(t, base+"/v1/whoami", "Authorization", "Bearer good", "X-Forwarded-For", "203.0.113.7"); code != http.StatusTooManyRequests {
		t.Fatalf("the flooding client: %d", code)
	}
	if code, _, _ := get(t, base+"/v1/whoami", "Authorization", "Bearer good", "X-Forwarded-For", "203.0.113.8"); code != 200 {
		t.Fatalf("another client behind the same proxy: %d", code)
	}
}

func TestIPv6AddressesAreCountedByTheirSlash64(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"2001:db8:1:2:aaaa::1":  "2001:db8:1:2::/64",
		"2001:db8:1:2:bbbb::99": "2001:db8:1:2::/64",
		"192.0.2.7":             "192.0.2.7",
		"::ffff:192.0.2.7":      "::ffff:192.0.2.7",
		"not an address":        "not an address",
	} {
		if got := addrKey(addr); got != want {
			t.Errorf("addrKey(%s) = %s; want %s", addr, got, want)
		}
	}
}

// Over TLS, responses tell browsers to use HTTPS only.
func TestStrictTransportSecurityOverTLS(t *testing.T) {
	t.Parallel()
	s := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zap.NewNop(), &countingAuth{}, prometheus.NewRegistry())
	ls, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t)
	ls.HTTP = tls.NewListener(ls.HTTP, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ls) }()
	t.Cleanup(func() { cancel(); <-done })
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Get("https://" + ls.HTTP.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("over TLS: %v", resp.Header)
	}
}

// selfSigned makes a certificate for 127.0.0.1, valid for an hour.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mash test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// A route registered with its own error writer answers every refusal before its handler (a
// missing credential, a spent rate limit) in that writer's shape.
func TestHandleAPIWithErrorsWritesRefusalsWithTheRoutesWriter(t *testing.T) {
	t.Parallel()
	s := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Limits: Limits{CredentialRate: 0.001, CredentialBurst: 1}},
		zap.NewNop(), &countingAuth{}, prometheus.NewRegistry())
	s.HandleAPIWithErrors("GET /fhir/thing", func(w http.ResponseWriter, err error) int {
		w.Header().Set("Content-Type", "text/x-outcome")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "outcome: "+err.Error())
		return http.StatusTeapot
	}, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "thing") })
	base := "http://" + serve(t, s).HTTP.Addr().String()
	if code, body, h := get(t, base+"/fhir/thing"); code != http.StatusTeapot || h.Get("Content-Type") != "text/x-outcome" ||
		!strings.Contains(body, "invalid credential") {
		t.Fatalf("no credential: %d %q %s", code, h.Get("Content-Type"), body)
	}
	if code, body, _ := get(t, base+"/fhir/thing", "Authorization", "Bearer good"); code != 200 || body != "thing" {
		t.Fatalf("within the limit: %d %s", code, body)
	}
	if code, body, _ := get(t, base+"/fhir/thing", "Authorization", "Bearer good"); code != http.StatusTeapot || !strings.Contains(body, "ResourceExhausted") {
		t.Fatalf("over the limit: %d %s", code, body)
	}
}
