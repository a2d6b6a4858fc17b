package main_test

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Through the whole system: a manager's proposal to move an agency's webhook and rotate its
// secret waits for a second manager; the proposer cannot approve it; once another manager
// does, the old endpoint is told, and the audit log, queried by an auditor, holds both acts
// with who and from where, and no secret.
func TestDirectoryChangeIsApprovedAndAudited(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	oldSecret := fmt.Sprintf("%064d", 7)
	old, moved := newAgencyEndpoint(t, oldSecret), newAgencyEndpoint(t, "")
	dir := fmt.Sprintf(`partnerships:
  - {id: rhondda-cynon-taf, dutyManager: rct-duty-manager}
agencies:
  - {id: rct-csc, partnership: rhondda-cynon-taf, name: CSC duty, roles: [childrens_social_care], channel: webhook, url: %q, secretEnv: E2E_CSC_SECRET}
  - {id: rct-duty-manager, partnership: rhondda-cynon-taf, name: Duty manager, roles: [duty_manager], channel: nats}
`, old.srv.URL)
	dirFile := t.TempDir() + "/directory.yaml"
	if err := os.WriteFile(dirFile, []byte(dir), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t, "MASH_NOTIFY_DIRECTORY="+dirFile, "E2E_CSC_SECRET="+oldSecret)
	cred := func(role string) string {
		out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", role, "--partnerships", "rhondda-cynon-taf")
		if code != 0 {
			t.Fatalf("clients create: %s", errOut)
		}
		return strings.TrimSpace(out)
	}
	base := "http://" + s.httpAddr
	alice, bob, auditor := apiCall{t, base, cred("manager")}, apiCall{t, base, cred("manager")}, apiCall{t, base, cred("auditor")}

	code, put, raw := alice.do("PUT", "/v1/agencies/rct-csc", map[string]any{"reason": "new case system", "rotateSecret": true,
		"agency": map[string]any{"partnership": "rhondda-cynon-taf", "name": "CSC duty", "roles": []string{"childrens_social_care"}, "channel": "WEBHOOK", "url": moved.srv.URL}})
	changeID, newSecret := str(put, "pendingChange", "id"), str(put, "secret")
	if code != 200 || changeID == "" || newSecret == "" || str(put, "agency", "url") != old.srv.URL {
		t.Fatalf("propose: %d %s", code, raw)
	}
	if code, _, raw := alice.do("POST", "/v1/agencies/rct-csc/changes/"+changeID+"/approve", map[string]any{}); code != 403 {
		t.Fatalf("the proposer approved: %d %s", code, raw)
	}
	if code, _, raw := bob.do("POST", "/v1/agencies/rct-csc/changes/"+changeID+"/approve", map[string]any{"reason": "rang CSC"}); code != 200 {
		t.Fatalf("approve: %d %s", code, raw)
	}
	if !poll(30*time.Second, func() bool { return old.count("DIRECTORY_CHANGE") >= 1 }) {
		t.Fatalf("the old endpoint was not told: %v", old.kinds)
	}

	entries := func(eventType string) []any {
		_, out, _ := auditor.do("GET", "/v1/audit/entries?"+url.Values{"eventType": {eventType}}.Encode(), nil)
		return anyList(out["entries"])
	}
	actor, decided := map[string]string{}, map[string]string{}
	for _, eventType := range []string{"mash.directory.change_proposed", "mash.directory.change_approved"} {
		var es []any
		if !poll(30*time.Second, func() bool { es = entries(eventType); return len(es) > 0 }) {
			t.Fatalf("no %s entry on the trail", eventType)
		}
		e, _ := es[0].(map[string]any)
		decision := str(e, "decision")
		if len(es) != 1 || str(e, "actorRole") != "manager" || str(e, "agency") != "rct-csc" || !strings.Contains(decision, changeID) ||
			!strings.Contains(decision, "from 127.0.0.1") || !strings.Contains(decision, moved.srv.URL) ||
			strings.Contains(decision, newSecret) || strings.Contains(decision, oldSecret) {
			t.Fatalf("%s entry: %v", eventType, e)
		}
		actor[eventType], decided[eventType] = str(e, "actor"), decision
	}
	proposer, approver := actor["mash.directory.change_proposed"], actor["mash.directory.change_approved"]
	if !strings.HasPrefix(proposer, "client:") || proposer == approver || !strings.Contains(decided["mash.directory.change_approved"], "proposed by "+proposer) {
		t.Fatalf("trail: proposed by %q, approved by %q: %q", proposer, approver, decided["mash.directory.change_approved"])
	}
	if len(moved.bad) != 0 || len(old.bad) != 0 {
		t.Fatalf("bad signatures: old %v, new %v", old.bad, moved.bad)
	}
}
