package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mash-hub/mash/services/notify/channel"
)

// agencyEndpoint is one agency's webhook receiver: it verifies each signature and keeps
// what arrived, by kind.
type agencyEndpoint struct {
	secret string
	srv    *httptest.Server
	mu     sync.Mutex
	kinds  []string
	keys   map[string]int
	bad    []string
}

func newAgencyEndpoint(t *testing.T, secret string) *agencyEndpoint {
	a := &agencyEndpoint{secret: secret, keys: map[string]int{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := channel.VerifySignature([]byte(a.secret), r.Header.Get(channel.HeaderTimestamp), r.Header.Get(channel.HeaderSignature), body, time.Now(), channel.DefaultTolerance)
		a.mu.Lock()
		defer a.mu.Unlock()
		if err != nil {
			a.bad = append(a.bad, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m struct {
			Kind string `json:"kind"`
		}
		_ = json.Unmarshal(body, &m)
		a.kinds = append(a.kinds, m.Kind)
		a.keys[r.Header.Get(channel.HeaderIdempotencyKey)]++
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *agencyEndpoint) count(kind string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, k := range a.kinds {
		if k == kind {
			n++
		}
	}
	return n
}

// A referral goes in through intake, is decided by the rules, and every agency the decision
// names gets a signed webhook; the referrer gets its receipt and the outcome; the school
// hears under Operation Encompass; the audit log records each delivery.
func TestReferralReachesEveryAgency(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testReferralReachesEveryAgency)
}

func testReferralReachesEveryAgency(t *testing.T, s *system) {
	referrer := s.credential(t, "south-wales-police")
	secret := func(i int) string { return fmt.Sprintf("%064d", i) }
	police, social, duty, school, others := newAgencyEndpoint(t, secret(1)), newAgencyEndpoint(t, secret(2)),
		newAgencyEndpoint(t, secret(3)), newAgencyEndpoint(t, secret(4)), newAgencyEndpoint(t, secret(5))

	// Every other role of the built-in pack goes to one partner endpoint.
	pack, err := os.ReadFile("../rules/packs/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]bool{}
	for _, m := range regexp.MustCompile(`agencies: \[([^\]]*)\]`).FindAllStringSubmatch(string(pack), -1) {
		for _, r := range strings.Split(m[1], ",") {
			if r = strings.TrimSpace(r); r != "" && r != "police" && r != "childrens_social_care" && r != "school_dsl" {
				roles[r] = true
			}
		}
	}
	var other []string
	for r := range roles {
		other = append(other, r)
	}
	dir := fmt.Sprintf(`partnerships:
  - id: rhondda-cynon-taf
    dutyManager: rct-duty-manager
    consoleUrl: https://mash.example.test
agencies:
  - {id: south-wales-police, partnership: rhondda-cynon-taf, name: SWP PPU, roles: [police], channel: webhook, url: %q, secretEnv: E2E_SECRET_1}
  - {id: rct-csc, partnership: rhondda-cynon-taf, name: CSC duty, roles: [childrens_social_care], channel: webhook, url: %q, secretEnv: E2E_SECRET_2}
  - {id: rct-duty-manager, partnership: rhondda-cynon-taf, name: Duty manager, roles: [duty_manager], channel: webhook, url: %q, secretEnv: E2E_SECRET_3}
  - {id: rct-education, partnership: rhondda-cynon-taf, name: Education safeguarding, roles: [school_dsl], channel: webhook, url: %q, secretEnv: E2E_SECRET_4}
  - {id: rct-partners, partnership: rhondda-cynon-taf, name: Partners, roles: [%s], channel: webhook, url: %q, secretEnv: E2E_SECRET_5}
`, police.srv.URL, social.srv.URL, duty.srv.URL, school.srv.URL, strings.Join(other, ", "), others.srv.URL)
	dirFile := t.TempDir() + "/directory.yaml"
	if err := os.WriteFile(dirFile, []byte(dir), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, rc := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf")
	if rc != 0 {
		t.Fatalf("clients create: %s", errOut)
	}
	practitioner := strings.TrimSpace(out)
	out, errOut, rc = s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "manager", "--partnerships", "rhondda-cynon-taf")
	if rc != 0 {
		t.Fatalf("clients create: %s", errOut)
	}
	manager := strings.TrimSpace(out)
	s.start(t, "MASH_NOTIFY_DIRECTORY="+dirFile, "E2E_SECRET_1="+secret(1), "E2E_SECRET_2="+secret(2), "E2E_SECRET_3="+secret(3),
		"E2E_SECRET_4="+secret(4), "E2E_SECRET_5="+secret(5))
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
	// Immediate danger: police and social care are told on the recommendation, within
	// seconds of receipt, before anyone decides; the school gets its Encompass notice.
	deadline := time.Now().Add(30 * time.Second)
	if !poll(time.Until(deadline), func() bool {
		return police.count("RECEIPT") >= 1 && police.count("ACTION") >= 1 && social.count("ACTION") >= 1 && school.count("ENCOMPASS") >= 1
	}) {
		t.Fatalf("deliveries before the decision: police %v, social care %v, school %v", police.kinds, social.kinds, school.kinds)
	}
	// A practitioner decides; then the referrer hears the decision and the others named act.
	api := apiCall{t, "http://" + s.httpAddr, practitioner}
	var raw string
	poll(time.Until(deadline), func() bool { // the case reaches triage's read model shortly
		code, _, raw = api.do("POST", "/v1/cases/"+ack.ReferralID+"/claim", map[string]any{})
		return code != 404
	})
	if code != 200 {
		t.Fatalf("claim: %d %s", code, raw)
	}
	// The case may reach triage before its recommendation does (each is its own event); a
	// practitioner decides on the recommendation, so wait for it and decide on that version.
	var current map[string]any
	if !poll(time.Until(deadline), func() bool {
		_, current, _ = api.do("GET", "/v1/cases/"+ack.ReferralID, nil)
		return str(current, "case", "state") == "AWAITING_DECISION"
	}) {
		t.Fatalf("the case never awaited a decision: %v", current)
	}
	code, decided, raw := api.do("POST", "/v1/cases/"+ack.ReferralID+"/decide", map[string]any{"expectedVersion": str(current, "case", "version"),
		"confirm": true, "reason": "Agreed: strategy discussion today."})
	if code != 200 || !strings.Contains(str(decided, "case", "sharingHeld"), "consent not sought") {
		t.Fatalf("decide: %d %s, want the case to say sharing is held back for consent", code, raw)
	}
	// Consent was not sought: a practitioner cannot authorise sharing without it; a manager
	// does, with the lawful basis and the reason.
	const basis = "UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 18"
	authorisation := map[string]any{"lawfulBasis": basis, "reason": "High-risk domestic abuse: every agency named must act today."}
	if code, _, raw := api.do("POST", "/v1/cases/"+ack.ReferralID+"/sharing-authorisation", authorisation); code != 403 {
		t.Fatalf("practitioner authorising: %d %s, want 403", code, raw)
	}
	if code, _, raw := (apiCall{t, "http://" + s.httpAddr, manager}).do("POST", "/v1/cases/"+ack.ReferralID+"/sharing-authorisation", authorisation); code != 200 {
		t.Fatalf("manager authorising: %d %s", code, raw)
	}
	for police.count("OUTCOME") < 1 || social.count("ACTION") < 2 || others.count("ACTION") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries after the decision: police %v, social care %v, partners %v", police.kinds, social.kinds, others.kinds)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for any duplicate to show
	for name, a := range map[string]*agencyEndpoint{"police": police, "social care": social, "duty": duty, "school": school, "partners": others} {
		a.mu.Lock()
		if len(a.bad) > 0 {
			t.Errorf("%s: bad signatures: %v", name, a.bad)
		}
		for key, n := range a.keys {
			if n != 1 {
				t.Errorf("%s got notification %s %d times", name, key, n)
			}
		}
		a.mu.Unlock()
	}
	if social.count("ACTION") != 2 || police.count("RECEIPT") != 1 || police.count("OUTCOME") != 1 || school.count("ENCOMPASS") != 1 {
		t.Fatalf("deliveries: police %v, social care %v, school %v", police.kinds, social.kinds, school.kinds)
	}
	// The audit log holds a sent and a delivered entry for each delivery.
	pool := s.pool(t)
	var delivered, failed int
	deadline = time.Now().Add(20 * time.Second)
	for {
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE event_type = 'mash.notification.delivered'),
			count(*) FILTER (WHERE event_type = 'mash.notification.failed') FROM audit.entries WHERE referral_id = $1`, ack.ReferralID).
			Scan(&delivered, &failed); err != nil {
			t.Fatal(err)
		}
		if delivered >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if delivered < 4 || failed != 0 {
		t.Fatalf("audit: %d delivered and %d failed notification entries", delivered, failed)
	}
}
