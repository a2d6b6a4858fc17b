package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/busauth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/testport"
	"github.com/mash-hub/mash/pkg/tlsconf/tlsconftest"
	"github.com/mash-hub/mash/services/audit"
	"github.com/mash-hub/mash/services/console"
	"github.com/mash-hub/mash/services/intake"
	"github.com/mash-hub/mash/services/notify"
	"github.com/mash-hub/mash/services/rules"
	"github.com/mash-hub/mash/services/triage"
)

func TestBadConfigFailsNamingTheSetting(t *testing.T) {
	t.Parallel()
	s := &system{dbURL: "postgres://postgres@127.0.0.1:1/none", dataDir: t.TempDir(), httpAddr: "127.0.0.1:0", grpcAddr: "127.0.0.1:0", nats: "127.0.0.1:0"}
	pki := tlsconftest.New(t)
	// Off loopback notify needs the key that seals webhook secrets; on loopback it keeps one.
	notifyKey := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--grpc-addr", "nonsense"}, "MASH_GRPC_ADDR"},
		{[]string{"serve", "--http-addr", "127.0.0.1:99999"}, "MASH_HTTP_ADDR"},
		{[]string{"serve", "--nats-listen", "0.0.0.0:4223"}, "MASH_NATS_LISTEN"},
		{[]string{"serve", "--nats-url", "http://example"}, "NATS_URL"},
		{[]string{"serve", "--services", "intake,telepathy"}, "MASH_SERVICES"},
		{[]string{"serve", "--nats-replicas", "2"}, "MASH_NATS_REPLICAS"},
		{[]string{"serve", "--shutdown-timeout", "soon"}, "MASH_SHUTDOWN_TIMEOUT"},
		{[]string{"serve", "--workday-start", "9am"}, "MASH_WORKDAY_START"},
		{[]string{"serve", "--extra-bank-holidays", "2026-02-30"}, "MASH_EXTRA_BANK_HOLIDAYS"},
		{[]string{"serve", "--database-url", "mysql://x"}, "DATABASE_URL"},
		{[]string{"serve", "--log-level", "loud"}, "MASH_LOG_LEVEL"},
		{[]string{"serve", "--claim-timeout", "10s"}, "MASH_CLAIM_TIMEOUT"},
		{[]string{"serve", "--qa-sample-percent", "0"}, "MASH_QA_SAMPLE_PERCENT"},
		{[]string{"serve", "--peers", "rules"}, "MASH_PEERS"},
		{[]string{"serve", "--peers", "telepathy=host:9090"}, "MASH_PEERS"},
		{[]string{"serve", "--rate-credential", "fast"}, "MASH_RATE_CREDENTIAL"},
		{[]string{"serve", "--rate-address", "-1"}, "MASH_RATE_ADDRESS"},
		{[]string{"serve", "--rate-failed-auth-burst", "0"}, "MASH_RATE_FAILED_AUTH_BURST"},
		{[]string{"serve", "--rate-exempt", "localhost"}, "MASH_RATE_EXEMPT"},
		{[]string{"serve", "--trusted-proxies", "10.0.0.1"}, "MASH_TRUSTED_PROXIES"},
		{[]string{"serve", "--max-conns", "-5"}, "MASH_MAX_CONNS"},
		{[]string{"serve", "--idle-timeout", "1ms"}, "MASH_IDLE_TIMEOUT"},
		{[]string{"serve", "--read-header-timeout", "5m"}, "MASH_READ_HEADER_TIMEOUT"},
		{[]string{"serve", "--behind-tls=maybe"}, "behind-tls"},
		{[]string{"serve", "--notify-secret-key", "too-short"}, "MASH_NOTIFY_SECRET_KEY"},
		{[]string{"serve", "--allow-plaintext", "--http-addr", "0.0.0.0:0"}, "MASH_NOTIFY_SECRET_KEY"}, // off loopback, no key
		{[]string{"serve", "--services", "notify", "--allow-plaintext", "--grpc-addr", "10.0.0.1:9090"}, "MASH_NOTIFY_SECRET_KEY"},
		{[]string{"serve", "--notify-change-ttl", "1s"}, "MASH_NOTIFY_CHANGE_TTL"},
		{[]string{"serve", "--notify-in-flight", "0"}, "MASH_NOTIFY_IN_FLIGHT"},
		{[]string{"serve"}, "postgres"}, // nothing listens on port 1
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"clients", "create", "--agency", "Bad Agency", "--kind", "police"}, "agency"},
		{[]string{"users", "frobnicate"}, "usage: mash users"}, // before trying the database
		// Off loopback, TLS or an explicit MASH_ALLOW_PLAINTEXT.
		{[]string{"serve", "--grpc-addr", "0.0.0.0:9090"}, "MASH_GRPC_ADDR 0.0.0.0:9090: listens off loopback without TLS"},
		{[]string{"serve", "--http-addr", "10.0.0.1:8080"}, "MASH_HTTP_ADDR 10.0.0.1:8080: listens off loopback without TLS"},
		{[]string{"serve", "--peers", "rules=mash-rules:9090"}, "MASH_PEERS: rules at mash-rules:9090 is off loopback"},
		{[]string{"serve", "--nats-url", "nats://nats.example:4222"}, "NATS_URL: nats://nats.example:4222 is off loopback"},
		{[]string{"serve", "--allow-plaintext", "--grpc-addr", "0.0.0.0:0", "--notify-secret-key", notifyKey}, "postgres"},
		{[]string{"serve", "--tls-cert", pki.Server.Cert, "--tls-key", pki.Server.Key, "--grpc-addr", "0.0.0.0:0", "--notify-secret-key", notifyKey}, "postgres"},
		{[]string{"serve", "--tls-cert", pki.Server.Cert}, "MASH_TLS_CERT and MASH_TLS_KEY"},
		{[]string{"serve", "--tls-client-ca", pki.CA}, "MASH_TLS_CLIENT_CA"},
		{[]string{"serve", "--tls-cert", pki.Server.Cert, "--tls-key", pki.Server.Key, "--tls-ca", "/no/such/ca.pem"}, "MASH_TLS_CA"},
		// An external NATS server needs every user's password.
		{[]string{"serve", "--nats-url", "tls://nats.example:4222", "--tls-cert", pki.Server.Cert, "--tls-key", pki.Server.Key}, "MASH_NATS_PASSWORD_MASH"},
		{[]string{"serve", "--services", "rules", "--nats-url", "nats://127.0.0.1:1"}, "postgres"}, // a developer's server on loopback
		{[]string{"bus", "users", "create"}, "exactly one of --agency, --service or --operator"},
		{[]string{"bus", "frobnicate"}, "usage: mash bus"},
	} {
		_, stderr, code := s.run(t, tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("mash %v: exit %d, stderr %q; want a failure naming %s", tc.args, code, stderr, tc.want)
		}
	}

	// The console's settings are read with the rest, before any connection: nothing listens
	// on the database's port 1, so a later check would name postgres instead.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, args := range [][]string{{"serve", "--services", "console"}, {"users", "password", "alice"}} {
		cmd := exec.CommandContext(ctx, mashBinary, args...)
		cmd.Env = s.env(console.EnvSessionTTL + "=forever")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), console.EnvSessionTTL) || strings.Contains(string(out), "postgres") {
			t.Errorf("mash %v with a bad %s: %v, output %q; want a failure naming the setting before any connection", args, console.EnvSessionTTL, err, out)
		}
	}
}

func TestServeClientsAndGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	token := s.credential(t, "south-wales-police")
	out, _, code := s.run(t, "clients", "list")
	if code != 0 || !strings.Contains(out, "south-wales-police") || !strings.Contains(out, "referrer") {
		t.Fatalf("clients list: %d %s", code, out)
	}
	if strings.Contains(out, strings.SplitN(token, "_", 3)[2]) {
		t.Fatal("clients list shows a secret")
	}

	p := s.start(t, "MASH_SERVICES=intake")
	code, body, err := s.submit(token, example(t))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	// The relay sets its backlog gauge after its first round, which on a busy machine may
	// end after the submission's answer: the scrape is repeated until it holds every metric.
	wantMetrics := []string{`mash_requests_total{code="201",method="POST /v1/referrals",transport="http"} 1`, "mash_outbox_backlog", "mash_request_seconds_bucket"}
	var metricsBody []byte
	if !poll(30*time.Second, func() bool {
		resp, err := http.Get("http://" + s.httpAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if metricsBody, err = io.ReadAll(resp.Body); err != nil {
			return false
		}
		for _, m := range wantMetrics {
			if !strings.Contains(string(metricsBody), m) {
				return false
			}
		}
		return true
	}) {
		for _, m := range wantMetrics {
			if !strings.Contains(string(metricsBody), m) {
				t.Errorf("metrics lack %s", m)
			}
		}
	}
	// Revoke through the CLI while the process has the credential in its cache: the
	// running process refuses it as soon as it has applied Postgres's announcement, long
	// before the cache would have let it go.
	id := strings.Split(token, "_")[1]
	if _, stderr, code := s.run(t, "clients", "revoke", id); code != 0 {
		t.Fatalf("revoke: %s", stderr)
	}
	applied := `"msg":"auth: revocation applied","kind":"client","id":"` + id + `"`
	p.out.waitFor(t, applied, 30*time.Second)
	if code, body, _ := s.submit(token, example(t)); code != 401 {
		t.Fatalf("revoked credential in the running process: %d %s", code, body)
	}
	p.stop(t)
	if code := p.exitCode(t); code != 0 {
		t.Fatalf("graceful stop exited %d:\n%s", code, p.out)
	}
	// Logs are JSON lines with ids, never the child's personal data.
	logs := p.out.String()
	for _, personal := range []string{"Alex", "Morgan", "9434765919", "CF37", "2019-04-02", "Third call-out"} {
		if strings.Contains(logs, personal) {
			t.Errorf("logs contain personal data %q", personal)
		}
	}
	sawAccepted := false
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if entry["msg"] == "referral accepted" && entry["referral_id"] != nil {
			sawAccepted = true
		}
	}
	if !sawAccepted {
		t.Error("no 'referral accepted' log line with the referral id")
	}

	// A restarted process refuses the credential too.
	s.start(t)
	if code, body, _ := s.submit(token, example(t)); code != 401 {
		t.Fatalf("revoked credential: %d %s", code, body)
	}
}

// With NATS_URL set, mash uses that server instead of embedding one, signing in as the
// process's and each service's users with the passwords it is given: the event lands in the
// external server's stream.
func TestServeWithExternalNATS(t *testing.T) {
	t.Parallel()
	natsAddr := testport.Addr(t)
	users, err := busauth.ServiceUsers([]busauth.Role{intake.Bus, rules.Bus, notify.Bus, audit.Bus, triage.Bus, console.Bus})
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"NATS_URL=nats://" + natsAddr}
	for _, u := range users {
		env = append(env, "MASH_NATS_PASSWORD_"+strings.ToUpper(u.Name)+"="+u.Password)
	}
	pw, err := busauth.NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	reader := busauth.User{Name: busauth.UserName(busauth.KindOperator, "test"), Password: pw, Permissions: busauth.OperatorPermissions("test")}
	ns, err := events.StartEmbedded(events.EmbeddedConfig{StoreDir: t.TempDir(), Listen: natsAddr,
		Auth: busauth.NewAuthenticator(append(users, reader), nil, zap.NewNop())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	s := newSystem(t)
	token := s.credential(t, "south-wales-police")
	p := s.start(t, env...)
	if code, body, err := s.submit(token, example(t)); err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	nc, err := nats.Connect("nats://"+natsAddr, reader.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The whole system runs, so the received event is soon followed by others: look for it
	// by subject rather than wait for a count of one that may pass between two polls.
	for {
		stream, err := js.Stream(ctx, events.StreamName)
		if err == nil {
			if _, err := stream.GetLastMsgForSubject(ctx, intake.EventReferralReceived); err == nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no event in the external server's stream:\n%s", p.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Nothing was embedded: the embedded listener address is free.
	if l, err := net.Listen("tcp", s.nats); err != nil {
		t.Fatalf("mash listened on MASH_NATS_LISTEN although NATS_URL was set: %v", err)
	} else {
		l.Close()
	}
}
