package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// subjectExport is the part of the subject access document the test reads.
type subjectExport struct {
	Format         string `json:"format"`
	ExportedBy     string `json:"exportedBy"`
	ExportedByRole string `json:"exportedByRole"`
	Reason         string `json:"reason"`
	ReferralID     string `json:"referralId"`
	ChildID        string `json:"childId"`
	Referrals      []struct {
		ReferralID string `json:"referralId"`
		Referral   struct {
			ExternalReference string `json:"externalReference"`
			Submission        struct {
				Child struct {
					GivenName, FamilyName, NhsNumber string
				} `json:"child"`
				Narrative string `json:"narrative"`
			} `json:"submission"`
		} `json:"referral"`
		Decision struct {
			Status      string `json:"status"`
			ReviewedBy  string `json:"reviewedBy"`
			Recommended struct {
				Level string `json:"level"`
			} `json:"recommended"`
		} `json:"decision"`
		Case struct {
			State                string `json:"state"`
			ConsentStatus        string `json:"consentStatus"`
			SharingAuthorisation struct {
				Reason, LawfulBasis, AuthorisedBy string
			} `json:"sharingAuthorisation"`
		} `json:"case"`
		LegalHolds []struct {
			Reason, PlacedBy string
		} `json:"legalHolds"`
		QualityReviews []struct {
			Verdict, Reason, Reviewer string
		} `json:"qualityReviews"`
		Notifications []struct {
			ID             string `json:"id"`
			Agency         string `json:"agency"`
			Role           string `json:"role"`
			Kind           string `json:"kind"`
			State          string `json:"state"`
			CreatedAt      string `json:"createdAt"`
			DeliveredAt    string `json:"deliveredAt"`
			AcknowledgedAt string `json:"acknowledgedAt"`
			AcknowledgedBy string `json:"acknowledgedBy"`
			WithdrawnAt    string `json:"withdrawnAt"`
			Withdraws      string `json:"withdrawsNotificationId"`
			Share          struct {
				Fields      []string `json:"fields"`
				LawfulBasis string   `json:"lawfulBasis"`
			} `json:"share"`
			History []struct {
				At string `json:"at"`
				OK bool   `json:"ok"`
			} `json:"history"`
		} `json:"notifications"`
		Trail []struct {
			EventType, Actor, IntegrityError string
		} `json:"trail"`
	} `json:"referrals"`
	Accesses []struct {
		Actor, EventType, Reason, ReferralID string
	} `json:"accesses"`
	Omissions []string `json:"omissions"`
}

// A referral goes through every service and then a manager exports everything held about
// the child for a subject access request: the file holds both of the child's referrals as
// received, the recommendation and the decision, consent and the sharing authorisation,
// the legal hold, each agency told with when it was sent, delivered and acknowledged, the
// trail, and who read the record and why. A practitioner is refused, a missing reason is
// refused, an unknown id is a 404 saying so, an existing file is never overwritten, and
// the export leaves its own entry on the trail with the manager and the reason.
func TestSubjectAccessExportHoldsEverythingAboutTheChild(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testSubjectAccessExport)
}

func testSubjectAccessExport(t *testing.T, s *system) {
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
	dirFile := filepath.Join(t.TempDir(), "directory.yaml")
	if err := os.WriteFile(dirFile, []byte(dir), 0o600); err != nil {
		t.Fatal(err)
	}
	staff := func(role string) string {
		out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", role, "--partnerships", "rhondda-cynon-taf")
		if code != 0 {
			t.Fatalf("clients create: %s", errOut)
		}
		return strings.TrimSpace(out)
	}
	practitioner, manager, auditor := staff("practitioner"), staff("manager"), staff("auditor")
	s.start(t, "MASH_NOTIFY_DIRECTORY="+dirFile, "E2E_SECRET_1="+secret(1), "E2E_SECRET_2="+secret(2), "E2E_SECRET_3="+secret(3),
		"E2E_SECRET_4="+secret(4), "E2E_SECRET_5="+secret(5))
	base := "http://" + s.httpAddr
	asPractitioner, asManager, asReferrer, asAuditor := apiCall{t, base, practitioner}, apiCall{t, base, manager}, apiCall{t, base, referrer}, apiCall{t, base, auditor}

	submit := func(body []byte) string {
		t.Helper()
		code, out, err := s.submit(referrer, body)
		if err != nil || code != 201 {
			t.Fatalf("submit: %d %s %v", code, out, err)
		}
		var ack struct {
			ReferralID string `json:"referralId"`
		}
		if err := json.Unmarshal([]byte(out), &ack); err != nil {
			t.Fatal(err)
		}
		return ack.ReferralID
	}
	id := submit(example(t))
	// A second referral about the same child (the same NHS number): the child index links it.
	later := submit(bytes.Replace(example(t), []byte(`"SWP-2026-11-000123"`), []byte(`"SWP-2026-11-000999"`), 1))

	pool := s.pool(t)
	// Decided by a practitioner once the rules have recommended; shared without consent on
	// a manager's authorisation.
	waitUntil(t, "the rules' recommendation in triage", func() bool {
		var state int
		err := pool.QueryRow(context.Background(), `SELECT state FROM triage.cases WHERE referral_id = $1`, id).Scan(&state)
		return err == nil && state == 2
	})
	code, claimed, raw := asPractitioner.do("POST", "/v1/cases/"+id+"/claim", map[string]any{})
	if code != 200 {
		t.Fatalf("claim: %d %s", code, raw)
	}
	if code, _, raw := asPractitioner.do("POST", "/v1/cases/"+id+"/decide", map[string]any{"expectedVersion": str(claimed, "case", "version"),
		"confirm": true, "reason": "Agreed: strategy discussion today."}); code != 200 {
		t.Fatalf("decide: %d %s", code, raw)
	}
	const basis = "UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 18"
	const authReason = "High-risk domestic abuse: every agency named must act today."
	if code, _, raw := asManager.do("POST", "/v1/cases/"+id+"/sharing-authorisation", map[string]any{"lawfulBasis": basis, "reason": authReason}); code != 200 {
		t.Fatalf("authorise sharing: %d %s", code, raw)
	}
	const holdReason = "Family court order to preserve records"
	if code, _, raw := asManager.do("POST", "/v1/cases/"+id+"/legal-hold", map[string]any{"reason": holdReason}); code != 200 {
		t.Fatalf("legal hold: %d %s", code, raw)
	}
	const qaReason = "Level 3a: the school's earlier concerns were not weighed"
	if code, _, raw := asManager.do("POST", "/v1/cases/"+id+"/quality-reviews", map[string]any{"verdict": "DISAGREE", "reason": qaReason}); code != 200 {
		t.Fatalf("quality review: %d %s", code, raw)
	}
	// Police acknowledge the action they were sent on the decision (what they were told on
	// the recommendation alone was withdrawn when the decision held sharing back for
	// consent); social care do not.
	waitUntil(t, "social care's actions delivered", func() bool { return social.count("ACTION") >= 2 })
	var policeAction string
	waitUntil(t, "the police action delivered", func() bool {
		_, out, _ := asReferrer.do("GET", "/v1/notifications?referralId="+id, nil)
		policeAction = ""
		withdrawn := false
		for _, x := range anyList(out["notifications"]) {
			n := x.(map[string]any)
			if str(n, "kind") != "ACTION" || str(n, "agency") != "south-wales-police" {
				continue
			}
			withdrawn = withdrawn || str(n, "withdrawnAt") != ""
			if str(n, "state") == "DELIVERED" && str(n, "withdrawnAt") == "" {
				policeAction = str(n, "id")
			}
		}
		return withdrawn && policeAction != ""
	})
	if code, _, raw := asReferrer.do("POST", "/v1/notifications/"+policeAction+"/acknowledge", map[string]any{"note": "duty sergeant"}); code != 200 {
		t.Fatalf("police acknowledge: %d %s", code, raw)
	}
	// A practitioner reads the case, saying why: the export shows who looked and why.
	const readReason = "Preparing the strategy discussion"
	req, _ := http.NewRequest("GET", base+"/v1/cases/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+practitioner)
	req.Header.Set("X-Access-Reason", readReason)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("practitioner reads the case: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Everything is on the trail before the export is made.
	waitUntil(t, "the trail to hold the acknowledgement, the hold and the read", func() bool {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(DISTINCT event_type) FROM audit.entries WHERE referral_id = $1 AND event_type IN
			('mash.notification.acknowledged', 'mash.case.legal_hold_placed', 'mash.access.case', 'mash.sharing.authorised')`, id).Scan(&n)
		return err == nil && n == 4
	})
	waitUntil(t, "the second referral to reach triage matched to the child", func() bool {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM triage.cases a JOIN triage.cases b ON a.child_id = b.child_id
			WHERE a.referral_id = $1 AND b.referral_id = $2`, id, later).Scan(&n)
		return err == nil && n == 1
	})

	cli := func(token string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, mashBinary, append([]string{"cases", "export"}, args...)...)
		cmd.Env = s.env("MASH_TOKEN="+token, "MASH_API_URL="+base)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return o.String(), e.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), 0
	}
	out := filepath.Join(t.TempDir(), "sar.json")
	const reason = "SAR-2026-0042: request from the child's mother"

	// Refusals: a practitioner, no reason, an unknown referral, an existing file.
	if _, errOut, code := cli(practitioner, id, "--reason", reason, "--out", out); code == 0 || !strings.Contains(errOut, "403") {
		t.Fatalf("practitioner exports: exit %d, %s; want 403", code, errOut)
	}
	if _, errOut, code := cli(manager, id, "--out", out); code == 0 || !strings.Contains(errOut, "--reason") {
		t.Fatalf("export without a reason: exit %d, %s; want a refusal naming --reason", code, errOut)
	}
	if code, _, raw := asManager.do("POST", "/v1/cases/"+id+"/export", map[string]any{}); code != 400 || !strings.Contains(raw, `"reason"`) {
		t.Fatalf("API export without a reason: %d %s; want 400 naming reason", code, raw)
	}
	unknown := "0192a3b4-0000-7000-8000-00000000abcd"
	if _, errOut, code := cli(manager, unknown, "--reason", reason, "--out", out); code == 0 || !strings.Contains(errOut, "404") ||
		!strings.Contains(errOut, "no case for referral "+unknown) {
		t.Fatalf("export of an unknown referral: exit %d, %s; want 404 naming it", code, errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("a refused export left %s behind", out)
	}
	taken := filepath.Join(t.TempDir(), "taken.json")
	if err := os.WriteFile(taken, []byte("another export"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(manager, id, "--reason", reason, "--out", taken); code == 0 || !strings.Contains(errOut, "exists") {
		t.Fatalf("export over an existing file: exit %d, %s; want a refusal", code, errOut)
	}
	if b, _ := os.ReadFile(taken); string(b) != "another export" {
		t.Fatalf("the existing file was changed: %q", b)
	}

	// The manager's export.
	began := time.Now()
	if _, errOut, code := cli(manager, id, "--reason", reason, "--out", out); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	} else {
		t.Logf("export (command included) took %s: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(errOut))
	}
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("export file mode %v, want 0600", info.Mode().Perm())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc subjectExport
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	if doc.Format != "mash.subject-access/v1" || doc.Reason != reason || doc.ExportedByRole != "manager" || doc.ExportedBy == "" ||
		doc.ReferralID != id || doc.ChildID == "" || len(doc.Omissions) != 0 {
		t.Fatalf("export header: format %q, reason %q, by %q (%q), referral %q, child %q, omissions %v", doc.Format, doc.Reason,
			doc.ExportedBy, doc.ExportedByRole, doc.ReferralID, doc.ChildID, doc.Omissions)
	}
	if len(doc.Referrals) != 2 || doc.Referrals[0].ReferralID != id || doc.Referrals[1].ReferralID != later {
		t.Fatalf("export holds %d referrals, want %s then %s", len(doc.Referrals), id, later)
	}
	r := doc.Referrals[0]
	if c := r.Referral.Submission.Child; c.GivenName != "Alex" || c.FamilyName != "Morgan" || c.NhsNumber != "9434765919" ||
		r.Referral.ExternalReference != "SWP-2026-11-000123" || doc.Referrals[1].Referral.ExternalReference != "SWP-2026-11-000999" {
		t.Fatalf("referrals as received: %+v / %+v", r.Referral, doc.Referrals[1].Referral)
	}
	if r.Decision.Recommended.Level != "LEVEL_4" || r.Decision.Status != "CONFIRMED" || r.Decision.ReviewedBy == "" {
		t.Fatalf("recommendation and decision: %+v", r.Decision)
	}
	if r.Case.State != "DECIDED" || r.Case.SharingAuthorisation.Reason != authReason || r.Case.SharingAuthorisation.LawfulBasis != basis ||
		r.Case.ConsentStatus == "" {
		t.Fatalf("case, consent and authorisation: %+v", r.Case)
	}
	if len(r.LegalHolds) != 1 || r.LegalHolds[0].Reason != holdReason || r.LegalHolds[0].PlacedBy == "" {
		t.Fatalf("legal holds: %+v", r.LegalHolds)
	}
	if len(r.QualityReviews) != 1 || r.QualityReviews[0].Verdict != "DISAGREE" || r.QualityReviews[0].Reason != qaReason || r.QualityReviews[0].Reviewer == "" {
		t.Fatalf("quality reviews: %+v", r.QualityReviews)
	}
	// Each agency told, in its role, with the fields it was sent, when sent, delivered and
	// whether acknowledged.
	told := map[string]bool{}
	withdrawn := 0
	for _, n := range r.Notifications {
		if n.WithdrawnAt != "" {
			withdrawn++
		}
		if n.Kind != "ACTION" || n.WithdrawnAt != "" {
			continue
		}
		told[n.Agency] = true
		if n.Role == "" || len(n.Share.Fields) == 0 || n.CreatedAt == "" || n.DeliveredAt == "" || len(n.History) == 0 || !n.History[0].OK ||
			n.Share.LawfulBasis == "" {
			t.Errorf("notification %s to %s: role %q, fields %v, created %q, delivered %q, attempts %v", n.ID, n.Agency, n.Role, n.Share.Fields,
				n.CreatedAt, n.DeliveredAt, n.History)
		}
		switch {
		case n.ID == policeAction && (n.State != "ACKNOWLEDGED" || n.AcknowledgedAt == "" || n.AcknowledgedBy == ""):
			t.Errorf("police action %s: state %s, acknowledged %q by %q; want acknowledged", n.ID, n.State, n.AcknowledgedAt, n.AcknowledgedBy)
		case n.Agency == "rct-csc" && (n.State != "DELIVERED" || n.AcknowledgedAt != ""):
			t.Errorf("social care action %s: state %s, acknowledged %q; want delivered, not acknowledged", n.ID, n.State, n.AcknowledgedAt)
		}
	}
	for _, agency := range []string{"south-wales-police", "rct-csc", "rct-partners"} {
		if !told[agency] {
			t.Errorf("the export does not say %s was told", agency)
		}
	}
	// What was shared on the recommendation alone and then held back is shown withdrawn.
	if withdrawn == 0 {
		t.Errorf("the export shows no withdrawal: %+v", r.Notifications)
	}
	// The trail: the events of every service, all proven.
	seen := map[string]bool{}
	for _, e := range r.Trail {
		if e.IntegrityError != "" {
			t.Errorf("trail entry does not match its leaf: %s", e.IntegrityError)
		}
		seen[e.EventType] = true
	}
	for _, want := range []string{"mash.referral.received", "mash.recommendation.made", "mash.decision.made", "mash.notification.delivered",
		"mash.notification.acknowledged", "mash.sharing.authorised", "mash.case.legal_hold_placed", "mash.access.case"} {
		if !seen[want] {
			t.Errorf("the export's trail lacks %s (has %v)", want, seen)
		}
	}
	read := false
	for _, a := range doc.Accesses {
		read = read || (a.EventType == "mash.access.case" && a.Reason == readReason)
	}
	if !read {
		t.Errorf("the export's accesses do not show the practitioner's read with its reason: %+v", doc.Accesses)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The export is on the trail: who exported, and why.
	waitUntil(t, "the export's own access entry", func() bool {
		_, out, _ := asAuditor.do("GET", "/v1/audit/access?referralId="+id, nil)
		for _, x := range anyList(out["accesses"]) {
			a := x.(map[string]any)
			if str(a, "eventType") == "mash.access.export" && str(a, "actor") == doc.ExportedBy && str(a, "reason") == reason {
				return true
			}
		}
		return false
	})
}
