package triage_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage"
	"github.com/mash-hub/mash/services/triage/store"
)

// siblings publishes referrals sent together in one family group and decides those asked.
func (e *env) siblings(t testing.TB, group string, n int, decide func(i int) bool) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := uuid.NewString()
		r := referral{id: id, partnership: "rct", agency: "south-wales-police", concerns: []intakev1.ConcernCategory{intakev1.ConcernCategory_NEGLECT}, receivedAt: start}
		p := r.proto()
		p.Submission.FamilyGroup = group
		e.event(t, "mash.referral.received", "rct", id, 1, start, &eventsv1.ReferralReceived{Referral: p})
		if decide(i) {
			e.decided(t, decision(id, "rct", 1, rulesv1.DecisionStatus_CONFIRMED, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, start.Add(24*time.Hour), start.Add(72*time.Hour)))
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		e.waitCase(t, id, func(c store.Case) bool { return c.Received && (!decide(i) || c.State == store.StateDecided) })
	}
	return ids
}

// After the decision a practitioner names the lead professional for a child or for its
// whole family group: each case carries it (the case, the queue and the dashboard show it)
// and has its own event on the trail, which notify tells the agency from. Before the
// decision, without agency, team or person, or by a role that does not work cases, it is
// refused.
func TestLeadProfessionalNamedAfterTheDecision(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	group := e.siblings(t, "fam-"+uuid.NewString()[:8], 3, func(i int) bool { return i < 2 })
	first, second, undecided := group[0], group[1], group[2]
	alone := e.siblings(t, "", 1, func(int) bool { return true })[0]
	p := e.staff(t, auth.RolePractitioner)
	manager := e.staff(t, auth.RoleManager)
	auditor := e.staff(t, auth.RoleAuditor)

	_, err := e.client.NameLeadProfessional(p.ctx, &triagev1.NameLeadProfessionalRequest{ReferralId: first, Agency: "Not An Id"})
	if status.Code(err) != codes.InvalidArgument || strings.Join(fields(err), ",") != "agency,team,person" {
		t.Fatalf("naming without agency, team or person: %v %v", err, fields(err))
	}
	req := &triagev1.NameLeadProfessionalRequest{ReferralId: undecided, Agency: "rct-csc", Team: "Assessment team north", Person: "Rhys Demoford (social worker)"}
	if _, err := e.client.NameLeadProfessional(p.ctx, req); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("naming before the decision: %v", err)
	}
	req.ReferralId = first
	if _, err := e.client.NameLeadProfessional(auditor.ctx, req); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("an auditor naming: %v", err)
	}
	// For the whole family: every decided sibling, one event each.
	req.Scope = triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP
	resp, err := e.client.NameLeadProfessional(p.ctx, req)
	if err != nil || len(resp.GetCases()) != 2 || resp.GetCases()[0].GetReferralId() != first || resp.GetCases()[1].GetReferralId() != second {
		t.Fatalf("naming for the family group: %v %v", resp, err)
	}
	for _, c := range resp.GetCases() {
		l := c.GetLeadProfessional()
		if l.GetAgency() != "rct-csc" || l.GetTeam() != req.GetTeam() || l.GetPerson() != req.GetPerson() || l.GetNamedBy() != p.id ||
			l.GetNamedByRole() != "practitioner" || l.GetScope() != triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP || l.GetNamedAt() == nil {
			t.Fatalf("case %s: lead professional %v", c.GetReferralId(), l)
		}
	}
	if c, _ := e.row(t, undecided); c.Lead.NamedAt != nil {
		t.Fatalf("the undecided sibling got a lead professional: %+v", c.Lead)
	}
	msgs := e.streamEvents(t, triage.EventLeadProfessionalNamed, 2)
	trail := map[string]bool{}
	for _, m := range msgs {
		env, ev := decode(t, m.Data, &eventsv1.LeadProfessionalNamed{})
		if env.GetActor().GetId() != p.id || ev.GetLeadProfessional().GetAgency() != "rct-csc" || ev.GetGroupCases() != 2 || ev.GetFamilyGroup() == "" ||
			ev.GetReferralId() != env.GetReferralId() || ev.GetPrevious() != nil {
			t.Fatalf("lead professional event: %v %v", env, ev)
		}
		trail[env.GetReferralId()] = true
	}
	if !trail[first] || !trail[second] {
		t.Fatalf("events for %v, want one for each of %s and %s", trail, first, second)
	}

	// A child alone: the family group is refused, the child accepted, over HTTP.
	_, err = e.client.NameLeadProfessional(p.ctx, &triagev1.NameLeadProfessionalRequest{ReferralId: alone, Agency: "rct-early-help", Team: "Team", Person: "Person",
		Scope: triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP})
	if status.Code(err) != codes.InvalidArgument || field(err) != "scope" {
		t.Fatalf("a family group naming for a child sent alone: %v", err)
	}
	code, _, body := httpDo(t, "POST", e.httpURL+"/v1/cases/"+alone+"/lead-professional", manager.token,
		`{"agency": "rct-early-help", "team": "Family support east", "person": "Megan Sampleton (family support worker)"}`)
	named := fromJSON(t, code, body, &triagev1.NameLeadProfessionalResponse{})
	if len(named.GetCases()) != 1 || named.GetCases()[0].GetLeadProfessional().GetScope() != triagev1.LeadProfessionalScope_LEAD_FOR_CHILD {
		t.Fatalf("HTTP naming: %s", body)
	}
	// Named again: the event carries who led before.
	if _, err := e.client.NameLeadProfessional(p.ctx, &triagev1.NameLeadProfessionalRequest{ReferralId: alone, Agency: "rct-csc", Team: "Child protection team", Person: "Owen Testbury"}); err != nil {
		t.Fatal(err)
	}
	msgs = e.streamEvents(t, triage.EventLeadProfessionalNamed, 4)
	_, last := decode(t, msgs[3].Data, &eventsv1.LeadProfessionalNamed{})
	if last.GetPrevious().GetAgency() != "rct-early-help" || last.GetLeadProfessional().GetAgency() != "rct-csc" {
		t.Fatalf("renamed: %v", last)
	}

	// The case and the queue show it.
	got, err := e.client.GetCase(p.ctx, &triagev1.GetCaseRequest{ReferralId: second})
	if err != nil || got.GetCase().GetLeadProfessional().GetAgency() != "rct-csc" {
		t.Fatalf("case: %v %v", got.GetCase(), err)
	}
	q, err := e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{States: []triagev1.CaseState{triagev1.CaseState_DECIDED}})
	if err != nil {
		t.Fatal(err)
	}
	shown := 0
	for _, c := range q.GetCases() {
		if c.GetLeadProfessional() != nil {
			shown++
		}
	}
	if shown != 3 {
		t.Fatalf("%d cases in the queue show a lead professional, want 3: %v", shown, q.GetCases())
	}
	// And the dashboard counts them by lead agency (its range ends now: after receipt).
	e.clock.Advance(time.Hour)
	d, err := e.client.GetDashboard(manager.ctx, &triagev1.GetDashboardRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetLeadProfessionalsNamed() != 3 || len(d.GetLeadProfessionalAgencies()) != 1 || d.GetLeadProfessionalAgencies()[0].GetLabel() != "rct-csc" ||
		d.GetLeadProfessionalAgencies()[0].GetCount() != 3 || d.GetLeadProfessionalPercent() <= 0 {
		t.Fatalf("dashboard: named %d (%.1f%%), by agency %v", d.GetLeadProfessionalsNamed(), d.GetLeadProfessionalPercent(), d.GetLeadProfessionalAgencies())
	}
	if code, _, body := httpDo(t, "GET", e.httpURL+"/v1/dashboard", manager.token, ""); code != http.StatusOK || !strings.Contains(body, "leadProfessionalAgencies") {
		t.Fatalf("HTTP dashboard: %d %s", code, body)
	}
}

// A lead professional named for the whole family group reaches the siblings decided by
// then; a sibling decided later, by an event (the consumer) or in the console (DecideCase),
// joins it with its own event, so the agency is told of every child of the group.
func TestSiblingDecidedLaterJoinsTheGroupsLeadProfessional(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	group := e.siblings(t, "fam-"+uuid.NewString()[:8], 3, func(i int) bool { return i == 0 })
	first, byEvent, byConsole := group[0], group[1], group[2]
	p := e.staff(t, auth.RolePractitioner)
	resp, err := e.client.NameLeadProfessional(p.ctx, &triagev1.NameLeadProfessionalRequest{ReferralId: first, Agency: "rct-csc",
		Team: "Assessment team north", Person: "Rhys Demoford (social worker)", Scope: triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP})
	if err != nil || len(resp.GetCases()) != 1 {
		t.Fatalf("naming for the family group with one sibling decided: %v %v", resp, err)
	}

	e.decided(t, decision(byEvent, "rct", 1, rulesv1.DecisionStatus_CONFIRMED, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, start.Add(24*time.Hour), start.Add(72*time.Hour)))
	e.waitCase(t, byEvent, func(c store.Case) bool { return c.Lead.NamedAt != nil })
	if c, _ := e.row(t, byEvent); c.Lead.Agency != "rct-csc" || c.Lead.Scope != store.ScopeFamilyGroup || c.Lead.NamedBy != p.id {
		t.Fatalf("sibling decided by an event: lead %+v", c.Lead)
	}

	e.decided(t, decision(byConsole, "rct", 1, rulesv1.DecisionStatus_RECOMMENDED, rulesv1.Level_LEVEL_3B, rulesv1.Rag_RAG_AMBER, start.Add(24*time.Hour), start.Add(72*time.Hour)))
	e.waitCase(t, byConsole, func(c store.Case) bool { return c.DecisionVersion == 1 })
	if c, _ := e.row(t, byConsole); c.Lead.NamedAt != nil {
		t.Fatalf("an undecided sibling got the group's lead: %+v", c.Lead)
	}
	if _, err := e.client.ClaimCase(p.ctx, &triagev1.ClaimCaseRequest{ReferralId: byConsole}); err != nil {
		t.Fatal(err)
	}
	d, err := e.client.DecideCase(p.ctx, &triagev1.DecideCaseRequest{ReferralId: byConsole, Confirm: true})
	if err != nil || d.GetCase().GetLeadProfessional().GetAgency() != "rct-csc" ||
		d.GetCase().GetLeadProfessional().GetScope() != triagev1.LeadProfessionalScope_LEAD_FOR_FAMILY_GROUP {
		t.Fatalf("sibling decided in the console: %v %v", d.GetCase().GetLeadProfessional(), err)
	}

	msgs := e.streamEvents(t, triage.EventLeadProfessionalNamed, 3)
	told := map[string]bool{}
	for _, m := range msgs {
		env, ev := decode(t, m.Data, &eventsv1.LeadProfessionalNamed{})
		if ev.GetLeadProfessional().GetAgency() != "rct-csc" || ev.GetFamilyGroup() == "" || ev.GetReferralId() != env.GetReferralId() {
			t.Fatalf("lead professional event: %v %v", env, ev)
		}
		told[env.GetReferralId()] = true
	}
	if !told[first] || !told[byEvent] || !told[byConsole] {
		t.Fatalf("events for %v, want one for each sibling", told)
	}
}
