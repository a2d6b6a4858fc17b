package main_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A referral goes in through intake and comes out decided by the rules, visible through
// both services' APIs, with every service running in one process.
func TestReferralFlowsThroughIntakeAndRules(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testReferralFlowsThroughIntakeAndRules)
}

func testReferralFlowsThroughIntakeAndRules(t *testing.T, s *system) {
	referrer := s.credential(t, "south-wales-police")
	out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf")
	if code != 0 {
		t.Fatalf("clients create: %s", errOut)
	}
	staff := strings.TrimSpace(out)
	s.start(t)
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

	get := func(token, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.httpAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, decision := get(staff, "/v1/decisions/"+ack.ReferralID)
		_, referral := get(referrer, "/v1/referrals/"+ack.ReferralID)
		if code == 200 && strings.Contains(referral, `"status":"DECIDED"`) {
			if !strings.Contains(decision, `"level":"LEVEL_4"`) || !strings.Contains(decision, `"rag":"RAG_RED"`) ||
				!strings.Contains(decision, `"status":"RECOMMENDED"`) || !strings.Contains(referral, `"agencyKind":"police"`) {
				t.Fatalf("decision %s\nreferral %s", decision, referral)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("referral not decided: decision %d %s\nreferral %s", code, decision, referral)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A referrer may not read the hub's decision.
	if code, _ := get(referrer, "/v1/decisions/"+ack.ReferralID); code != 403 {
		t.Fatalf("referrer reading a decision: %d, want 403", code)
	}

	// Both events reach the audit log, which verifies against its signed checkpoint with the
	// public key alone, and names the entry when one is altered behind its back.
	verify := func() (string, string, int) {
		return s.run(t, "audit", "verify")
	}
	pool := s.pool(t)
	// Every read above left a trace: the referrer's reads of the referral and the
	// practitioner's reads of the decision are audit entries, with who read.
	deadline = time.Now().Add(20 * time.Second)
	for {
		var events, referralReads, decisionReads int
		if err := pool.QueryRow(context.Background(), `SELECT
			count(*) FILTER (WHERE event_type IN ('mash.referral.received', 'mash.recommendation.made')),
			count(*) FILTER (WHERE event_type = 'mash.access.referral' AND actor_role = 'referrer'),
			count(*) FILTER (WHERE event_type = 'mash.access.decision' AND actor_role = 'practitioner')
			FROM audit.entries WHERE referral_id = $1`, ack.ReferralID).Scan(&events, &referralReads, &decisionReads); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := verify()
		if code == 0 && events == 2 && referralReads > 0 && decisionReads > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit log: %d events, %d referral reads, %d decision reads; verify %d %s %s", events, referralReads, decisionReads, code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// An auditor keeps a checkpoint; later the log must still extend it.
	kept := t.TempDir() + "/checkpoint"
	if out, errOut, code := s.run(t, "audit", "verify", "--save", kept); code != 0 || !strings.Contains(out, "saved") {
		t.Fatalf("verify --save: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := s.run(t, "audit", "verify", "--previous", kept); code != 0 || !strings.Contains(out, "consistent") {
		t.Fatalf("verify --previous: %d %s %s", code, out, errOut)
	}
	// A kept checkpoint claiming a longer log than exists (a forged or truncated-log case)
	// fails: its signature no longer holds once the size is edited.
	note, err := os.ReadFile(kept)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(note), "\n", 3)
	lines[1] = "999999"
	forged := t.TempDir() + "/forged"
	if err := os.WriteFile(forged, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, code := s.run(t, "audit", "verify", "--previous", forged); code == 0 {
		t.Fatalf("a forged previous checkpoint was accepted:\n%s", out)
	}
	if _, err := pool.Exec(context.Background(), `ALTER TABLE audit.entries DISABLE TRIGGER entries_append_only;
		UPDATE audit.entries SET leaf = leaf || '\x00'::bytea WHERE seq = 1;
		ALTER TABLE audit.entries ENABLE TRIGGER entries_append_only`); err != nil {
		t.Fatal(err)
	}
	out, _, code = verify()
	if code == 0 || !strings.Contains(out, "first entry that does not match: 1") {
		t.Fatalf("tampered audit log: exit %d\n%s", code, out)
	}
}

// An auditor exports a referral's trail over HTTP and verifies the file offline with the
// public key alone.
func TestAuditExportVerifiesOffline(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testAuditExportVerifiesOffline)
}

func testAuditExportVerifiesOffline(t *testing.T, s *system) {
	referrer := s.credential(t, "south-wales-police")
	out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "auditor", "--partnerships", "rhondda-cynon-taf")
	if code != 0 {
		t.Fatalf("clients create: %s", errOut)
	}
	auditor := strings.TrimSpace(out)
	s.start(t)
	code, body, err := s.submit(referrer, example(t))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	_ = json.Unmarshal([]byte(body), &ack)
	file := t.TempDir() + "/trail.ndjson"
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.httpAddr+"/v1/audit/export?referralId="+ack.ReferralID, nil)
		req.Header.Set("Authorization", "Bearer "+auditor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Received and decided, both under a signed checkpoint.
		if resp.StatusCode == 200 && strings.Count(string(b), `"type":"entry"`) >= 2 {
			if err := os.WriteFile(file, b, 0o600); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export: %d %s", resp.StatusCode, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd := exec.Command(mashBinary, "audit", "verify", "--export", file)
	cmd.Env = append(os.Environ(), auditEnv...)
	out2, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out2), "verified") {
		t.Fatalf("offline verify: %v\n%s", err, out2)
	}
}
