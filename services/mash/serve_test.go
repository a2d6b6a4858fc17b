package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestBadConfigFailsNamingTheSetting(t *testing.T) {
	t.Parallel()
	s := &system{dbURL: "postgres://postgres@127.0.0.1:1/none", dataDir: t.TempDir(), httpAddr: "127.0.0.1:0", grpcAddr: "127.0.0.1:0", nats: "127.0.0.1:0"}
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
		{[]string{"serve"}, "postgres"}, // nothing listens on port 1
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"clients", "create", "--agency", "Bad Agency", "--kind", "police"}, "agency"},
	} {
		_, stderr, code := s.run(t, tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("mash %v: exit %d, stderr %q; want a failure naming %s", tc.args, code, stderr, tc.want)
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
	if strings.Contains(out, strings.Split(token, "_")[2]) {
		t.Fatal("clients list shows a secret")
	}

	p := s.start(t, "MASH_SERVICES=intake")
	code, body, err := s.submit(token, example(t))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	resp, err := http.Get("http://" + s.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsBody, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, m := range []string{`mash_requests_total{code="201",method="POST /v1/referrals",transport="http"} 1`, "mash_outbox_backlog", "mash_request_seconds_bucket"} {
		if !strings.Contains(string(metricsBody), m) {
			t.Errorf("metrics lack %s", m)
		}
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

	// Revoke through the CLI; a restarted process refuses the credential.
	id := strings.Split(token, "_")[1]
	if _, stderr, code := s.run(t, "clients", "revoke", id); code != 0 {
		t.Fatalf("revoke: %s", stderr)
	}
	s.start(t)
	if code, body, _ := s.submit(token, example(t)); code != 401 {
		t.Fatalf("revoked credential: %d %s", code, body)
	}
}
