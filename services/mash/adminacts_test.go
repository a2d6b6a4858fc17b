package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// trailEntry is an audit entry as GET /v1/audit/entries returns it.
type trailEntry struct {
	Actor, ActorRole, Decision, IntegrityError string
}

// waitForEntry polls the audit API until an entry of eventType has a decision containing
// want, and returns it.
func waitForEntry(t *testing.T, s *system, auditor, eventType, want string) trailEntry {
	t.Helper()
	var found trailEntry
	var status int
	var body []byte
	if !poll(30*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.httpAddr+"/v1/audit/entries?eventType="+url.QueryEscape(eventType), nil)
		req.Header.Set("Authorization", "Bearer "+auditor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		var page struct{ Entries []trailEntry }
		if status == http.StatusOK && json.Unmarshal(body, &page) == nil {
			for _, e := range page.Entries {
				if strings.Contains(e.Decision, want) {
					found = e
					return true
				}
			}
		}
		return false
	}) {
		t.Fatalf("no %s entry with %q on the trail: %d %s", eventType, want, status, body)
	}
	return found
}

// Creating and revoking API clients and creating, resetting and disabling console users
// with the mash command are administrative acts: each reaches the audit trail (through the
// auth schema's outbox, relayed by mash serve) naming the operator, the act and its target.
func TestCredentialAndUserActsAreOnTheTrail(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "auditor", "--partnerships", "*")
	if code != 0 {
		t.Fatalf("clients create: %s", errOut)
	}
	auditor := strings.TrimSpace(out)
	auditorID := strings.Split(auditor, "_")[1]
	s.start(t)
	cli := func(t *testing.T, args ...string) string {
		t.Helper()
		out, errOut, code := s.run(t, args...)
		if code != 0 {
			t.Fatalf("mash %s: %s", strings.Join(args, " "), errOut)
		}
		return out
	}
	check := func(t *testing.T, e trailEntry) {
		t.Helper()
		if !strings.HasPrefix(e.Actor, "cli") || e.ActorRole != "operator" || e.IntegrityError != "" {
			t.Fatalf("entry %+v: want the operator as actor", e)
		}
	}
	t.Run("client create", func(t *testing.T) {
		check(t, waitForEntry(t, s, auditor, "mash.admin.client", "client.create "+auditorID+": succeeded"))
	})
	t.Run("client revoke", func(t *testing.T) {
		tok := strings.TrimSpace(cli(t, "clients", "create", "--agency", "south-wales-police", "--kind", "police", "--role", "referrer"))
		id := strings.Split(tok, "_")[1]
		cli(t, "clients", "revoke", id)
		check(t, waitForEntry(t, s, auditor, "mash.admin.client", "client.revoke "+id+": succeeded"))
	})
	t.Run("user create", func(t *testing.T) {
		cli(t, "users", "create", "--username", "a.jones", "--name", "A Jones", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf")
		check(t, waitForEntry(t, s, auditor, "mash.admin.user", "user.create a.jones: succeeded"))
	})
	t.Run("user password reset", func(t *testing.T) {
		cli(t, "users", "password", "a.jones")
		check(t, waitForEntry(t, s, auditor, "mash.admin.user", "user.password a.jones: succeeded"))
	})
	t.Run("user role change", func(t *testing.T) {
		cli(t, "users", "role", "a.jones", "--role", "manager", "--partnerships", "rhondda-cynon-taf,merthyr-tydfil")
		check(t, waitForEntry(t, s, auditor, "mash.admin.user", "user.role a.jones: succeeded"))
		// A partner's account cannot be given a hub role, and the refusal says why.
		if _, errOut, code := s.run(t, "users", "role", "a.jones", "--role", "partner"); code == 0 || !strings.Contains(errOut, "only hub staff change roles") {
			t.Fatalf("role partner: exit %d, %s", code, errOut)
		}
	})
	t.Run("user disable", func(t *testing.T) {
		cli(t, "users", "disable", "a.jones")
		check(t, waitForEntry(t, s, auditor, "mash.admin.user", "user.disable a.jones: succeeded"))
	})
}
