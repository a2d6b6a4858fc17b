package console

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// The case page shows the whole referral in the fixed order a practitioner reads it, with
// the MASH reference in the heading and human labels for every id, in both languages.
func TestCasePageShowsTheWholeReferralInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	_, body, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	checkPage(t, "/console/cases/"+caseOne, "en", body)

	sections := []string{"case-references", "case-child", "case-concerns", "case-risk", "case-household", "case-consent",
		"case-referrer", "case-narrative", "case-history", "case-notices", "case-access"}
	last := -1
	for _, id := range sections {
		i := strings.Index(body, `id="`+id+`"`)
		if i < 0 {
			t.Fatalf("case page has no section %s", id)
		}
		if i < last {
			t.Errorf("section %s is out of order", id)
		}
		last = i
	}
	if !regexp.MustCompile(`<h1>Referral <span class="ref" id="case-reference">MASH-2026-0000001</span></h1>`).MatchString(body) {
		t.Error("the heading does not carry the MASH reference")
	}
	if !strings.Contains(body, `class="print-ref"`) || !strings.Contains(body, "Referral MASH-2026-0000001") {
		t.Error("no running reference for the print view")
	}
	for _, want := range []string{
		"SWP-01",                              // external reference
		"12 May 2019 (age 7)",                 // date of birth and age on receipt
		"943 476 5919",                        // NHS number
		"1 Heol y Test, Pontypridd, CF37 1AA", // address
		"Ysgol y Ddraig", ">Welsh<",           // school, language
		"Police attended a domestic incident", // concern summary
		"The family home",                     // where
		"Domestic abuse risk (DASH): high",    // risk facts
		"Police-attended incidents at the address in the last 12 months: 3",
		"Mother&#39;s partner", "Gareth Nottest", // household with relationships
		"Not sought", "Seeking consent would put the child at risk", // consent with reason
		"PC Rhys Evans", "&#43;441443000000", // html/template writes + as &#43;
		"rhys.evans@police.example", `id="referrer-confidential"`,
		"Neighbours called 999 at 02:10",                                                      // narrative
		"Strategy meeting prep",                                                               // access trail with the reason given
		"Strategy discussion",                                                                 // pathway label
		"Child and adolescent mental health services",                                         // agency role label
		"Thu 26 Nov 2026, 10:00",                                                              // en-GB date, Europe/London (GMT in November)
		`id="case-quality"`, "Disagree", "the school&#39;s earlier concerns were not weighed", // quality-assurance review
		"Read the school&#39;s chronology first",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("case page lacks %q", want)
		}
	}
	// Each concern's disclosure and injury, the history row's level, urgency, outcome and
	// date (August: British Summer Time, an hour ahead of UTC), and what each agency
	// acknowledged.
	for what, re := range map[string]string{
		"disclosure":            `Child disclosed harm</dt><dd>Yes<`,
		"injury":                `Child injured</dt><dd>No<`,
		"history row":           `<th scope="row">Wed 26 Aug 2026, 13:00</th>.*Neglect.*<td>Level 2 – Universal Plus</td><td>Green</td><td>Advice and signposting</td>`,
		"acknowledged notice":   `<td>Thu 26 Nov 2026, 11:30</td></tr>`,
		"unacknowledged notice": `<td>Not yet</td></tr>`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("case page lacks the %s (%s)", what, re)
		}
	}
	for _, raw := range []string{">strategy_discussion<", ">RAG_RED<", "childrens_social_care<", ">MOTHER<", "role camhs"} {
		if strings.Contains(body, raw) {
			t.Errorf("case page shows the raw id %q", raw)
		}
	}

	setLang(t, e, c, "cy")
	_, cy, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	for _, want := range []string{"Trafodaeth strategaeth", "Partner y fam", "Risg cam-drin domestig (DASH): uchel", "Iau 26 Tach 2026, 10:00",
		"12 Mai 2019", "Gwasanaethau iechyd meddwl plant a phobl ifanc", "Cymraeg",
		"Adolygiadau sicrhau ansawdd", "Anghytuno"} {
		if !strings.Contains(cy, want) {
			t.Errorf("Welsh case page lacks %q", want)
		}
	}
}

// The queue names each case by its MASH reference, not the internal id.
func TestQueueShowsTheMASHReference(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	_, body, _ := get(t, c, e.srv.URL+"/console/queue")
	if !strings.Contains(body, `class="case-link">MASH-2026-0000001</a>`) {
		t.Errorf("queue does not show the MASH reference: %s", body)
	}
}

// A practitioner records a telephone contact about two siblings, one without a date of
// birth: one referral per child reaches intake as the practitioner, in one family group,
// and sending the same form again records nothing twice.
func TestPhoneContactForSiblings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	code, page, _ := get(t, c, e.srv.URL+"/console/contacts/new")
	if code != http.StatusOK || !strings.Contains(page, `id="contact-form"`) {
		t.Fatalf("contact form: %d", code)
	}
	checkPage(t, "/console/contacts/new", "en", page)
	contactID := regexp.MustCompile(`name="contact_id" value="([^"]+)"`).FindStringSubmatch(page)[1]
	form := url.Values{"csrf": {csrfOf(t, page)}, "contact_id": {contactID}, "children": {"1"}, "add_child": {"1"},
		"partnership": {"cardiff"}, "child-1-given_name": {"Osian"}}
	code, page, _ = post(t, c, e.srv.URL+"/console/contacts", form)
	if code != http.StatusOK || !strings.Contains(page, `id="child-2"`) || !strings.Contains(page, `value="Osian"`) {
		t.Fatalf("adding a child: %d, second child shown %v, first kept %v", code, strings.Contains(page, `id="child-2"`), strings.Contains(page, `value="Osian"`))
	}
	form = url.Values{"csrf": {csrfOf(t, page)}, "contact_id": {contactID}, "children": {"2"}, "partnership": {"cardiff"},
		"referrer-name": {"Mrs Jones"}, "referrer-role": {"Neighbour"}, "referrer-phone": {"07700 900123"}, "referrer-keep_identity": {"on"},
		"child-1-given_name": {"Osian"}, "child-1-family_name": {"Test"}, "child-1-age": {"unknown"}, "child-1-sex": {"MALE"},
		"child-2-given_name": {"Nia"}, "child-2-family_name": {"Test"}, "child-2-age": {"estimated"}, "child-2-estimated_age": {"3"},
		"child-2-sex":   {"FEMALE"},
		"address-line1": {"2 Stryd y Test"}, "address-postcode": {"cf37 1ab"},
		"concern-category": {"NEGLECT"}, "concern-summary": {"Two small children left alone overnight."}, "concern-observed_at": {"2026-11-26T02:00"},
		"concern-location": {"Their flat"}, "risk-immediate_danger": {"on"},
		"household-1-relationship": {"MOTHER"}, "household-1-given_name": {"Carys"}, "household-1-family_name": {"Test"},
		"consent-status": {"NOT_SOUGHT"}, "consent-reason": {"Caller is a neighbour"}, "narrative": {"The caller heard crying."}}
	code, page, _ = post(t, c, e.srv.URL+"/console/contacts", form)
	if code != http.StatusOK || !strings.Contains(page, `id="contact-recorded"`) {
		t.Fatalf("record contact: %d %s", code, page)
	}
	if len(e.intake.submitted) != 2 {
		t.Fatalf("intake got %d referrals, want one per child", len(e.intake.submitted))
	}
	for i, sub := range e.intake.submitted {
		want := "CONTACT-" + contactID
		if sub.GetFamilyGroup() != want || sub.GetExternalReference() != want+"-"+string(rune('1'+i)) {
			t.Errorf("child %d: family group %q, external reference %q", i+1, sub.GetFamilyGroup(), sub.GetExternalReference())
		}
		if sub.GetReferrer().GetPhone() != "07700 900123" || !sub.GetReferrer().GetKeepIdentityFromFamily() ||
			sub.GetChild().GetAddress().GetPostcode() != "CF37 1AB" || !sub.GetRiskIndicators().GetImmediateDanger() ||
			sub.GetConcerns()[0].GetLocation() != "Their flat" || len(sub.GetHousehold()) != 1 ||
			sub.GetHousehold()[0].GetRelationship() != intakev1.Relationship_MOTHER {
			t.Errorf("child %d: submission %v", i+1, sub)
		}
		if at := sub.GetConcerns()[0].GetObservedAt().AsTime(); !at.Equal(time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)) {
			t.Errorf("observed at %v, want 02:00 London time", at)
		}
	}
	if ch := e.intake.submitted[0].GetChild(); !ch.GetAgeUnknown() || ch.GetDateOfBirth() != "" {
		t.Errorf("first child: age unknown %v, date of birth %q", ch.GetAgeUnknown(), ch.GetDateOfBirth())
	}
	if ch := e.intake.submitted[1].GetChild(); ch.GetEstimatedAgeYears() != 3 || ch.EstimatedAgeYears == nil {
		t.Errorf("second child: estimated age %v", ch.EstimatedAgeYears)
	}
	for _, want := range []string{"MASH-2026-0000101", "MASH-2026-0000102", "Osian Test", "Nia Test"} {
		if !strings.Contains(page, want) {
			t.Errorf("confirmation lacks %q", want)
		}
	}
	for _, caller := range e.intake.callers {
		if !strings.HasPrefix(caller, "Bearer ") {
			t.Errorf("intake was not called as the practitioner: %q", caller)
		}
	}
	// The same form sent again (a double click, a retry) records nothing new.
	form.Set("csrf", csrfOf(t, page))
	if code, page, _ = post(t, c, e.srv.URL+"/console/contacts", form); code != http.StatusOK || len(e.intake.submitted) != 2 ||
		!strings.Contains(page, "already recorded") {
		t.Errorf("resent contact: %d, intake holds %d", code, len(e.intake.submitted))
	}
}

// Intake's refusal shows each fault beside the form's own field, for the child it is
// about, and the form keeps what was typed.
func TestPhoneContactErrorsBesideTheirFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	_, page, _ := get(t, c, e.srv.URL+"/console/contacts/new")
	form := url.Values{"csrf": {csrfOf(t, page)}, "children": {"1"}, "partnership": {"cardiff"}, "referrer-name": {"Mr Evans"},
		"child-1-family_name": {"Test"}, "child-1-age": {"estimated"}, "child-1-estimated_age": {"about six"},
		"concern-observed_at": {"yesterday"}, "consent-status": {"REFUSED"}}
	code, page, _ := post(t, c, e.srv.URL+"/console/contacts", form)
	if code != http.StatusBadRequest {
		t.Fatalf("console's own checks: %d", code)
	}
	for _, f := range []string{"child-1-estimated_age", "concern-observed_at"} {
		if !strings.Contains(page, `id="e-`+f+`"`) || !strings.Contains(page, `href="#f-`+f+`"`) {
			t.Errorf("no error beside %s", f)
		}
	}
	if len(e.intake.submitted) != 0 {
		t.Fatal("a form the console refused reached intake")
	}
	form.Set("csrf", csrfOf(t, page))
	form.Set("child-1-estimated_age", "6")
	form.Set("concern-observed_at", "")
	code, page, _ = post(t, c, e.srv.URL+"/console/contacts", form)
	if code != http.StatusBadRequest {
		t.Fatalf("intake's refusal: %d", code)
	}
	for _, f := range []string{"child-1-given_name", "child-1-sex", "referrer-phone", "consent-reason"} {
		if !strings.Contains(page, `id="e-`+f+`"`) || !regexp.MustCompile(`id="f-`+f+`"[^>]*aria-invalid="true"`).MatchString(page) {
			t.Errorf("no error beside %s", f)
		}
	}
	if !strings.Contains(page, `value="Mr Evans"`) {
		t.Error("the form lost what was typed")
	}
}

// Only those who may submit referrals (practitioners) see and use the contact form.
func TestPhoneContactNeedsAPractitioner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, who := range []string{"manager1", "auditor1"} {
		c := e.signIn(t, who)
		if code, _, _ := get(t, c, e.srv.URL+"/console/contacts/new"); code != http.StatusForbidden {
			t.Errorf("%s opens the contact form: %d", who, code)
		}
	}
	_, q, _ := get(t, e.signIn(t, "practitioner1"), e.srv.URL+"/console/queue")
	if !strings.Contains(q, `href="/console/contacts/new"`) {
		t.Error("a practitioner's menu has no contact form")
	}
}

func TestContactFieldNames(t *testing.T) {
	for path, want := range map[string]string{
		"child.givenName":                            "child-2-given_name",
		"child.dateOfBirth":                          "child-2-dob",
		"child.estimatedAgeYears":                    "child-2-estimated_age",
		"child.ageUnknown":                           "child-2-estimated_age",
		"child.nhsNumber":                            "child-2-nhs_number",
		"child.preferredLanguage":                    "child-2-language",
		"child.address.postcode":                     "address-postcode",
		"referrer.phone":                             "referrer-phone",
		"concerns[0].summary":                        "concern-summary",
		"concerns[0].observedAt":                     "concern-observed_at",
		"concerns[1].category":                       "concern-2-category",
		"concerns[2]":                                "concern-3-summary",
		"household[1].relationship":                  "household-2-relationship",
		"household[0].dateOfBirth":                   "household-1-dob",
		"riskIndicators.policeIncidentsLast12Months": "risk-police_incidents",
		"consent.reason":                             "consent-reason",
		"narrative":                                  "narrative",
		"partnership":                                "partnership",
	} {
		if got := contactField(path, 2); got != want {
			t.Errorf("contactField(%q) = %q, want %q", path, got, want)
		}
	}
}

// The case page shows the rules' reasons in the page's language: Welsh on a Welsh page, from
// the pack's Welsh, and English on an English page. A pack in English only shows its English
// on a Welsh page, marked as English (lang="en" and a note), never passed off as Welsh.
func TestCasePageShowsRuleReasonsInThePagesLanguage(t *testing.T) {
	t.Parallel()
	const (
		reasonEN = "DASH grade high and a child of 7 lives at the address"
		reasonCY = "Gradd DASH uchel ac mae plentyn 7 oed yn byw yn y cyfeiriad"
		ruleCY   = "Cam-drin domestig risg uchel gyda phlentyn yn y cartref"
	)
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	_, en, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	if !regexp.MustCompile(`id="primary-reason"><strong>Reason:</strong> `+reasonEN+`</p>`).MatchString(en) || strings.Contains(en, reasonCY) {
		t.Error("the English case page does not give the rule reason in English alone")
	}

	setLang(t, e, c, "cy")
	_, cy, _ := get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	checkPage(t, "/console/cases/"+caseOne, "cy", cy)
	if !regexp.MustCompile(`id="primary-reason"><strong>Rheswm:</strong> ` + reasonCY + `</p>`).MatchString(cy) {
		t.Error("the Welsh case page does not give the primary reason in Welsh")
	}
	fired := cy[strings.Index(cy, `id="fired-rules"`):]
	if !strings.Contains(fired, "<td>"+reasonCY+"</td>") || !strings.Contains(fired, ruleCY) || strings.Contains(cy, reasonEN) {
		t.Error("the Welsh case page does not give each fired rule's description and reason in Welsh")
	}

	e.triage.mu.Lock()
	e.triage.englishPack = true
	e.triage.mu.Unlock()
	_, cy, _ = get(t, c, e.srv.URL+"/console/cases/"+caseOne)
	if !strings.Contains(cy, `<span lang="en">`+reasonEN+`</span> <span class="meta">(yn Saesneg yn unig`) {
		t.Error("a Welsh page does not mark an English-only pack's reason as English")
	}
}

// A caller may report several concerns: rows are added and removed without a script,
// keeping what was typed, every concern reaches intake, and intake's refusal of one
// concern shows beside that concern's own field.
func TestPhoneContactWithSeveralConcerns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	_, page, _ := get(t, c, e.srv.URL+"/console/contacts/new")
	if strings.Contains(page, `id="f-concern-2-summary"`) || !strings.Contains(page, `id="add-concern"`) {
		t.Fatal("a new form should offer one concern and a button for another")
	}
	contactID := regexp.MustCompile(`name="contact_id" value="([^"]+)"`).FindStringSubmatch(page)[1]
	form := url.Values{"csrf": {csrfOf(t, page)}, "contact_id": {contactID}, "children": {"1"}, "concerns": {"1"}, "add_concern": {"1"},
		"partnership": {"cardiff"}, "concern-category": {"NEGLECT"}, "concern-summary": {"Left alone overnight."}}
	code, page, _ := post(t, c, e.srv.URL+"/console/contacts", form)
	if code != http.StatusOK || !strings.Contains(page, `id="f-concern-2-summary"`) || !strings.Contains(page, "Left alone overnight.") {
		t.Fatalf("adding a concern: %d, second row %v", code, strings.Contains(page, `id="f-concern-2-summary"`))
	}
	// Three rows; the second is removed and the third moves up into its place.
	form = url.Values{"csrf": {csrfOf(t, page)}, "contact_id": {contactID}, "children": {"1"}, "concerns": {"3"}, "remove_concern": {"2"},
		"partnership": {"cardiff"}, "concern-summary": {"First"}, "concern-2-summary": {"Second"}, "concern-3-summary": {"Third"},
		"concern-3-category": {"EMOTIONAL_ABUSE"}}
	code, page, _ = post(t, c, e.srv.URL+"/console/contacts", form)
	if code != http.StatusOK || strings.Contains(page, "Second") || !strings.Contains(page, `id="f-concern-2-summary"`) ||
		strings.Contains(page, `id="f-concern-3-summary"`) || !regexp.MustCompile(`name="concern-2-summary"[^>]*>Third<`).MatchString(page) {
		t.Fatalf("removing the second of three concerns: %d", code)
	}
	base := url.Values{"contact_id": {contactID}, "children": {"1"}, "concerns": {"2"}, "partnership": {"cardiff"},
		"referrer-name": {"Mrs Jones"}, "referrer-phone": {"07700 900123"},
		"child-1-given_name": {"Osian"}, "child-1-family_name": {"Test"}, "child-1-age": {"unknown"}, "child-1-sex": {"MALE"},
		"concern-category": {"NEGLECT"}, "concern-summary": {"Left alone overnight."}, "concern-observed_at": {"2026-11-26T02:00"},
		"concern-2-summary": {"Mother's partner shouts at the children."}, "concern-2-observed_at": {"not a time"},
		"consent-status": {"NOT_SOUGHT"}, "consent-reason": {"Caller is a neighbour"}, "narrative": {"The caller heard crying."}}
	// The console's own check (a time it cannot read) is beside the second concern's field.
	form = clone(base)
	form.Set("csrf", csrfOf(t, page))
	code, page, _ = post(t, c, e.srv.URL+"/console/contacts", form)
	if code != http.StatusBadRequest || !strings.Contains(page, `id="e-concern-2-observed_at"`) || strings.Contains(page, `id="e-concern-observed_at"`) {
		t.Fatalf("unreadable time of the second concern: %d", code)
	}
	// Intake's refusal (no category for the second concern) is beside that field, and the
	// first concern's fields carry no error.
	form = clone(base)
	form.Set("csrf", csrfOf(t, page))
	form.Set("concern-2-observed_at", "2026-11-25T18:30")
	code, page, _ = post(t, c, e.srv.URL+"/console/contacts", form)
	if code != http.StatusBadRequest || !strings.Contains(page, `id="e-concern-2-category"`) ||
		!regexp.MustCompile(`id="f-concern-2-category"[^>]*aria-invalid="true"`).MatchString(page) || strings.Contains(page, `id="e-concern-category"`) {
		t.Fatalf("intake's refusal of the second concern: %d", code)
	}
	if !strings.Contains(page, "Mother&#39;s partner shouts at the children.") {
		t.Error("the form lost the second concern's summary")
	}
	form = clone(base)
	form.Set("csrf", csrfOf(t, page))
	form.Set("concern-2-observed_at", "2026-11-25T18:30")
	form.Set("concern-2-category", "EMOTIONAL_ABUSE")
	if code, page, _ = post(t, c, e.srv.URL+"/console/contacts", form); code != http.StatusOK || !strings.Contains(page, `id="contact-recorded"`) {
		t.Fatalf("record contact with two concerns: %d", code)
	}
	sub := e.intake.submitted[len(e.intake.submitted)-1]
	if cs := sub.GetConcerns(); len(cs) != 2 || cs[0].GetCategory() != intakev1.ConcernCategory_NEGLECT ||
		cs[1].GetCategory() != intakev1.ConcernCategory_EMOTIONAL_ABUSE || cs[1].GetSummary() != "Mother's partner shouts at the children." ||
		!cs[1].GetObservedAt().AsTime().Equal(time.Date(2026, 11, 25, 18, 30, 0, 0, time.UTC)) {
		t.Errorf("concerns sent: %v", cs)
	}
}

func clone(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
