package console

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// has reports whether a page shows text (html/template writes ' as &#39;).
func has(body, text string) bool {
	return strings.Contains(html.UnescapeString(body), text)
}

// caseEnv is an environment whose console reads the clock at the fixtures' time, so the
// fixtures' deadlines are overdue or not whatever the day the tests run.
func caseEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.svc.now = func() time.Time { return fixtureNow }
	return e
}

func setLang(t *testing.T, e *env, c *http.Client, lang string) {
	t.Helper()
	u, _ := url.Parse(e.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: LangCookie, Value: lang, Path: "/"}})
}

func TestDisagreementsOnCasePage(t *testing.T) {
	t.Parallel()
	e := caseEnv(t)
	c := e.signIn(t, "manager1")
	code, body, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	if code != http.StatusOK {
		t.Fatalf("case: %d", code)
	}
	checkPage(t, "case", "en", body)
	for _, w := range []string{
		// The stage history: stage, due, outcome, who.
		"Stages so far", "Practitioner kept level 3a: no new information", "client:user:alice (mash-hub, practitioner)",
		// A stage the service escalated when its deadline passed, in words.
		"The deadline passed, so it was escalated automatically",
		// The current stage and its deadline, overdue written as text.
		"Current stage: Team manager.", "Current stage: Partnership.",
		// Forms for a manager: escalate the open one; at the last stage only resolve.
		`id="escalate-form-` + disagreeOpen + `"`, `id="resolve-form-` + disagreeOpen + `"`, `id="resolve-form-` + disagreeOverdue + `"`,
		"This is the last stage: resolve it with the partnership's outcome.", "It will go to: Senior safeguarding manager.",
		`name="version" value="2"`,
	} {
		if !has(body, w) {
			t.Errorf("case page lacks %q", w)
		}
	}
	if strings.Contains(body, `id="escalate-form-`+disagreeOverdue+`"`) {
		t.Error("escalation offered at the last stage")
	}
	overdue := body[strings.Index(body, `id="stage-due-`+disagreeOverdue+`"`):]
	overdue = overdue[:strings.Index(overdue, "</p>")]
	if !strings.Contains(overdue, "Overdue") {
		t.Errorf("the partnership stage's passed deadline is not flagged: %s", overdue)
	}
	onTime := body[strings.Index(body, `id="stage-due-`+disagreeOpen+`"`):]
	onTime = onTime[:strings.Index(onTime, "</p>")]
	if strings.Contains(onTime, "Overdue") {
		t.Errorf("a stage due in two days is flagged overdue: %s", onTime)
	}
	// Agencies raise disagreements through the API: the console has no form for it.
	if strings.Contains(body, `action="/console/cases/`+caseOne+`/disagreements"`) {
		t.Error("the case page offers to raise a disagreement")
	}
	// Another case's disagreements are not shown here.
	if has(body, "Health visiting should have been told") {
		t.Error("another case's disagreement is on this case")
	}
}

func TestDisagreementActionsRefusedWithoutRole(t *testing.T) {
	t.Parallel()
	e := caseEnv(t)
	// Auditors and administrators do not work cases: the case is not theirs to open, nor
	// its disagreements to move on.
	for _, user := range []string{"auditor1", "admin1"} {
		c := e.signIn(t, user)
		code, body, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
		if code != http.StatusForbidden {
			t.Fatalf("%s case: %d, want 403", user, code)
		}
		if has(body, "We think level 3a is too low") || strings.Contains(body, "escalate-form-") || strings.Contains(body, "resolve-form-") {
			t.Errorf("%s sees the case's disagreements", user)
		}
		_, body, _ = get(t, c, e.srv.URL+"/console/notifications")
		csrf := csrfOf(t, body)
		for _, path := range []string{"/escalate", "/resolve"} {
			code, _, _ := post(t, c, e.srv.URL+"/console/cases/"+caseOne+"/disagreements/"+disagreeOpen+path,
				url.Values{"csrf": {csrf}, "version": {"2"}, "stage_outcome": {"x"}, "resolution": {"x"}})
			if code != http.StatusForbidden {
				t.Errorf("%s %s: %d, want 403", user, path, code)
			}
		}
	}
	// Without the form's token, even a manager is refused.
	c := e.signIn(t, "manager1")
	if code, _, _ := post(t, c, e.srv.URL+"/console/cases/"+caseOne+"/disagreements/"+disagreeOpen+"/resolve",
		url.Values{"version": {"2"}, "resolution": {"agreed"}}); code != http.StatusForbidden {
		t.Errorf("resolve without CSRF: %d", code)
	}
	if e.triage.escalated+e.triage.resolved != 0 {
		t.Fatal("a refused change reached triage")
	}
}

func TestEscalateDisagreement(t *testing.T) {
	t.Parallel()
	e := caseEnv(t)
	c := e.signIn(t, "manager1")
	_, body, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	csrf := csrfOf(t, body)
	escalate := e.srv.URL + "/console/cases/" + caseOne + "/disagreements/" + disagreeOpen + "/escalate"
	field := "stage_outcome-" + disagreeOpen

	// No outcome: caught before the call, shown by the field and in the summary, form open.
	code, body, _ := post(t, c, escalate, url.Values{"csrf": {csrf}, "version": {"2"}, "stage_outcome": {"  "}})
	if code != http.StatusBadRequest || !strings.Contains(body, `href="#f-`+field+`"`) || !strings.Contains(body, `id="e-`+field+`"`) ||
		!has(body, "Enter what the current stage concluded") || !strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("escalate without outcome: %d", code)
	}
	if !strings.Contains(body, "<details open><summary>Escalate to the next stage") {
		t.Error("the refused form is not open")
	}
	checkPage(t, "escalate error", "en", body)

	// The service's field violation lands by this disagreement's field, not the strategy form's.
	e.triage.disagreeErr = invalid("outcome", "is required: what the current stage concluded")
	code, body, _ = post(t, c, escalate, url.Values{"csrf": {csrf}, "version": {"2"}, "stage_outcome": {"kept"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="e-`+field+`"`) || strings.Contains(body, `id="e-outcome"`) {
		t.Fatalf("API field violation: %d", code)
	}
	if !strings.Contains(body, ">kept</textarea>") {
		t.Error("the refused form was not refilled")
	}
	e.triage.disagreeErr = nil

	// Escalated: back to the case with a confirmation, the stage moved on, the outcome recorded.
	code, _, h := post(t, c, escalate, url.Values{"csrf": {csrf}, "version": {"2"}, "stage_outcome": {"Team manager agrees with the level; the school still disagrees"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/cases/"+caseOne+"?done=escalated" {
		t.Fatalf("escalate: %d %s", code, h.Get("Location"))
	}
	_, body, _ = get(t, c, e.srv.URL+h.Get("Location"))
	for _, w := range []string{"The disagreement went to its next stage", "Current stage: Senior safeguarding manager.",
		"Team manager agrees with the level; the school still disagrees", "It will go to: Partnership.", `name="version" value="3"`} {
		if !has(body, w) {
			t.Errorf("after escalating, the case lacks %q", w)
		}
	}

	// Another person's form, loaded before the escalation, carries version 2: refused, and
	// the page says the disagreement changed, with the service's words.
	c2 := e.signIn(t, "manager1")
	_, body, _ = get(t, c2, e.srv.URL+"/console/cases/"+caseOne)
	code, body, _ = post(t, c2, escalate, url.Values{"csrf": {csrfOf(t, body)}, "version": {"2"}, "stage_outcome": {"stale"}})
	if code != http.StatusConflict || !has(body, "The disagreement changed since you loaded the page") || !has(body, "changed since you loaded it (version 2, now 3)") {
		t.Fatalf("stale version: %d", code)
	}
	if e.triage.escalated != 1 {
		t.Fatalf("escalations reaching triage: %d", e.triage.escalated)
	}
}

func TestResolveDisagreement(t *testing.T) {
	t.Parallel()
	e := caseEnv(t)
	c := e.signIn(t, "manager1")
	_, body, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	csrf := csrfOf(t, body)
	resolve := e.srv.URL + "/console/cases/" + caseOne + "/disagreements/" + disagreeOverdue + "/resolve"

	code, body, _ := post(t, c, resolve, url.Values{"csrf": {csrf}, "version": {"4"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `href="#f-resolution-`+disagreeOverdue+`"`) || !has(body, "Enter what was agreed") {
		t.Fatalf("resolve without resolution: %d", code)
	}
	code, _, h := post(t, c, resolve, url.Values{"csrf": {csrf}, "version": {"4"}, "resolution": {"Partnership agreed a strategy discussion"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=resolved") {
		t.Fatalf("resolve: %d %s", code, h.Get("Location"))
	}
	_, body, _ = get(t, c, e.srv.URL+h.Get("Location"))
	if !has(body, "The disagreement was resolved") || !has(body, "<strong>What was agreed:</strong> Partnership agreed a strategy discussion") {
		t.Error("the resolution is not shown")
	}
	if strings.Contains(body, `id="resolve-form-`+disagreeOverdue+`"`) {
		t.Error("a resolved disagreement still offers to resolve it")
	}
	// Resolving it again from the old page: the service refuses; the page says why.
	code, body, _ = post(t, c, resolve, url.Values{"csrf": {csrf}, "version": {"5"}, "resolution": {"again"}})
	if code != http.StatusConflict || !has(body, "or is already resolved") {
		t.Fatalf("resolve twice: %d", code)
	}
}

func TestAnswerInformationRequest(t *testing.T) {
	t.Parallel()
	e := caseEnv(t)
	c := e.signIn(t, "practitioner1")
	_, body, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	csrf := csrfOf(t, body)
	for _, w := range []string{"Record an answer given another way", `id="answer-form-` + infoOpen + `"`, `id="answer-form-` + infoLate + `"`,
		`<label for="f-answer-` + infoLate + `">`, "What is the child's attendance this term?"} {
		if !has(body, w) {
			t.Errorf("case page lacks %q", w)
		}
	}
	row := body[strings.Index(body, "What is the child&#39;s attendance"):]
	if row = row[:strings.Index(row, "</tr>")]; !strings.Contains(row, `class="overdue-flag">Overdue`) {
		t.Error("the overdue request is not flagged in words")
	}
	answer := e.srv.URL + "/console/cases/" + caseOne + "/information-requests/" + infoLate + "/answer"

	code, body, _ := post(t, c, answer, url.Values{"csrf": {csrf}, "answer": {""}})
	if code != http.StatusBadRequest || !strings.Contains(body, `href="#f-answer-`+infoLate+`"`) || !has(body, "Enter the agency's answer") {
		t.Fatalf("answer without text: %d", code)
	}
	code, _, h := post(t, c, answer, url.Values{"csrf": {csrf}, "answer": {"Attendance 82% this term (head teacher, by phone)"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=info_answered") {
		t.Fatalf("answer: %d %s", code, h.Get("Location"))
	}
	_, body, _ = get(t, c, e.srv.URL+h.Get("Location"))
	if !has(body, "The answer was recorded.") || !has(body, "Attendance 82% this term (head teacher, by phone)") {
		t.Error("the answer is not shown")
	}
	if strings.Contains(body, `id="answer-form-`+infoLate+`"`) || !strings.Contains(body, `id="answer-form-`+infoOpen+`"`) {
		t.Error("the answer form is not offered exactly for the request still awaiting one")
	}
	// Answered meanwhile: the service refuses and the page says so.
	code, body, _ = post(t, c, answer, url.Values{"csrf": {csrf}, "answer": {"again"}})
	if code != http.StatusConflict || !has(body, "The answer could not be recorded") || !has(body, "was answered at") {
		t.Fatalf("answer twice: %d", code)
	}
	// An auditor neither reads the case nor records anything.
	a := e.signIn(t, "auditor1")
	_, body, _ = get(t, a, e.srv.URL+"/console/notifications")
	if strings.Contains(body, "answer-form-") {
		t.Error("auditor is offered the answer form")
	}
	if code, _, _ := post(t, a, e.srv.URL+"/console/cases/"+caseOne+"/information-requests/"+infoOpen+"/answer",
		url.Values{"csrf": {csrfOf(t, body)}, "answer": {"x"}}); code != http.StatusForbidden {
		t.Errorf("auditor answer: %d", code)
	}
	if e.triage.answered != 1 {
		t.Fatalf("answers reaching triage: %d", e.triage.answered)
	}
}

func TestDisagreementsListPage(t *testing.T) {
	t.Parallel()
	e := caseEnv(t)
	c := e.signIn(t, "auditor1")
	code, body, _ := get(t, c, e.srv.URL+"/console/disagreements")
	if code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	checkPage(t, "disagreements", "en", body)
	if !strings.Contains(body, `href="/console/disagreements" aria-current="page"`) {
		t.Error("the list is not in the menu as the current page")
	}
	// Open first, the nearest deadline first; resolved last.
	iOverdue, iOpen, iDone := strings.Index(body, `data-disagreement="`+disagreeOverdue+`"`),
		strings.Index(body, `data-disagreement="`+disagreeOpen+`"`), strings.Index(body, `data-disagreement="`+disagreeDone+`"`)
	if iOverdue < 0 || iOpen < 0 || iDone < 0 || !(iOverdue < iOpen && iOpen < iDone) {
		t.Fatalf("order: overdue %d, open %d, resolved %d", iOverdue, iOpen, iDone)
	}
	row := body[iOverdue:]
	if row = row[:strings.Index(row, "</tr>")]; !strings.Contains(row, "Overdue") || !strings.Contains(row, `href="/console/cases/`+caseOne+`#disagreement-`+disagreeOverdue+`"`) {
		t.Errorf("overdue row: %s", row)
	}
	if row := body[iDone:]; !has(row[:strings.Index(row, "</tr>")], "Resolved ") {
		t.Error("the resolved one does not say so")
	}
	// An auditor reads only: no forms beyond the filter.
	if strings.Contains(body, `method="post" action="/console/cases`) {
		t.Error("the list offers changes")
	}

	_, body, _ = get(t, c, e.srv.URL+"/console/disagreements?open=on")
	if strings.Contains(body, disagreeDone) || !strings.Contains(body, disagreeOpen) || !strings.Contains(body, `id="f-open" name="open" checked`) {
		t.Error("open only: shows the resolved one, or lost the filter")
	}
	_, body, _ = get(t, c, e.srv.URL+"/console/disagreements?partnership=newport")
	if !strings.Contains(body, disagreeDone) || strings.Contains(body, disagreeOpen) {
		t.Error("partnership filter not applied")
	}
	_, body, _ = get(t, c, e.srv.URL+"/console/disagreements?partnership=nowhere")
	if !strings.Contains(body, `id="disagreements-empty"`) {
		t.Error("no empty message")
	}
	// The menu offers it to hub staff and auditors, not to administrators.
	for user, want := range map[string]bool{"practitioner1": true, "manager1": true, "auditor1": true, "admin1": false} {
		_, body, _ := get(t, e.signIn(t, user), e.srv.URL+"/console/notifications")
		if got := strings.Contains(body, `href="/console/disagreements"`); got != want {
			t.Errorf("%s menu has the disagreements: %v", user, got)
		}
	}
}

func TestDisagreementScreensInWelsh(t *testing.T) {
	t.Parallel()
	e := caseEnv(t)
	c := e.signIn(t, "manager1")
	setLang(t, e, c, "cy")
	_, body, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	checkPage(t, "case", "cy", body)
	for _, w := range []string{"Anghytundebau proffesiynol", "Y camau hyd yma", "Cam presennol: Rheolwr tîm.", "Cam presennol: Partneriaeth.",
		"Aeth y dyddiad cau heibio, felly fe'i huwchgyfeiriwyd yn awtomatig", "Uwchgyfeirio i'r cam nesaf", "Bydd yn mynd i: Uwch reolwr diogelu.",
		"Datrys yr anghytundeb", "Dyma'r cam olaf", "Cofnodi ateb a roddwyd mewn ffordd arall", "Ateb yr asiantaeth", ">Hwyr</strong>"} {
		if !has(body, w) {
			t.Errorf("Welsh case page lacks %q", w)
		}
	}
	for _, en := range []string{"Stages so far", "Escalate to the next stage", "Record an answer given another way", "Current stage:"} {
		if has(body, en) {
			t.Errorf("Welsh case page has English %q", en)
		}
	}
	code, body, _ := post(t, c, e.srv.URL+"/console/cases/"+caseOne+"/disagreements/"+disagreeOpen+"/escalate",
		url.Values{"csrf": {csrfOf(t, body)}, "version": {"2"}})
	if code != http.StatusBadRequest || !has(body, "Rhowch beth a benderfynodd y cam presennol") || !has(body, "Mae problem") {
		t.Errorf("Welsh error: %d", code)
	}
	_, body, _ = get(t, c, e.srv.URL+"/console/disagreements")
	checkPage(t, "disagreements", "cy", body)
	for _, w := range []string{"Anghytundebau agored yn unig", "Anghytundebau agored yn gyntaf", "Datryswyd ", "Ar agor", ">Anghytundebau</a>"} {
		if !has(body, w) {
			t.Errorf("Welsh list lacks %q", w)
		}
	}
}
