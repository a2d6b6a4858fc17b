package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mash-hub/mash/services/console/browsertest"
)

// A manager signs in to the console served by the real binary, in real headless Chromium,
// and works the most urgent referral: every request goes through the console to triage,
// rules, notify and audit as the signed-in person. Screenshots of each main screen are
// kept in $MASH_ARTIFACTS_DIR/browser (default .local/artifacts/browser).
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	referrer := s.credential(t, "south-wales-police")
	password := "correct horse battery staple"
	cmd := exec.Command(mashBinary, "users", "create", "--username", "mgr.jones", "--name", "Morgan Jones", "--role", "manager", "--partnerships", "rhondda-cynon-taf", "--password-stdin")
	cmd.Env = s.env()
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	s.start(t, "MASH_CONSOLE_INSECURE_COOKIES=true")

	// Two referrals: the Red one is the most urgent and the browser test takes it.
	for i, ext := range []string{"BROWSER-RED-1", "BROWSER-2"} {
		var m map[string]any
		if err := json.Unmarshal(example(t), &m); err != nil {
			t.Fatal(err)
		}
		m["externalReference"] = ext
		if i == 1 {
			m["concerns"] = []any{map[string]any{"category": "SCHOOL_ATTENDANCE", "summary": "Attendance has fallen to 80% this term.", "observedAt": "2026-11-20T09:00:00Z"}}
		}
		body, _ := json.Marshal(m)
		if code, out, err := s.submit(referrer, body); err != nil || code != 201 {
			t.Fatalf("submit %s: %d %s %v", ext, code, out, err)
		}
	}
	staff := apiCall{t, "http://" + s.httpAddr, func() string {
		out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf")
		if code != 0 {
			t.Fatalf("clients create: %s", errOut)
		}
		return strings.TrimSpace(out)
	}()}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, q, _ := staff.do("GET", "/v1/queue?state=AWAITING_DECISION", nil)
		if len(anyList(q["cases"])) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("referrals not queued: %v", q)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dir := os.Getenv("MASH_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", ".local", "artifacts")
	}
	browsertest.Run(t, "http://"+s.httpAddr, "mgr.jones", password, filepath.Join(dir, "browser"))

	// The override the browser made is the manager's decision in rules, and the trail says so.
	_, q, raw := staff.do("GET", "/v1/queue?state=DECIDED", nil)
	cases := anyList(q["cases"])
	if len(cases) != 1 || str(cases[0].(map[string]any), "decisionStatus") != "OVERRIDDEN" {
		t.Fatalf("after the browser's override, decided cases: %s", raw)
	}
}
