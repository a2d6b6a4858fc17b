package console

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// A manager opens the period's sample, reviews a decision (a disagreement needs its
// reason, shown beside that case's own field), and sees the agreement rate, here and on the
// dashboard; the page is not a practitioner's.
func TestQualityAssurancePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.signIn(t, "practitioner1")
	if code, _, _ := get(t, p, e.srv.URL+"/console/quality"); code != http.StatusForbidden {
		t.Fatalf("a practitioner opens the QA page: %d", code)
	}
	if _, q, _ := get(t, p, e.srv.URL+"/console/queue"); strings.Contains(q, `href="/console/quality"`) {
		t.Error("a practitioner's menu offers quality assurance")
	}
	m := e.signIn(t, "manager1")
	code, page, _ := get(t, m, e.srv.URL+"/console/quality?from=2026-11-23&to=2026-11-29")
	if code != http.StatusOK {
		t.Fatalf("QA page: %d", code)
	}
	checkPage(t, "/console/quality", "en", page)
	if !strings.Contains(page, `id="review-`+qaCase+`"`) || strings.Contains(page, `id="review-`+qaOwn+`"`) ||
		!strings.Contains(page, "Your own decision") || !strings.Contains(page, "MASH-2026-0000201") {
		t.Fatal("the sample should offer a form for the colleague's decision and none for the manager's own")
	}
	if !strings.Contains(page, `id="qa-agreement"`) || !strings.Contains(page, "66.7%") {
		t.Error("the QA page lacks the agreement rate")
	}
	// Disagreeing without a reason: refused beside that case's reason, nothing sent.
	form := url.Values{"csrf": {csrfOf(t, page)}, "referral_id": {qaCase}, "verdict": {"DISAGREE"}, "from": {"2026-11-23"}, "to": {"2026-11-29"}}
	code, page, _ = post(t, m, e.srv.URL+"/console/quality/reviews", form)
	if f := "review-" + qaCase + "-reason"; code != http.StatusBadRequest || !strings.Contains(page, `id="e-`+f+`"`) ||
		!regexp.MustCompile(`id="f-`+f+`"[^>]*aria-invalid="true"`).MatchString(page) || len(e.qa.reviews) != 0 {
		t.Fatalf("a disagreement without a reason: %d, %d reviews sent", code, len(e.qa.reviews))
	}
	// The service's refusal of a field shows beside it, keeping what was typed.
	form.Set("csrf", csrfOf(t, page))
	form.Set("reason", "Level 3a: the school's concerns.")
	form.Set("learning_point", "Check the school's earlier concerns first.")
	code, page, _ = post(t, m, e.srv.URL+"/console/quality/reviews", form)
	if f := "review-" + qaCase + "-learning_point"; code != http.StatusBadRequest || !strings.Contains(page, `id="e-`+f+`"`) ||
		!strings.Contains(page, "Level 3a: the school&#39;s concerns.") {
		t.Fatalf("the service's refusal: %d", code)
	}
	form.Set("csrf", csrfOf(t, page))
	form.Set("learning_point", "Check the school.")
	code, _, h := post(t, m, e.srv.URL+"/console/quality/reviews", form)
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=reviewed") {
		t.Fatalf("recording the review: %d to %s", code, h.Get("Location"))
	}
	if len(e.qa.reviews) != 1 || e.qa.reviews[0].GetVerdict() != triagev1.QualityVerdict_DISAGREE || e.qa.reviews[0].GetReason() != "Level 3a: the school's concerns." {
		t.Fatalf("reviews sent: %v", e.qa.reviews)
	}
	_, page, _ = get(t, m, e.srv.URL+h.Get("Location"))
	if !strings.Contains(page, "Your review was recorded.") || !strings.Contains(page, "You have reviewed this case.") || !strings.Contains(page, `id="qa-reviews"`) {
		t.Error("after the review the page should confirm it and list it")
	}
	// The dashboard shows the agreement rate too.
	_, page, _ = get(t, m, e.srv.URL+"/console/dashboard")
	if !strings.Contains(page, `id="qa-agreement"`) || !strings.Contains(page, "50.0%") {
		t.Error("the dashboard lacks the quality agreement rate")
	}
	// In Welsh.
	get(t, m, e.srv.URL+"/console/lang?to=cy&next=/console/quality")
	_, page, _ = get(t, m, e.srv.URL+"/console/quality")
	if !strings.Contains(page, "Sicrhau ansawdd") {
		t.Error("the QA page in Welsh")
	}
}
