package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mash-hub/mash/services/console/browsertest"
)

// A practitioner finds a child by a misspelt name in the console of the real binary, in
// real headless Chromium; the child record offers a second record with the same name and
// date of birth but another postcode (never linked by the rules), the practitioner merges
// it with a reason, sees the history follow, and undoes the merge.
func TestSearchAndChildRecordInBrowser(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	referrer := s.credential(t, "south-wales-police")
	password := "correct horse battery staple"
	cmd := exec.Command(mashBinary, "users", "create", "--username", "prac.evans", "--name", "Rhian Evans", "--role", "practitioner",
		"--partnerships", "rhondda-cynon-taf", "--password-stdin")
	cmd.Env = s.env()
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	s.start(t, "MASH_CONSOLE_INSECURE_COOKIES=true")
	// Two referrals about a Siân Pritchard born on the same day, from two addresses and
	// without an NHS number: the rules keep them as two children.
	for i, postcode := range []string{"CF37 1AA", "CF44 7PX"} {
		var m map[string]any
		if err := json.Unmarshal(example(t), &m); err != nil {
			t.Fatal(err)
		}
		m["externalReference"] = "SEARCH-" + strings.ReplaceAll(postcode, " ", "")
		child := m["child"].(map[string]any)
		child["givenName"], child["familyName"], child["dateOfBirth"] = "Siân", "Pritchard", "2016-03-01"
		delete(child, "nhsNumber")
		child["address"].(map[string]any)["postcode"] = postcode
		body, _ := json.Marshal(m)
		if code, out, err := s.submit(referrer, body); err != nil || code != 201 {
			t.Fatalf("submit %d: %d %s %v", i, code, out, err)
		}
	}
	staff := apiCall{t, "http://" + s.httpAddr, func() string {
		out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf")
		if code != 0 {
			t.Fatalf("clients create: %s", errOut)
		}
		return strings.TrimSpace(out)
	}()}
	waitUntil(t, "both referrals on the queue", func() bool {
		_, q, _ := staff.do("GET", "/v1/queue?state=AWAITING_DECISION", nil)
		return len(anyList(q["cases"])) == 2
	})
	dir := os.Getenv("MASH_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", ".local", "artifacts")
	}
	browsertest.RunSearch(t, "http://"+s.httpAddr, browsertest.SearchVisit{Username: "prac.evans", Password: password,
		Query: "sian pritchird", Reason: "Call from the school about Siân", WantName: "Siân Pritchard"}, filepath.Join(dir, "browser"))
}
