package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A practitioner works a referral from the queue to its outcome through every service:
// intake receives it, rules recommends, triage queues it, the practitioner claims it (a
// colleague's claim is refused), overrides through rules with a reason, the referrer
// disagrees, the case closes, and the audit trail names the person behind each step.
func TestCaseworkThroughEveryService(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testCaseworkThroughEveryService)
}

// apiCall is one authenticated HTTP/JSON call and its decoded answer.
type apiCall struct {
	t     *testing.T
	base  string
	token string
}

func (c apiCall) do(method, path string, body any) (int, map[string]any, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, string(raw)
}

func str(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}

func testCaseworkThroughEveryService(t *testing.T, s *system) {
	referrer := s.credential(t, "south-wales-police")
	staff := func(agency, role string) string {
		out, errOut, code := s.run(t, "clients", "create", "--agency", agency, "--kind", "hub", "--role", role, "--partnerships", "rhondda-cynon-taf")
		if code != 0 {
			t.Fatalf("clients create: %s", errOut)
		}
		return strings.TrimSpace(out)
	}
	alice, bob := staff("rct-mash", "practitioner"), staff("rct-mash", "practitioner")
	manager := staff("rct-mash", "manager")
	s.start(t)
	base := "http://" + s.httpAddr
	asAlice, asBob := apiCall{t, base, alice}, apiCall{t, base, bob}
	asReferrer, asManager := apiCall{t, base, referrer}, apiCall{t, base, manager}

	code, body, err := s.submit(referrer, example(t))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	if err := json.Unmarshal([]byte(body), &ack); err != nil {
		t.Fatal(err)
	}
	id := ack.ReferralID

	// The referral reaches the queue awaiting a human decision, Red first.
	var c map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for c == nil {
		code, q, raw := asAlice.do("GET", "/v1/queue", nil)
		if code != 200 {
			t.Fatalf("queue: %d %s", code, raw)
		}
		cases, _ := q["cases"].([]any)
		for _, x := range cases {
			if m := x.(map[string]any); str(m, "referralId") == id && str(m, "state") == "AWAITING_DECISION" {
				c = m
			}
		}
		if c == nil && time.Now().After(deadline) {
			t.Fatalf("referral %s not in the queue: %s", id, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if str(c, "rag") != "RAG_RED" || str(c, "level") != "LEVEL_4" || str(c, "sourceAgency") != "south-wales-police" {
		t.Fatalf("queued case: %v", c)
	}

	// Bob claims it; Alice is refused, told who holds it; a referrer cannot work the queue.
	if code, _, raw := asBob.do("POST", "/v1/cases/"+id+"/claim", map[string]any{}); code != 200 {
		t.Fatalf("bob claims: %d %s", code, raw)
	}
	if code, _, raw := asAlice.do("POST", "/v1/cases/"+id+"/claim", map[string]any{}); code != 409 || !strings.Contains(raw, "claim") {
		t.Fatalf("alice claims bob's case: %d %s, want 409 naming the claim", code, raw)
	}
	// A misspelt filter is refused by name, never silently ignored.
	if code, _, raw := asAlice.do("GET", "/v1/queue?stat=DECIDED", nil); code != 400 || !strings.Contains(raw, `"stat"`) || !strings.Contains(raw, "is not a parameter") {
		t.Fatalf("queue with an unknown parameter: %d %s, want 400 naming it", code, raw)
	}
	if code, _, _ := asReferrer.do("GET", "/v1/queue", nil); code != 403 {
		t.Fatalf("referrer reads the queue: %d, want 403", code)
	}
	// A manager hands the case to Alice.
	code, out, raw := asManager.do("GET", "/v1/cases/"+id, nil)
	if code != 200 {
		t.Fatalf("manager reads the case: %d %s", code, raw)
	}
	if code, _, raw := asBob.do("POST", "/v1/cases/"+id+"/release", map[string]any{}); code != 200 {
		t.Fatalf("bob releases: %d %s", code, raw)
	}
	code, out, raw = asAlice.do("POST", "/v1/cases/"+id+"/claim", map[string]any{})
	if code != 200 {
		t.Fatalf("alice claims: %d %s", code, raw)
	}
	version := str(out, "case", "version")

	// An override needs a reason; with one, rules records it as Alice's decision.
	if code, _, raw := asAlice.do("POST", "/v1/cases/"+id+"/decide", map[string]any{"expectedVersion": version, "level": "LEVEL_3B"}); code != 400 || !strings.Contains(raw, "reason") {
		t.Fatalf("override without a reason: %d %s, want 400 naming reason", code, raw)
	}
	code, out, raw = asAlice.do("POST", "/v1/cases/"+id+"/decide", map[string]any{"expectedVersion": version, "level": "LEVEL_3B",
		"reason": "Police and school confirm the family engages; intensive support first."})
	if code != 200 || str(out, "case", "state") != "DECIDED" || str(out, "case", "level") != "LEVEL_3B" {
		t.Fatalf("override: %d %s", code, raw)
	}
	// The decision is triage's; rules records it from triage's event, shortly after.
	if str(out, "decision", "status") != "OVERRIDDEN" || str(out, "decision", "reviewedBy") == "" {
		t.Fatalf("decision in the answer: %s", raw)
	}
	reviewer := str(out, "decision", "reviewedBy")
	// The old route through rules refuses and says where decisions are made.
	if code, _, raw := asAlice.do("POST", "/v1/decisions/"+id+"/confirm", map[string]any{"expectedVersion": 2}); code != 409 || !strings.Contains(raw, "/decide") {
		t.Fatalf("confirm through rules: %d %s, want 409 naming the decide route", code, raw)
	}
	var decCode int
	var decRaw string
	if !poll(15*time.Second, func() bool {
		var dec map[string]any
		decCode, dec, decRaw = asAlice.do("GET", "/v1/decisions/"+id, nil)
		return decCode == 200 && str(dec, "decision", "status") == "OVERRIDDEN" && str(dec, "decision", "reviewedBy") == reviewer
	}) {
		t.Fatalf("rules' decision after the override: %d %s", decCode, decRaw)
	}
	// The decided case has left the awaiting queue.
	_, q, _ := asAlice.do("GET", "/v1/queue", nil)
	for _, x := range anyList(q["cases"]) {
		if str(x.(map[string]any), "referralId") == id {
			t.Fatalf("decided case still awaiting a decision: %v", x)
		}
	}

	// The referrer disagrees; work goes on and the case closes.
	if code, _, raw := asReferrer.do("POST", "/v1/cases/"+id+"/disagreements", map[string]any{"reason": "We consider the risk statutory."}); code != 200 {
		t.Fatalf("referrer disagrees: %d %s", code, raw)
	}
	code, out, raw = asAlice.do("GET", "/v1/cases/"+id, nil)
	if code != 200 || len(anyList(out["disagreements"])) != 1 {
		t.Fatalf("case after the disagreement: %d %s", code, raw)
	}
	code, out, raw = asAlice.do("POST", "/v1/cases/"+id+"/close", map[string]any{"expectedVersion": str(out, "case", "version"),
		"outcome": "INTENSIVE_SUPPORT", "note": "Intensive family support allocated."})
	if code != 200 || str(out, "case", "state") != "CLOSED" {
		t.Fatalf("close: %d %s", code, raw)
	}

	// The trail names who claimed, decided and closed, and the decision is Alice's.
	pool := s.pool(t)
	want := []string{"mash.case.claimed", "mash.case.released", "mash.case.decided", "mash.decision.made", "mash.case.closed", "mash.disagreement.raised"}
	deadline = time.Now().Add(30 * time.Second)
	for {
		rows, err := pool.Query(context.Background(), `SELECT event_type, actor FROM audit.entries WHERE referral_id = $1`, id)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string][]string{}
		for rows.Next() {
			var typ, actor string
			if err := rows.Scan(&typ, &actor); err != nil {
				t.Fatal(err)
			}
			seen[typ] = append(seen[typ], actor)
		}
		rows.Close()
		missing := ""
		for _, w := range want {
			if len(seen[w]) == 0 {
				missing = w
			}
		}
		if missing == "" {
			// Triage names the client on its case events, and with its agency and role on the decision.
			for _, typ := range []string{"mash.case.decided", "mash.case.closed", "mash.decision.made"} {
				if len(seen[typ]) != 1 || seen[typ][0] == "" || !strings.Contains(reviewer, seen[typ][0]) {
					t.Fatalf("%s recorded %v, want once by %s", typ, seen[typ], reviewer)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit trail lacks %s: %v", missing, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func anyList(v any) []any {
	l, _ := v.([]any)
	return l
}
