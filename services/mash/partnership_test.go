package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/services/console"
)

// Hub staff see and work only the partnerships they serve, through every service: the
// queue, cases, referrals, decisions, information requests, notifications and the console
// leave another partnership's referral out, or answer as if it did not exist.
func TestStaffSeeOnlyTheirPartnerships(t *testing.T) {
	ctx := context.Background()
	ip := startInProcess(t)
	store := ip.sys.p.auth
	token := func(kind, agency string, role auth.Role, ps ...string) string {
		t.Helper()
		_, tok, err := store.Create(ctx, agency, kind, role, "test", ps...)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	referrer := token("police", "south-wales-police", auth.RoleReferrer)
	everyPartnership := token("hub", "rct-mash", auth.RoleManager, auth.AllPartnerships)
	rct := token("hub", "rct-mash", auth.RolePractitioner, "rhondda-cynon-taf")
	twoManager := token("hub", "rct-mash", auth.RoleManager, "rhondda-cynon-taf", "cardiff")

	call := func(tok, method, path string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+ip.httpAddr+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	raw, err := os.ReadFile("../intake/testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	submit := func(partnership, ext string) string {
		t.Helper()
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		m["partnership"], m["externalReference"] = partnership, ext
		code, out := call(referrer, http.MethodPost, "/v1/referrals", m)
		if code != http.StatusCreated {
			t.Fatalf("submit for %s: %d %v", partnership, code, out)
		}
		return out["referralId"].(string)
	}
	ours := submit("rhondda-cynon-taf", "SWP-PART-1")
	theirs := submit("merthyr-tydfil", "SWP-PART-2")

	// Both decided and in the queue of a manager serving every partnership.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c1, _ := call(everyPartnership, http.MethodGet, "/v1/decisions/"+ours, nil)
		c2, _ := call(everyPartnership, http.MethodGet, "/v1/decisions/"+theirs, nil)
		c3, _ := call(everyPartnership, http.MethodGet, "/v1/cases/"+theirs, nil)
		if c1 == 200 && c2 == 200 && c3 == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("referrals not decided and queued: %d %d %d", c1, c2, c3)
		}
		time.Sleep(50 * time.Millisecond)
	}

	ids := func(list any, key string) []string {
		var out []string
		items, _ := list.([]any)
		for _, it := range items {
			out = append(out, it.(map[string]any)[key].(string))
		}
		return out
	}
	contains := func(xs []string, x string) bool {
		for _, v := range xs {
			if v == x {
				return true
			}
		}
		return false
	}
	// Lists: the other partnership's referral is left out.
	_, q := call(rct, http.MethodGet, "/v1/queue?state=AWAITING_RULES&state=AWAITING_DECISION&state=DECIDED", nil)
	if got := ids(q["cases"], "referralId"); !contains(got, ours) || contains(got, theirs) {
		t.Errorf("queue of a rhondda-cynon-taf practitioner: %v", got)
	}
	_, q = call(everyPartnership, http.MethodGet, "/v1/queue?state=AWAITING_RULES&state=AWAITING_DECISION&state=DECIDED", nil)
	if got := ids(q["cases"], "referralId"); !contains(got, ours) || !contains(got, theirs) {
		t.Errorf("queue of a manager serving every partnership: %v", got)
	}
	_, l := call(rct, http.MethodGet, "/v1/referrals", nil)
	if got := ids(l["referrals"], "id"); !contains(got, ours) || contains(got, theirs) {
		t.Errorf("referrals listed to a rhondda-cynon-taf practitioner: %v", got)
	}
	// Reads and work on the other partnership's referral: not found, as if it did not exist.
	for _, p := range []struct{ method, path string }{
		{http.MethodGet, "/v1/cases/" + theirs},
		{http.MethodGet, "/v1/referrals/" + theirs},
		{http.MethodGet, "/v1/decisions/" + theirs},
		{http.MethodPost, "/v1/cases/" + theirs + "/claim"},
		{http.MethodPost, "/v1/cases/" + theirs + "/information-requests"},
	} {
		var body any
		switch {
		case strings.HasSuffix(p.path, "information-requests"):
			body = map[string]any{"agency": "cwm-taf-health", "question": "Known to health visiting?"}
		case p.method == http.MethodPost:
			body = map[string]any{}
		}
		if code, out := call(rct, p.method, p.path, body); code != http.StatusNotFound {
			t.Errorf("%s %s by a rhondda-cynon-taf practitioner: %d %v, want 404", p.method, p.path, code, out)
		}
		if p.method == http.MethodGet {
			if code, _ := call(rct, p.method, strings.ReplaceAll(p.path, theirs, ours), nil); code != http.StatusOK {
				t.Errorf("%s of its own partnership's referral: %d", p.path, code)
			}
		}
	}
	// A request for information on the other partnership's case is not in its list.
	if code, out := call(everyPartnership, http.MethodPost, "/v1/cases/"+theirs+"/information-requests",
		map[string]any{"agency": "cwm-taf-health", "question": "Known to health visiting?"}); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("information request by a manager of every partnership: %d %v", code, out)
	}
	_, irs := call(rct, http.MethodGet, "/v1/information-requests", nil)
	if got := ids(irs["requests"], "referralId"); contains(got, theirs) {
		t.Errorf("information requests listed to a rhondda-cynon-taf practitioner: %v", got)
	}
	_, irs = call(everyPartnership, http.MethodGet, "/v1/information-requests", nil)
	if got := ids(irs["requests"], "referralId"); !contains(got, theirs) {
		t.Errorf("information requests listed to a manager of every partnership: %v", got)
	}
	// Submitting for a partnership it does not serve is refused, naming it.
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["partnership"], m["externalReference"] = "merthyr-tydfil", "PHONE-1"
	if code, out := call(rct, http.MethodPost, "/v1/referrals", m); code != http.StatusForbidden || !strings.Contains(toJSON(out), "merthyr-tydfil") {
		t.Errorf("practitioner submitting for another partnership: %d %v", code, out)
	}
	// The dashboard counts the caller's partnerships only, together unless one is named.
	if code, out := call(twoManager, http.MethodGet, "/v1/dashboard", nil); code != http.StatusOK || fmt.Sprint(out["referrals"]) != "1" {
		t.Errorf("dashboard of a manager of rhondda-cynon-taf and cardiff: %d, %v referrals, want 1", code, out["referrals"])
	}
	if code, out := call(everyPartnership, http.MethodGet, "/v1/dashboard", nil); code != http.StatusOK || fmt.Sprint(out["referrals"]) != "2" {
		t.Errorf("dashboard of a manager of every partnership: %d, %v referrals, want 2", code, out["referrals"])
	}
	if code, _ := call(twoManager, http.MethodGet, "/v1/dashboard?partnership=merthyr-tydfil", nil); code != http.StatusForbidden {
		t.Errorf("dashboard of a partnership not served: %d", code)
	}
	if code, _ := call(twoManager, http.MethodGet, "/v1/dashboard?partnership=cardiff", nil); code != http.StatusOK {
		t.Errorf("dashboard of a partnership served: %d", code)
	}

	// The console, as a person serving rhondda-cynon-taf.
	_, sess, err := store.CreateSession(ctx, "rct.person", "RCT Person", auth.RolePractitioner, "rct-mash", time.Hour, "rhondda-cynon-taf")
	if err != nil {
		t.Fatal(err)
	}
	page := func(path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ip.httpAddr+path, nil)
		req.Header.Set("Cookie", console.SessionCookie+"="+sess)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := page("/console/cases/" + theirs); code != http.StatusNotFound {
		t.Errorf("console case of another partnership: %d, want 404", code)
	}
	if code, _ := page("/console/cases/" + ours); code != http.StatusOK {
		t.Errorf("console case of its own partnership: %d", code)
	}
	if _, body := page("/console/queue"); !strings.Contains(body, ours) || strings.Contains(body, theirs) {
		t.Errorf("the console queue: own case listed %v, another partnership's listed %v", strings.Contains(body, ours), strings.Contains(body, theirs))
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
