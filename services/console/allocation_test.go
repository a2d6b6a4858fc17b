package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A manager ticks cases on the queue and gives them to one practitioner: the queue shows
// how many moved and why any did not; a refusal of the assignee lands by the field.
// Practitioners get no such control.
func TestQueueBulkReassignment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.signIn(t, "practitioner1")
	if _, body, _ := get(t, p, e.srv.URL+"/console/queue"); strings.Contains(body, `id="reassign-form"`) {
		t.Fatal("a practitioner is offered bulk reassignment")
	}
	m := e.signIn(t, "manager1")
	_, body, _ := get(t, m, e.srv.URL+"/console/queue")
	if !strings.Contains(body, `id="reassign-form"`) || !strings.Contains(body, `form="reassign-form"`) {
		t.Fatal("no bulk reassignment control on the manager's queue")
	}
	csrf := csrfOf(t, body)
	code, body, _ := post(t, m, e.srv.URL+"/console/queue/reassign", url.Values{"csrf": {csrf}, "assignee": {"gwen.jones"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="e-case"`) {
		t.Fatalf("reassigning nothing: %d", code)
	}
	code, body, _ = post(t, m, e.srv.URL+"/console/queue/reassign", url.Values{"csrf": {csrf}, "case": {amberCaseID}, "assignee": {"nobody"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="e-reassign-to"`) || !strings.Contains(body, "not a member of staff") {
		t.Fatalf("reassigning to someone unknown: %d", code)
	}
	missing := "0192a3b4-0000-7000-8000-0000000000ff"
	code, body, _ = post(t, m, e.srv.URL+"/console/queue/reassign", url.Values{"csrf": {csrf}, "case": {amberCaseID, missing}, "assignee": {"gwen.jones"}})
	if code != http.StatusOK || !strings.Contains(body, "1 cases reassigned.") || !strings.Contains(body, `data-referral="`+missing+`"`) {
		t.Fatalf("reassignment: %d %s", code, body)
	}
	if a := e.triage.cases[amberCaseID].GetAssignee(); a != "user:gwen.jones" {
		t.Fatalf("assignee %q", a)
	}
}

// On a decided case, a practitioner names the lead professional with the form on the case
// page; the case then shows it, and the queue lists it. Missing fields are caught by the
// form, and the service's refusal lands by its field.
func TestLeadProfessionalForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	id := amberCaseID
	_, body, _ := get(t, c, e.srv.URL+"/console/cases/"+id)
	csrf := csrfOf(t, body)
	if strings.Contains(body, `id="lead-form"`) || !strings.Contains(body, `id="lead-none"`) {
		t.Fatal("the lead professional form is offered before the decision")
	}
	if code, _, _ := post(t, c, e.srv.URL+"/console/cases/"+id+"/claim", url.Values{"csrf": {csrf}, "version": {"1"}}); code != http.StatusSeeOther {
		t.Fatalf("claim: %d", code)
	}
	if code, _, _ := post(t, c, e.srv.URL+"/console/cases/"+id+"/decide", url.Values{"csrf": {csrf}, "version": {"2"}, "action": {"confirm"}}); code != http.StatusSeeOther {
		t.Fatalf("decide: %d", code)
	}
	_, body, _ = get(t, c, e.srv.URL+"/console/cases/"+id)
	if !strings.Contains(body, `id="lead-form"`) {
		t.Fatal("no lead professional form on the decided case")
	}
	code, body, _ := post(t, c, e.srv.URL+"/console/cases/"+id+"/lead-professional", url.Values{"csrf": {csrf}, "version": {"3"}, "lead_agency": {"rct-csc"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="e-lead-team"`) || !strings.Contains(body, `id="e-lead-person"`) || !strings.Contains(body, `value="rct-csc"`) {
		t.Fatalf("naming without team or person: %d", code)
	}
	code, body, _ = post(t, c, e.srv.URL+"/console/cases/"+id+"/lead-professional", url.Values{"csrf": {csrf}, "version": {"3"},
		"lead_agency": {"nowhere"}, "lead_team": {"Team"}, "lead_person": {"Person"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="e-lead-agency"`) || !strings.Contains(body, "not in the agency directory") {
		t.Fatalf("an agency the directory does not list: %d", code)
	}
	code, _, h := post(t, c, e.srv.URL+"/console/cases/"+id+"/lead-professional", url.Values{"csrf": {csrf}, "version": {"3"},
		"lead_agency": {"rct-csc"}, "lead_team": {"Assessment team north"}, "lead_person": {"Rhys Demoford (social worker)"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=lead_named") {
		t.Fatalf("naming: %d", code)
	}
	_, body, _ = get(t, c, e.srv.URL+"/console/cases/"+id+"?done=lead_named")
	if !strings.Contains(body, `<dd id="lead-team">Assessment team north</dd>`) || !strings.Contains(body, "The lead professional was named") {
		t.Fatal("the case does not show its lead professional")
	}
	_, body, _ = get(t, c, e.srv.URL+"/console/queue?state=DECIDED")
	if !strings.Contains(body, "rct-csc · Assessment team north · Rhys Demoford (social worker)") {
		t.Fatal("the queue does not show the lead professional")
	}
}
