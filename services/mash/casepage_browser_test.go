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

// A practitioner records a telephone contact about two siblings without a date of birth in
// the console of the real binary, in real headless Chromium: one referral per child goes
// through intake's API, both reach the queue under their MASH references, and the case page
// shows the whole referral in order (fetched by triage from intake, the access trail from
// audit), in Welsh too, with a print view. An earlier police referral about another child
// is in that child's history. The triage API serves the same case data.
func TestCasePageAndPhoneContactInBrowser(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	referrer := s.credential(t, "south-wales-police")
	password := "correct horse battery staple"
	cmd := exec.Command(mashBinary, "users", "create", "--username", "prac.hughes", "--name", "Elin Hughes", "--role", "practitioner",
		"--partnerships", "rhondda-cynon-taf", "--password-stdin")
	cmd.Env = s.env()
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	s.start(t, "MASH_CONSOLE_INSECURE_COOKIES=true")

	// Two police referrals about one child: the second's history holds the first.
	for _, ext := range []string{"CASEPAGE-EARLIER", "CASEPAGE-LATER"} {
		var m map[string]any
		if err := json.Unmarshal(example(t), &m); err != nil {
			t.Fatal(err)
		}
		m["externalReference"] = ext
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
	byExt := map[string]map[string]any{}
	waitUntil(t, "both police referrals on the queue", func() bool {
		_, q, _ := staff.do("GET", "/v1/queue?state=AWAITING_DECISION", nil)
		for _, c := range anyList(q["cases"]) {
			m := c.(map[string]any)
			byExt[str(m, "externalReference")] = m
		}
		return byExt["CASEPAGE-EARLIER"] != nil && byExt["CASEPAGE-LATER"] != nil
	})
	earlier, later := byExt["CASEPAGE-EARLIER"], byExt["CASEPAGE-LATER"]
	if !strings.HasPrefix(str(earlier, "reference"), "MASH-") {
		t.Fatalf("the queue does not carry the MASH reference: %v", earlier)
	}

	// The triage API's case: the referral as intake holds it, and history before it only.
	_, c, raw := staff.do("GET", "/v1/cases/"+str(later, "referralId"), nil)
	if str(c, "referral", "submission", "narrative") == "" || str(c, "referral", "submission", "child", "givenName") != "Alex" ||
		str(c, "referral", "submission", "referrer", "phone") != "+441443000000" {
		t.Fatalf("GET /v1/cases/{id} lacks the referral (phone stored in E.164): %s", raw)
	}
	if h := anyList(c["history"]); len(h) != 1 || str(h[0].(map[string]any), "reference") != str(earlier, "reference") {
		t.Fatalf("the later referral's history: %s", raw)
	}
	_, c, raw = staff.do("GET", "/v1/cases/"+str(earlier, "referralId"), nil)
	if len(anyList(c["history"])) != 0 {
		t.Fatalf("the earlier referral's history lists a later one: %s", raw)
	}

	dir := os.Getenv("MASH_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", ".local", "artifacts")
	}
	recorded := browsertest.RunContactAndCase(t, "http://"+s.httpAddr, browsertest.Contact{Username: "prac.hughes", Password: password,
		HistoryCase: str(later, "referralId"), EarlierReference: str(earlier, "reference")}, filepath.Join(dir, "browser"))

	// What the console sent is what intake holds: one referral per child in one family
	// group, neither with a date of birth.
	for i, r := range recorded {
		_, c, raw := staff.do("GET", "/v1/cases/"+r.ReferralID, nil)
		child := c["referral"].(map[string]any)["submission"].(map[string]any)["child"].(map[string]any)
		if str(c, "case", "familyGroup") == "" || str(c, "case", "reference") != r.Reference || child["dateOfBirth"] != nil ||
			len(anyList(c["family"])) != 1 {
			t.Fatalf("contact referral %d: %s", i+1, raw)
		}
	}
}
