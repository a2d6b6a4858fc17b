package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A case decided with consent refused says what is held back and why; a manager is offered
// the form to authorise sharing without consent and must give the lawful basis and the
// reason; a practitioner is offered no form and is refused if they post one.
func TestManagerAuthorisesSharingWithoutConsent(t *testing.T) {
	t.Parallel()
	e := caseEnv(t)
	page := e.srv.URL + "/console/cases/" + sharingCase
	p := e.signIn(t, "practitioner1")
	_, body, _ := get(t, p, page)
	if !has(body, "Held back: nothing has been shared with") || !has(body, "Refused") {
		t.Fatal("the case does not say what is held back and why")
	}
	if strings.Contains(body, `id="sharing-form"`) {
		t.Fatal("a practitioner is offered the authorisation form")
	}
	authorise := page + "/sharing-authorisation"
	if code, _, _ := post(t, p, authorise, url.Values{"csrf": {csrfOf(t, body)}, "lawful-basis": {"x"}, "sharing-reason": {"y"}}); code != http.StatusForbidden {
		t.Fatalf("practitioner authorising: %d, want 403", code)
	}

	m := e.signIn(t, "manager1")
	_, body, _ = get(t, m, page)
	if !strings.Contains(body, `id="sharing-form"`) || !strings.Contains(body, `<label for="f-lawful-basis">`) {
		t.Fatal("a manager is not offered the authorisation form")
	}
	csrf := csrfOf(t, body)
	code, body, _ := post(t, m, authorise, url.Values{"csrf": {csrf}})
	if code != http.StatusBadRequest || !has(body, "Enter the lawful basis for sharing without consent") || !has(body, "Enter why sharing without consent is necessary") {
		t.Fatalf("authorising without basis or reason: %d", code)
	}
	const basis = "UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 18"
	code, _, h := post(t, m, authorise, url.Values{"csrf": {csrf}, "lawful-basis": {basis}, "sharing-reason": {"Neglect escalating; school must know."}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=sharing_authorised") {
		t.Fatalf("authorise: %d %s", code, h.Get("Location"))
	}
	_, body, _ = get(t, m, e.srv.URL+h.Get("Location"))
	if !has(body, "Sharing without consent was authorised") || !has(body, basis) || strings.Contains(body, "Held back:") ||
		!strings.Contains(body, `id="revoke-form"`) {
		t.Fatal("the authorisation is not shown, or the case still says it is held back")
	}
	code, _, h = post(t, m, page+"/sharing-authorisation/revoke", url.Values{"csrf": {csrfOf(t, body)}, "revoke-reason": {"Family engaging."}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=sharing_revoked") {
		t.Fatalf("revoke: %d %s", code, h.Get("Location"))
	}
}
