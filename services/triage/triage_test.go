package triage_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage"
	"github.com/mash-hub/mash/services/triage/store"
)

func ids(cases []*triagev1.Case) []string {
	out := make([]string, len(cases))
	for i, c := range cases {
		out[i] = c.GetReferralId()
	}
	return out
}

func sameOrder(t *testing.T, what string, got []*triagev1.Case, want ...string) {
	t.Helper()
	g := ids(got)
	if strings.Join(g, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: got %v, want %v", what, g, want)
	}
}

// field is the first field err's BadRequest names, or "".
func field(err error) string {
	if fs := fields(err); len(fs) > 0 {
		return fs[0]
	}
	return ""
}

// fields are the fields err's BadRequest names, in its order.
func fields(err error) []string {
	var fs []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fs = append(fs, v.GetField())
			}
		}
	}
	return fs
}

// queueFixture publishes cases in a known order of urgency and returns their ids by name.
func queueFixture(t *testing.T, e *env) map[string]string {
	t.Helper()
	n := map[string]string{}
	for _, name := range []string{"red", "red2", "amberEarly", "amberLate", "green", "awaitingRules", "decided", "closedLater"} {
		n[name] = uuid.NewString()
	}
	type spec struct {
		name, partnership, agency string
		concern                   intakev1.ConcernCategory
		rag                       rulesv1.Rag
		level                     rulesv1.Level
		decisionDue, ragDue       time.Duration
		status                    rulesv1.DecisionStatus
	}
	specs := []spec{
		// Red, already past its RAG due time: overdue.
		{"red", "rct", "south-wales-police", intakev1.ConcernCategory_DOMESTIC_ABUSE, rulesv1.Rag_RAG_RED, rulesv1.Level_LEVEL_4, 20 * time.Hour, -time.Hour, rulesv1.DecisionStatus_RECOMMENDED},
		{"red2", "cardiff", "cardiff-health", intakev1.ConcernCategory_NEGLECT, rulesv1.Rag_RAG_RED, rulesv1.Level_LEVEL_4, 20 * time.Hour, 3 * time.Hour, rulesv1.DecisionStatus_RECOMMENDED},
		// Two Ambers with the same RAG due time: the earlier decision due time first.
		{"amberLate", "rct", "south-wales-police", intakev1.ConcernCategory_NEGLECT, rulesv1.Rag_RAG_AMBER, rulesv1.Level_LEVEL_3A, 24 * time.Hour, 20 * time.Hour, rulesv1.DecisionStatus_RECOMMENDED},
		{"amberEarly", "rct", "rct-school", intakev1.ConcernCategory_NEGLECT, rulesv1.Rag_RAG_AMBER, rulesv1.Level_LEVEL_3B, 10 * time.Hour, 20 * time.Hour, rulesv1.DecisionStatus_RECOMMENDED},
		{"green", "rct", "rct-school", intakev1.ConcernCategory_SCHOOL_ATTENDANCE, rulesv1.Rag_RAG_GREEN, rulesv1.Level_LEVEL_2, 24 * time.Hour, 72 * time.Hour, rulesv1.DecisionStatus_RECOMMENDED},
		{"decided", "rct", "rct-school", intakev1.ConcernCategory_NEGLECT, rulesv1.Rag_RAG_RED, rulesv1.Level_LEVEL_4, 24 * time.Hour, 2 * time.Hour, rulesv1.DecisionStatus_CONFIRMED},
	}
	for _, s := range specs {
		e.received(t, referral{id: n[s.name], partnership: s.partnership, agency: s.agency, concerns: []intakev1.ConcernCategory{s.concern}, receivedAt: start})
		e.decided(t, decision(n[s.name], s.partnership, 1, s.status, s.level, s.rag, start.Add(s.decisionDue), start.Add(s.ragDue)))
	}
	// Received, not yet decided by the rules: no RAG due time, so after every rated case.
	e.received(t, referral{id: n["awaitingRules"], partnership: "rct", agency: "south-wales-police",
		concerns: []intakev1.ConcernCategory{intakev1.ConcernCategory_BEHAVIOUR}, receivedAt: start})
	for _, s := range specs {
		e.waitCase(t, n[s.name], func(c store.Case) bool { return c.Received && c.DecisionVersion == 1 })
	}
	e.waitCase(t, n["awaitingRules"], func(c store.Case) bool { return c.Received })
	delete(n, "closedLater")
	return n
}

func TestQueueOrderFiltersAndCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	n := queueFixture(t, e)
	p := e.staff(t, auth.RolePractitioner)

	resp, err := e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Red before Amber before Green by due time; Amber ties by decision due; unrated last.
	sameOrder(t, "default queue", resp.GetCases(), n["red"], n["red2"], n["amberEarly"], n["amberLate"], n["green"], n["awaitingRules"])
	counts := map[triagev1.CaseState]*triagev1.QueueCount{}
	for _, c := range resp.GetCounts() {
		counts[c.GetState()] = c
	}
	if counts[triagev1.CaseState_AWAITING_RULES].GetCount() != 1 || counts[triagev1.CaseState_AWAITING_DECISION].GetCount() != 5 ||
		counts[triagev1.CaseState_DECIDED].GetCount() != 1 || counts[triagev1.CaseState_AWAITING_DECISION].GetOverdue() != 1 {
		t.Fatalf("counts: %v", resp.GetCounts())
	}
	first := resp.GetCases()[0]
	if !first.GetOverdue() || first.GetChildName() != "Test Child" || first.GetChildAgeYears() != 10 || first.GetState() != triagev1.CaseState_AWAITING_DECISION ||
		first.GetRag() != rulesv1.Rag_RAG_RED || first.GetDecisionVersion() != 1 || first.GetConcerns()[0] != "DOMESTIC_ABUSE" {
		t.Fatalf("first case: %v", first)
	}

	for _, tc := range []struct {
		name string
		req  *triagev1.ListQueueRequest
		want []string
	}{
		{"partnership", &triagev1.ListQueueRequest{Partnership: "cardiff"}, []string{n["red2"]}},
		{"rag", &triagev1.ListQueueRequest{Rags: []rulesv1.Rag{rulesv1.Rag_RAG_AMBER, rulesv1.Rag_RAG_GREEN}}, []string{n["amberEarly"], n["amberLate"], n["green"]}},
		{"level", &triagev1.ListQueueRequest{Levels: []rulesv1.Level{rulesv1.Level_LEVEL_3B}}, []string{n["amberEarly"]}},
		{"concern", &triagev1.ListQueueRequest{Concern: "NEGLECT"}, []string{n["red2"], n["amberEarly"], n["amberLate"]}},
		{"concern in lower case", &triagev1.ListQueueRequest{Concern: "neglect"}, []string{n["red2"], n["amberEarly"], n["amberLate"]}},
		{"source agency", &triagev1.ListQueueRequest{SourceAgency: "rct-school"}, []string{n["amberEarly"], n["green"]}},
		{"overdue", &triagev1.ListQueueRequest{OverdueOnly: true}, []string{n["red"]}},
		{"state", &triagev1.ListQueueRequest{States: []triagev1.CaseState{triagev1.CaseState_DECIDED}}, []string{n["decided"]}},
		{"rules pending", &triagev1.ListQueueRequest{States: []triagev1.CaseState{triagev1.CaseState_AWAITING_RULES}}, []string{n["awaitingRules"]}},
	} {
		resp, err := e.client.ListQueue(p.ctx, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		sameOrder(t, tc.name, resp.GetCases(), tc.want...)
	}
	// Counts follow the filters but not the states asked for.
	resp, err = e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{Partnership: "rct", States: []triagev1.CaseState{triagev1.CaseState_DECIDED}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.GetCounts() {
		want := map[triagev1.CaseState]int64{triagev1.CaseState_AWAITING_RULES: 1, triagev1.CaseState_AWAITING_DECISION: 4, triagev1.CaseState_DECIDED: 1}[c.GetState()]
		if c.GetCount() != want {
			t.Fatalf("rct counts: %v", resp.GetCounts())
		}
	}

	// Assignee filters: mine, and nobody's.
	if _, err := e.client.ClaimCase(p.ctx, &triagev1.ClaimCaseRequest{ReferralId: n["green"]}); err != nil {
		t.Fatal(err)
	}
	resp, err = e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{Assignee: "me"})
	if err != nil {
		t.Fatal(err)
	}
	sameOrder(t, "mine", resp.GetCases(), n["green"])
	if resp.GetCases()[0].GetAssignee() != p.id {
		t.Fatalf("assignee %q, want %q", resp.GetCases()[0].GetAssignee(), p.id)
	}
	resp, err = e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{Assignee: "none", Partnership: "rct"})
	if err != nil {
		t.Fatal(err)
	}
	sameOrder(t, "unassigned", resp.GetCases(), n["red"], n["amberEarly"], n["amberLate"], n["awaitingRules"])

	// Keyset pages walk the same order without repeats.
	var paged []*triagev1.Case
	token := ""
	for i := 0; i < 10; i++ {
		resp, err := e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, resp.GetCases()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	sameOrder(t, "paged", paged, n["red"], n["red2"], n["amberEarly"], n["amberLate"], n["green"], n["awaitingRules"])
	if _, err := e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{PageToken: "garbage!"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad token: %v", err)
	}
	// A filter that could match nothing is refused, naming each bad field, not answered with
	// an empty queue.
	_, err = e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{Concern: "NEGLECTED", Rags: []rulesv1.Rag{rulesv1.Rag_RAG_RED, 42},
		Levels: []rulesv1.Level{rulesv1.Level_LEVEL_UNSPECIFIED}})
	if status.Code(err) != codes.InvalidArgument || !slices.Equal(fields(err), []string{"concern", "rags[1]", "levels[0]"}) {
		t.Fatalf("unknown filter values: %v, fields %v", err, fields(err))
	}

	// Over HTTP, with enum names in the query.
	code, _, body := httpDo(t, "GET", e.httpURL+"/v1/queue?rag=RED&partnership=rct", p.token, "")
	if code != 200 || !strings.Contains(body, n["red"]) || strings.Contains(body, n["red2"]) || strings.Contains(body, n["green"]) {
		t.Fatalf("HTTP queue: %d %s", code, body)
	}
	// Lists of enums under a singular name, comma-separated, in any case and without their
	// prefix; a parameter the queue does not take is refused by name with every bad value.
	code, _, body = httpDo(t, "GET", e.httpURL+"/v1/queue?rag=red,RAG_AMBER&state=awaiting_decision&partnership=rct", p.token, "")
	if code != 200 || !strings.Contains(body, n["red"]) || strings.Contains(body, n["green"]) {
		t.Fatalf("HTTP queue by rags: %d %s", code, body)
	}
	code, _, body = httpDo(t, "GET", e.httpURL+"/v1/queue?rag=purple&sttae=DECIDED", p.token, "")
	if code != 400 || !strings.Contains(body, `"rag"`) || !strings.Contains(body, `"sttae"`) || !strings.Contains(body, "is not a parameter of this call") {
		t.Fatalf("HTTP queue with a bad value and a misspelt name: %d %s", code, body)
	}
	// Referrers and auditors do not work the queue.
	ref := e.caller(t, auth.RoleReferrer, "south-wales-police")
	if _, err := e.client.ListQueue(ref.ctx, &triagev1.ListQueueRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("referrer reading the queue: %v", err)
	}
	e.checkCounters(t)
}

func TestClaimsConflictsAndLapse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id, other := uuid.NewString(), uuid.NewString()
	for _, r := range []string{id, other} {
		e.received(t, referral{id: r, partnership: "rct", agency: "south-wales-police", concerns: []intakev1.ConcernCategory{intakev1.ConcernCategory_NEGLECT}, receivedAt: start})
		e.waitCase(t, r, func(c store.Case) bool { return c.Received })
	}
	alice, bob := e.staff(t, auth.RolePractitioner), e.staff(t, auth.RolePractitioner)
	manager := e.staff(t, auth.RoleManager)

	claimed, err := e.client.ClaimCase(alice.ctx, &triagev1.ClaimCaseRequest{ReferralId: id, ExpectedVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := claimed.GetCase()
	if c.GetAssignee() != alice.id || !c.GetClaimExpiresAt().AsTime().Equal(start.Add(triage.DefaultClaimTimeout)) || c.GetVersion() != 2 {
		t.Fatalf("claim: %v", c)
	}
	// Bob is refused, and told who holds it and until when.
	_, err = e.client.ClaimCase(bob.ctx, &triagev1.ClaimCaseRequest{ReferralId: id})
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(msg, alice.id) || !strings.Contains(msg, "2026-11-26T10:30:00Z") {
		t.Fatalf("second claim: %v", err)
	}
	code, _, body := httpDo(t, "POST", e.httpURL+"/v1/cases/"+id+"/claim", bob.token, "{}")
	if code != 409 || !strings.Contains(body, "FAILED_PRECONDITION") || !strings.Contains(body, alice.id) {
		t.Fatalf("HTTP second claim: %d %s", code, body)
	}
	// A stale version is refused with both versions named.
	_, err = e.client.ClaimCase(alice.ctx, &triagev1.ClaimCaseRequest{ReferralId: id, ExpectedVersion: 1})
	if status.Code(err) != codes.Aborted || !strings.Contains(status.Convert(err).Message(), "version 1, now 2") {
		t.Fatalf("stale claim: %v", err)
	}
	code, _, body = httpDo(t, "POST", e.httpURL+"/v1/cases/"+id+"/claim", alice.token, `{"expectedVersion": 1}`)
	if code != 409 || !strings.Contains(body, "ABORTED") {
		t.Fatalf("HTTP stale claim: %d %s", code, body)
	}
	// Alice renews her own claim.
	e.clock.Advance(10 * time.Minute)
	renewed, err := e.client.ClaimCase(alice.ctx, &triagev1.ClaimCaseRequest{ReferralId: id, ExpectedVersion: 2})
	if err != nil || !renewed.GetCase().GetClaimExpiresAt().AsTime().Equal(start.Add(40*time.Minute)) {
		t.Fatalf("renew: %v %v", renewed, err)
	}
	// Bob may not release Alice's claim; a manager may.
	if _, err := e.client.ReleaseCase(bob.ctx, &triagev1.ReleaseCaseRequest{ReferralId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("bob releasing alice's claim: %v", err)
	}
	released, err := e.client.ReleaseCase(manager.ctx, &triagev1.ReleaseCaseRequest{ReferralId: id})
	if err != nil || released.GetCase().GetAssignee() != "" {
		t.Fatalf("manager release: %v %v", released, err)
	}
	// Only managers assign.
	if _, err := e.client.AssignCase(alice.ctx, &triagev1.AssignCaseRequest{ReferralId: id, Assignee: alice.id}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("practitioner assigning: %v", err)
	}
	assigned, err := e.client.AssignCase(manager.ctx, &triagev1.AssignCaseRequest{ReferralId: id, Assignee: bob.id})
	if err != nil || assigned.GetCase().GetAssignee() != bob.id {
		t.Fatalf("assign: %v %v", assigned, err)
	}
	// The audit trail learns in what role each change was made.
	_, asg := decode(t, e.streamEvents(t, triage.EventAssigned, 1)[0].Data, &eventsv1.CaseChanged{})
	if asg.GetActor() != manager.id || asg.GetActorRole() != string(auth.RoleManager) {
		t.Fatalf("assigned event: actor %q in role %q", asg.GetActor(), asg.GetActorRole())
	}

	// A stale claim is free to others at once, and the sweep releases it with an event; the
	// manager's assignment to Bob does not lapse.
	if _, err := e.client.ClaimCase(alice.ctx, &triagev1.ClaimCaseRequest{ReferralId: other}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(triage.DefaultClaimTimeout + time.Minute)
	q, err := e.client.ListQueue(bob.ctx, &triagev1.ListQueueRequest{Assignee: "none"})
	if err != nil || len(q.GetCases()) != 1 || q.GetCases()[0].GetReferralId() != other || q.GetCases()[0].GetAssignee() != "" {
		t.Fatalf("lapsed claims in the queue: %v %v", q, err)
	}
	res, err := e.svc.Sweep(context.Background())
	if err != nil || res.ClaimsReleased != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	if c, _ := e.row(t, id); c.Assignee != bob.id {
		t.Fatalf("the manager's assignment lapsed: %+v", c)
	}
	if res, _ := e.svc.Sweep(context.Background()); res.ClaimsReleased != 0 {
		t.Fatalf("second sweep released %d", res.ClaimsReleased)
	}
	if c, _ := e.row(t, other); c.Assignee != "" {
		t.Fatalf("lapsed claim kept: %+v", c)
	}
	msgs := e.streamEvents(t, triage.EventReleased, 2)
	_, ev := decode(t, msgs[len(msgs)-1].Data, &eventsv1.CaseChanged{})
	if ev.GetActor() != "triage" || ev.GetActorRole() != "system" || !strings.Contains(ev.GetReason(), "lapsed") {
		t.Fatalf("released event: %v", ev)
	}
	e.streamEvents(t, triage.EventClaimed, 3)
	e.streamEvents(t, triage.EventAssigned, 1)
	if _, err := e.client.ClaimCase(bob.ctx, &triagev1.ClaimCaseRequest{ReferralId: other}); err != nil {
		t.Fatalf("claiming a released case: %v", err)
	}
}

func TestDecideIsTheOneDoor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{runRules: true})
	p := e.staff(t, auth.RolePractitioner)
	auditor := e.staff(t, auth.RoleAuditor)
	id := uuid.NewString()
	e.receivedSubmission(t, id, "south-wales-police", start, example(t))
	c := e.waitCase(t, id, func(c store.Case) bool { return c.Received && c.State == store.StateAwaitingDecision })
	if c.Level != int16(rulesv1.Level_LEVEL_4) || c.RAG != int16(rulesv1.Rag_RAG_RED) || c.ChildID == "" || c.RAGDue == nil {
		t.Fatalf("projected recommendation: %+v", c)
	}

	// Closing before a decision is refused.
	if _, err := e.client.CloseCase(p.ctx, &triagev1.CloseCaseRequest{ReferralId: id, Outcome: triagev1.CaseOutcome_NO_FURTHER_ACTION}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("closing an undecided case: %v", err)
	}
	// Deciding without the claim is refused.
	_, err := e.client.DecideCase(p.ctx, &triagev1.DecideCaseRequest{ReferralId: id, Confirm: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "claim") {
		t.Fatalf("deciding unclaimed: %v", err)
	}
	claim, err := e.client.ClaimCase(p.ctx, &triagev1.ClaimCaseRequest{ReferralId: id})
	if err != nil {
		t.Fatal(err)
	}
	// A colleague without the claim is refused, told who holds it.
	colleague := e.staff(t, auth.RoleManager)
	_, err = e.client.DecideCase(colleague.ctx, &triagev1.DecideCaseRequest{ReferralId: id, Confirm: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "claimed by "+p.id) {
		t.Fatalf("deciding a colleague's claimed case: %v", err)
	}
	// An override needs a reason.
	_, err = e.client.DecideCase(p.ctx, &triagev1.DecideCaseRequest{ReferralId: id, Level: rulesv1.Level_LEVEL_3B})
	if status.Code(err) != codes.InvalidArgument || field(err) != "reason" {
		t.Fatalf("override without a reason: %v (field %q)", err, field(err))
	}
	// An auditor may not decide.
	if _, err := e.client.DecideCase(auditor.ctx, &triagev1.DecideCaseRequest{ReferralId: id, Confirm: true}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("auditor deciding: %v", err)
	}
	// A stale case version is refused.
	if _, err := e.client.DecideCase(p.ctx, &triagev1.DecideCaseRequest{ReferralId: id, Confirm: true, ExpectedVersion: 1}); status.Code(err) != codes.Aborted {
		t.Fatalf("stale decide: %v", err)
	}
	// An agency role the recommending pack does not know is refused, naming the field.
	_, err = e.client.DecideCase(p.ctx, &triagev1.DecideCaseRequest{ReferralId: id, Agencies: []string{"not_an_agency"}, Reason: "x"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(field(err), "agencies") {
		t.Fatalf("override with an unknown agency: %v", err)
	}
	resp, err := e.client.DecideCase(p.ctx, &triagev1.DecideCaseRequest{ReferralId: id, ExpectedVersion: claim.GetCase().GetVersion(),
		Level: rulesv1.Level_LEVEL_3B, Rag: rulesv1.Rag_RAG_AMBER, Reason: "Police confirm the suspect left the area; intensive family support fits."})
	if err != nil {
		t.Fatal(err)
	}
	dc := resp.GetCase()
	if dc.GetState() != triagev1.CaseState_DECIDED || dc.GetLevel() != rulesv1.Level_LEVEL_3B || dc.GetRag() != rulesv1.Rag_RAG_AMBER ||
		dc.GetDecisionStatus() != rulesv1.DecisionStatus_OVERRIDDEN || dc.GetDecisionVersion() != 2 || dc.GetDecidedAt() == nil ||
		!strings.Contains(dc.GetDecidedBy(), p.id) || resp.GetDecision().GetStatus() != rulesv1.DecisionStatus_OVERRIDDEN {
		t.Fatalf("decided case: %v", resp)
	}
	msgs := e.streamEvents(t, triage.EventDecided, 1)
	_, ev := decode(t, msgs[0].Data, &eventsv1.CaseChanged{})
	if ev.GetCase().GetLevel() != rulesv1.Level_LEVEL_3B || ev.GetActor() != p.id || ev.GetActorRole() != string(auth.RolePractitioner) || ev.GetReason() == "" {
		t.Fatalf("decided event: %v", ev)
	}
	// The decision itself goes out once, from triage, with who decided, in what role and
	// agency, and what applied before; projecting it back changes nothing.
	_, made := decode(t, e.streamEvents(t, triage.EventDecisionMade, 1)[0].Data, &eventsv1.DecisionMade{})
	if made.GetDecision().GetReviewedByRole() != string(auth.RolePractitioner) || made.GetDecision().GetStatus() != rulesv1.DecisionStatus_OVERRIDDEN ||
		made.GetPrevious().GetLevel() != rulesv1.Level_LEVEL_4 || made.GetDecidedByAgency() != "rct-mash" || made.GetDecision().GetVersion() != 2 {
		t.Fatalf("decision made: %v", made)
	}
	// Rules records what triage decided; it decides nothing itself.
	eventually(t, "rules to record the decision", func() bool {
		var status string
		var version int64
		err := e.pool.QueryRow(context.Background(), `SELECT status, version FROM rules.decisions WHERE referral_id = $1`, id).Scan(&status, &version)
		return err == nil && status == "OVERRIDDEN" && version == 2
	})
	e.drained(t)
	if after, _ := e.row(t, id); after.Version != dc.GetVersion() || after.DecisionVersion != 2 {
		t.Fatalf("projection of our own decision changed the case: version %d (was %d)", after.Version, dc.GetVersion())
	}

	// The case view: decision from rules, notices, and an access trace.
	got, err := e.client.GetCase(p.ctx, &triagev1.GetCaseRequest{ReferralId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetDecision().GetCurrent().GetLevel() != rulesv1.Level_LEVEL_3B || len(got.GetDecision().GetRecommended().GetFired()) == 0 {
		t.Fatalf("case view decision: %v", got.GetDecision())
	}
	var accessed int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM triage.outbox WHERE subject = 'mash.access.case'`).Scan(&accessed); err != nil || accessed != 1 {
		t.Fatalf("access traces: %d %v", accessed, err)
	}

	// Strategy discussion, then closure; a second closure is refused.
	if _, err := e.client.RecordStrategyDiscussion(p.ctx, &triagev1.RecordStrategyDiscussionRequest{ReferralId: id}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("empty strategy discussion: %v", err)
	}
	sd, err := e.client.RecordStrategyDiscussion(p.ctx, &triagev1.RecordStrategyDiscussionRequest{ReferralId: id, HeldAt: timestamppb.New(start),
		Participants: []string{"A Social Worker (rct-mash, social worker)", "B Officer (south-wales-police, PPU)"}, Outcome: "Section 47 not needed.", Section_47: false})
	if err != nil || sd.GetDiscussion().GetId() == "" {
		t.Fatalf("strategy: %v %v", sd, err)
	}
	if _, err := e.client.CloseCase(p.ctx, &triagev1.CloseCaseRequest{ReferralId: id}); status.Code(err) != codes.InvalidArgument || field(err) != "outcome" {
		t.Fatalf("closing without an outcome: %v", err)
	}
	closed, err := e.client.CloseCase(p.ctx, &triagev1.CloseCaseRequest{ReferralId: id, Outcome: triagev1.CaseOutcome_INTENSIVE_SUPPORT, Note: "IFST referral made."})
	if err != nil || closed.GetCase().GetState() != triagev1.CaseState_CLOSED || closed.GetCase().GetOutcome() != triagev1.CaseOutcome_INTENSIVE_SUPPORT ||
		closed.GetCase().GetAssignee() != "" {
		t.Fatalf("close: %v %v", closed, err)
	}
	if _, err := e.client.CloseCase(p.ctx, &triagev1.CloseCaseRequest{ReferralId: id, Outcome: triagev1.CaseOutcome_NO_FURTHER_ACTION}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("closing twice: %v", err)
	}
	e.streamEvents(t, triage.EventClosed, 1)
	// Closed cases are listed on request, counted from the counters (partnership only) or
	// by a scan (any other filter); both agree.
	for _, req := range []*triagev1.ListQueueRequest{
		{States: []triagev1.CaseState{triagev1.CaseState_CLOSED}},
		{States: []triagev1.CaseState{triagev1.CaseState_CLOSED}, SourceAgency: "south-wales-police"},
	} {
		q, err := e.client.ListQueue(p.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		sameOrder(t, "closed", q.GetCases(), id)
		last := q.GetCounts()[len(q.GetCounts())-1]
		if last.GetState() != triagev1.CaseState_CLOSED || last.GetCount() != 1 {
			t.Fatalf("closed counts: %v", q.GetCounts())
		}
	}
	e.streamEvents(t, triage.EventStrategyRecorded, 1)

	// A confirmation through HTTP on a second referral about the same child: its history
	// shows the first.
	second := uuid.NewString()
	e.receivedSubmission(t, second, "south-wales-police", start.Add(time.Hour), example(t))
	e.waitCase(t, second, func(c store.Case) bool { return c.Received && c.State == store.StateAwaitingDecision })
	code, _, body := httpDo(t, "POST", e.httpURL+"/v1/cases/"+second+"/claim", p.token, "{}")
	if code != 200 {
		t.Fatalf("HTTP claim: %d %s", code, body)
	}
	code, _, body = httpDo(t, "POST", e.httpURL+"/v1/cases/"+second+"/decide", p.token, `{"confirm": true, "reason": "Agreed."}`)
	decided := fromJSON(t, code, body, &triagev1.DecideCaseResponse{})
	if decided.GetCase().GetDecisionStatus() != rulesv1.DecisionStatus_CONFIRMED || decided.GetCase().GetState() != triagev1.CaseState_DECIDED {
		t.Fatalf("HTTP confirm: %s", body)
	}
	code, _, body = httpDo(t, "GET", e.httpURL+"/v1/cases/"+second, p.token, "")
	view := fromJSON(t, code, body, &triagev1.GetCaseResponse{})
	if len(view.GetHistory()) != 1 || view.GetHistory()[0].GetReferralId() != id || view.GetHistory()[0].GetOutcome() != triagev1.CaseOutcome_INTENSIVE_SUPPORT {
		t.Fatalf("HTTP case with history: %s", body)
	}
	e.checkCounters(t)
}

func TestProjectionIsIdempotentAndOrderFree(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id := uuid.NewString()
	due := start.Add(24 * time.Hour)
	// The confirmation (v2) arrives first, then the recommendation (v1), then the receipt.
	confirmed := decision(id, "rct", 2, rulesv1.DecisionStatus_CONFIRMED, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER, due, start.Add(20*time.Hour))
	confirmed.Recommended.Level = rulesv1.Level_LEVEL_2
	cid, craw := e.decided(t, confirmed)
	e.waitCase(t, id, func(c store.Case) bool { return c.DecisionVersion == 2 })
	e.decided(t, decision(id, "rct", 1, rulesv1.DecisionStatus_RECOMMENDED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN, due, start.Add(72*time.Hour)))
	rid, rraw := e.event(t, "mash.referral.received", "rct", id, 1, start, &eventsv1.ReferralReceived{Referral: referral{id: id, partnership: "rct",
		agency: "south-wales-police", concerns: []intakev1.ConcernCategory{intakev1.ConcernCategory_NEGLECT}, receivedAt: start}.proto()})
	c := e.waitCase(t, id, func(c store.Case) bool { return c.Received })
	// Redeliveries (as a replay or the reconciler would send them) and an unknown subject.
	e.publish(t, cid+".again", triage.EventDecisionMade, craw)
	e.publish(t, rid+".again", "mash.referral.received", rraw)
	e.event(t, "mash.recommendation.something_new", "rct", id, 9, start, &eventsv1.ReferralReceived{})
	e.drained(t)

	after, _ := e.row(t, id)
	if after.Version != c.Version || after.State != store.StateDecided || after.DecisionVersion != 2 || after.Level != int16(rulesv1.Level_LEVEL_3A) ||
		after.RecommendedLevel != int16(rulesv1.Level_LEVEL_2) || after.SourceAgency != "south-wales-police" || after.DecidedAt == nil {
		t.Fatalf("after out-of-order and repeated events: %+v (version before %d)", after, c.Version)
	}
	e.checkCounters(t)
	var dead int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM triage.dead_letter`).Scan(&dead); err != nil || dead != 0 {
		t.Fatalf("dead letters: %d %v", dead, err)
	}

	// Notifications: acknowledged before delivered still ends ACKNOWLEDGED with every time.
	nid := uuid.NewString()
	ackDue := start.Add(time.Hour)
	for i, subject := range []string{"mash.notification.sent", "mash.notification.acknowledged", "mash.notification.delivered"} {
		at := start.Add(time.Duration([]int{0, 30, 5}[i]) * time.Minute)
		e.event(t, subject, "rct", id, 0, at, &eventsv1.NotificationEvent{NotificationId: nid, Agency: "rct-school-dsl", Role: "school_dsl", Kind: "ENCOMPASS",
			AckDue: timestamppb.New(ackDue)})
	}
	// The consumer handles events concurrently, so the three may commit in any order: wait
	// for all of them, not for the one that happens to be last in the stream.
	e.drained(t)
	p := e.staff(t, auth.RolePractitioner)
	got, err := e.client.GetCase(p.ctx, &triagev1.GetCaseRequest{ReferralId: id})
	if err != nil {
		t.Fatal(err)
	}
	n := got.GetNotices()
	if len(n) != 1 || n[0].GetState() != "ACKNOWLEDGED" || !n[0].GetAcknowledgedAt().AsTime().Equal(start.Add(30*time.Minute)) ||
		!n[0].GetDeliveredAt().AsTime().Equal(start.Add(5*time.Minute)) || !n[0].GetAckDue().AsTime().Equal(ackDue) || n[0].GetKind() != "ENCOMPASS" || n[0].GetRole() != "school_dsl" {
		t.Fatalf("notices: %v", n)
	}
}

func TestInformationRequestsByAgency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id := uuid.NewString()
	e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.waitCase(t, id, func(c store.Case) bool { return c.Received })
	p := e.staff(t, auth.RolePractitioner)
	police := e.caller(t, auth.RoleReferrer, "gwent-police")
	health := e.caller(t, auth.RoleReferrer, "cardiff-health")

	if _, err := e.client.RequestInformation(p.ctx, &triagev1.RequestInformationRequest{ReferralId: id, Agency: "Gwent Police!", Question: "?"}); status.Code(err) != codes.InvalidArgument || field(err) != "agency" {
		t.Fatalf("bad agency: %v", err)
	}
	toPolice, err := e.client.RequestInformation(p.ctx, &triagev1.RequestInformationRequest{ReferralId: id, Agency: "gwent-police", Question: "Any call-outs to the address?"})
	if err != nil {
		t.Fatal(err)
	}
	// Thursday 10:00: due at the close of Friday (17:00 GMT).
	if got := toPolice.GetRequest().GetDue().AsTime(); !got.Equal(time.Date(2026, 11, 27, 17, 0, 0, 0, time.UTC)) {
		t.Fatalf("default due %s", got)
	}
	toHealth, err := e.client.RequestInformation(p.ctx, &triagev1.RequestInformationRequest{ReferralId: id, Agency: "cardiff-health", Question: "Health visitor contact?",
		Due: timestamppb.New(start.Add(2 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	// Each agency sees only what was asked of it; hub staff see both.
	list, err := e.client.ListInformationRequests(police.ctx, &triagev1.ListInformationRequestsRequest{})
	if err != nil || len(list.GetRequests()) != 1 || list.GetRequests()[0].GetId() != toPolice.GetRequest().GetId() {
		t.Fatalf("police list: %v %v", list, err)
	}
	if list, _ := e.client.ListInformationRequests(police.ctx, &triagev1.ListInformationRequestsRequest{Agency: "cardiff-health"}); len(list.GetRequests()) != 0 {
		t.Fatalf("police reading health's requests: %v", list)
	}
	all, err := e.client.ListInformationRequests(p.ctx, &triagev1.ListInformationRequestsRequest{ReferralId: id})
	if err != nil || len(all.GetRequests()) != 2 || all.GetRequests()[0].GetAgency() != "cardiff-health" {
		t.Fatalf("hub list (nearest due first): %v %v", all, err)
	}
	// Another agency's request does not exist for the police.
	if _, err := e.client.AnswerInformationRequest(police.ctx, &triagev1.AnswerInformationRequestRequest{RequestId: toHealth.GetRequest().GetId(), Answer: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("police answering health's request: %v", err)
	}
	answered, err := e.client.AnswerInformationRequest(police.ctx, &triagev1.AnswerInformationRequestRequest{RequestId: toPolice.GetRequest().GetId(), Answer: "Two call-outs in October."})
	if err != nil || answered.GetRequest().GetState() != triagev1.InformationRequestState_ANSWERED || !strings.Contains(answered.GetRequest().GetAnsweredBy(), police.id) {
		t.Fatalf("answer: %v %v", answered, err)
	}
	if _, err := e.client.AnswerInformationRequest(police.ctx, &triagev1.AnswerInformationRequestRequest{RequestId: toPolice.GetRequest().GetId(), Answer: "again"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("answering twice: %v", err)
	}
	// Past its due time, health's open request is overdue.
	e.clock.Advance(3 * time.Hour)
	open, err := e.client.ListInformationRequests(health.ctx, &triagev1.ListInformationRequestsRequest{OpenOnly: true})
	if err != nil || len(open.GetRequests()) != 1 || !open.GetRequests()[0].GetOverdue() {
		t.Fatalf("health's overdue request: %v %v", open, err)
	}
	// Over HTTP the agency answers by id.
	code, _, body := httpDo(t, "GET", e.httpURL+"/v1/information-requests?open_only=true", health.token, "")
	if code != 200 || !strings.Contains(body, toHealth.GetRequest().GetId()) || strings.Contains(body, toPolice.GetRequest().GetId()) {
		t.Fatalf("HTTP list: %d %s", code, body)
	}
	code, _, body = httpDo(t, "POST", e.httpURL+"/v1/information-requests/"+toHealth.GetRequest().GetId()+"/answer", health.token, `{"answer": "Seen at 8 weeks."}`)
	if a := fromJSON(t, code, body, &triagev1.AnswerInformationRequestResponse{}); a.GetRequest().GetState() != triagev1.InformationRequestState_ANSWERED {
		t.Fatalf("HTTP answer: %s", body)
	}
	e.streamEvents(t, triage.EventResearchRequested, 2)
	e.streamEvents(t, triage.EventResearchAnswered, 2)
}

// An agency answers on its own channel: notify names the agency from the channel, and
// triage records the answer once, only for the agency that was asked.
func TestInformationRequestAnsweredOnTheAgencysChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id := uuid.NewString()
	e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.waitCase(t, id, func(c store.Case) bool { return c.Received })
	p := e.staff(t, auth.RolePractitioner)
	asked, err := e.client.RequestInformation(p.ctx, &triagev1.RequestInformationRequest{ReferralId: id, Agency: "gwent-police", Question: "Any call-outs?"})
	if err != nil {
		t.Fatal(err)
	}
	reqID := asked.GetRequest().GetId()
	answer := func(agency, text string) []byte {
		_, raw := e.event(t, triage.EventResearchAnswerReceived, "", "", 0, start, &eventsv1.InformationAnswerReceived{
			RequestId: reqID, Agency: agency, Answer: text, Channel: "nats"})
		return raw
	}
	// Another agency's reply, an empty one and one about no request change nothing.
	answer("cardiff-health", "Not ours to answer.")
	answer("gwent-police", "  ")
	e.event(t, triage.EventResearchAnswerReceived, "", "", 0, start, &eventsv1.InformationAnswerReceived{
		RequestId: uuid.NewString(), Agency: "gwent-police", Answer: "Lost.", Channel: "nats"})
	e.drained(t)
	list, err := e.client.ListInformationRequests(p.ctx, &triagev1.ListInformationRequestsRequest{ReferralId: id})
	if err != nil || list.GetRequests()[0].GetState() != triagev1.InformationRequestState_REQUESTED {
		t.Fatalf("after replies from the wrong agency: %v %v", list, err)
	}
	// The asked agency's reply is recorded, and a second one (or a redelivery) is not.
	raw := answer("gwent-police", "Two call-outs in October.")
	e.publish(t, "redelivered-answer", triage.EventResearchAnswerReceived, raw)
	e.drained(t)
	check := func(when string) {
		t.Helper()
		list, err := e.client.ListInformationRequests(p.ctx, &triagev1.ListInformationRequestsRequest{ReferralId: id})
		if err != nil {
			t.Fatal(err)
		}
		got := list.GetRequests()[0]
		if got.GetState() != triagev1.InformationRequestState_ANSWERED || got.GetAnswer() != "Two call-outs in October." ||
			got.GetAnsweredBy() != "agency:gwent-police (nats)" {
			t.Fatalf("%s: %v", when, got)
		}
	}
	check("after the agency's reply")
	// The consumer handles events concurrently, so the later reply goes only once the first
	// is recorded: what is tested is that an answered request keeps its answer.
	answer("gwent-police", "A later change of mind.")
	e.drained(t)
	check("after a second reply")
	e.streamEvents(t, triage.EventResearchAnswered, 1)
}

func TestDisagreementEscalatesThroughEveryStage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id, undecided := uuid.NewString(), uuid.NewString()
	e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.received(t, referral{id: undecided, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.decided(t, decision(id, "rct", 2, rulesv1.DecisionStatus_CONFIRMED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN, start.Add(24*time.Hour), start.Add(72*time.Hour)))
	e.waitCase(t, id, func(c store.Case) bool { return c.Received && c.State == store.StateDecided })
	e.waitCase(t, undecided, func(c store.Case) bool { return c.Received })

	police := e.caller(t, auth.RoleReferrer, "south-wales-police")
	stranger := e.caller(t, auth.RoleReferrer, "dyfed-powys-police")
	manager := e.staff(t, auth.RoleManager)
	p := e.staff(t, auth.RolePractitioner)

	if _, err := e.client.RaiseDisagreement(stranger.ctx, &triagev1.RaiseDisagreementRequest{ReferralId: id, Reason: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("another agency's referral: %v", err)
	}
	if _, err := e.client.RaiseDisagreement(police.ctx, &triagev1.RaiseDisagreementRequest{ReferralId: undecided, Reason: "x"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("disagreeing before a decision: %v", err)
	}
	raised, err := e.client.RaiseDisagreement(police.ctx, &triagev1.RaiseDisagreementRequest{ReferralId: id, Reason: "Third incident this year; level 2 is too low."})
	if err != nil {
		t.Fatal(err)
	}
	d := raised.GetDisagreement()
	wantDue := e.cal.AddWorkingDays(start, 2).UTC()
	if d.GetStage() != triagev1.DisagreementStage_PRACTITIONER || !d.GetStageDue().AsTime().Equal(wantDue) || d.GetRaisedByAgency() != "south-wales-police" {
		t.Fatalf("raised: %v (want due %s)", d, wantDue)
	}
	// Work on the case goes on meanwhile.
	if _, err := e.client.ClaimCase(p.ctx, &triagev1.ClaimCaseRequest{ReferralId: id}); err != nil {
		t.Fatalf("claiming a case under disagreement: %v", err)
	}

	// Stage 1 lapses: the sweep escalates with "deadline passed".
	e.clock.Set(wantDue.Add(time.Minute))
	if res, err := e.svc.Sweep(context.Background()); err != nil || res.DisagreementsEscalated != 1 {
		t.Fatalf("sweep 1: %+v %v", res, err)
	}
	d = e.disagreement(t, manager, id)
	stageStart := wantDue.Add(time.Minute)
	if d.GetStage() != triagev1.DisagreementStage_TEAM_MANAGER || !d.GetStageDue().AsTime().Equal(e.cal.AddWorkingDays(stageStart, 2).UTC()) ||
		d.GetSteps()[0].GetOutcome() != "deadline passed" || d.GetSteps()[0].GetActor() != "triage" || len(d.GetSteps()) != 2 ||
		!d.GetSteps()[0].GetEscalatedByDeadline() {
		t.Fatalf("after sweep 1: %v", d)
	}
	// Stage 2 is escalated by a person, with the version they saw.
	if _, err := e.client.EscalateDisagreement(police.ctx, &triagev1.EscalateDisagreementRequest{DisagreementId: d.GetId(), ExpectedVersion: 1, Outcome: "x"}); status.Code(err) != codes.Aborted {
		t.Fatalf("stale escalation: %v", err)
	}
	if _, err := e.client.EscalateDisagreement(stranger.ctx, &triagev1.EscalateDisagreementRequest{DisagreementId: d.GetId(), Outcome: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("another agency escalating: %v", err)
	}
	e.clock.Advance(time.Hour)
	esc, err := e.client.EscalateDisagreement(police.ctx, &triagev1.EscalateDisagreementRequest{DisagreementId: d.GetId(), ExpectedVersion: d.GetVersion(),
		Outcome: "Team manager upheld level 2; police still disagree."})
	if err != nil {
		t.Fatal(err)
	}
	d = esc.GetDisagreement()
	seniorDue := e.cal.AddWorkingDays(e.clock.Now(), 5).UTC()
	if d.GetStage() != triagev1.DisagreementStage_SENIOR_SAFEGUARDING_MANAGER || !d.GetStageDue().AsTime().Equal(seniorDue) ||
		d.GetSteps()[1].GetEscalatedByDeadline() {
		t.Fatalf("after manual escalation: %v (want due %s, escalated by a person)", d, seniorDue)
	}
	// Not yet due: the sweep leaves it.
	e.clock.Set(seniorDue.Add(-time.Minute))
	if res, _ := e.svc.Sweep(context.Background()); res.DisagreementsEscalated != 0 {
		t.Fatalf("escalated early")
	}
	e.clock.Set(seniorDue.Add(time.Minute))
	if res, err := e.svc.Sweep(context.Background()); err != nil || res.DisagreementsEscalated != 1 {
		t.Fatalf("sweep 3: %+v %v", res, err)
	}
	d = e.disagreement(t, manager, id)
	partnershipDue := e.cal.AddWorkingDays(seniorDue.Add(time.Minute), 10).UTC()
	if d.GetStage() != triagev1.DisagreementStage_PARTNERSHIP || !d.GetStageDue().AsTime().Equal(partnershipDue) {
		t.Fatalf("after sweep 3: %v (want due %s)", d, partnershipDue)
	}
	// The partnership is the last stage: it stays overdue rather than escalating further.
	e.clock.Set(partnershipDue.Add(time.Hour))
	if res, _ := e.svc.Sweep(context.Background()); res.DisagreementsEscalated != 0 {
		t.Fatalf("escalated past the partnership")
	}
	if _, err := e.client.EscalateDisagreement(police.ctx, &triagev1.EscalateDisagreementRequest{DisagreementId: d.GetId(), Outcome: "x"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("escalating past the partnership: %v", err)
	}
	if _, err := e.client.ResolveDisagreement(police.ctx, &triagev1.ResolveDisagreementRequest{DisagreementId: d.GetId(), Resolution: "x"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("referrer resolving: %v", err)
	}
	res, err := e.client.ResolveDisagreement(manager.ctx, &triagev1.ResolveDisagreementRequest{DisagreementId: d.GetId(), ExpectedVersion: d.GetVersion(),
		Resolution: "Partnership agreed a step-up to level 3a."})
	if err != nil || !res.GetDisagreement().GetResolved() || len(res.GetDisagreement().GetSteps()) != 4 || res.GetDisagreement().GetSteps()[3].GetEndedAt() == nil {
		t.Fatalf("resolve: %v %v", res, err)
	}
	// The agency sees its own disagreement; open-only hides it now.
	mine, err := e.client.ListDisagreements(police.ctx, &triagev1.ListDisagreementsRequest{})
	if err != nil || len(mine.GetDisagreements()) != 1 {
		t.Fatalf("agency's list: %v %v", mine, err)
	}
	if others, _ := e.client.ListDisagreements(stranger.ctx, &triagev1.ListDisagreementsRequest{}); len(others.GetDisagreements()) != 0 {
		t.Fatalf("another agency's list: %v", others)
	}
	if open, _ := e.client.ListDisagreements(manager.ctx, &triagev1.ListDisagreementsRequest{OpenOnly: true}); len(open.GetDisagreements()) != 0 {
		t.Fatalf("open list: %v", open)
	}
	e.streamEvents(t, triage.EventDisagreementRaised, 1)
	e.streamEvents(t, triage.EventDisagreementEscal, 3)
	e.streamEvents(t, triage.EventDisagreementResolve, 1)
}

func (e *env) disagreement(t *testing.T, c caller, referralID string) *triagev1.Disagreement {
	t.Helper()
	list, err := e.client.ListDisagreements(c.ctx, &triagev1.ListDisagreementsRequest{ReferralId: referralID})
	if err != nil || len(list.GetDisagreements()) != 1 {
		t.Fatalf("disagreements of %s: %v %v", referralID, list, err)
	}
	return list.GetDisagreements()[0]
}

// A page token is opaque: anything this service could not have issued is refused by name,
// including a well-formed key whose row id is not a UUID, and the queue lists it with the
// request's other faults.
func TestPageTokensNotIssuedHereAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.staff(t, auth.RolePractitioner)
	tokenOf := func(json string) string { return base64.RawURLEncoding.EncodeToString([]byte(json)) }
	for name, tok := range map[string]string{
		"not base64":     "!!!",
		"not JSON":       tokenOf("queue"),
		"no row id":      tokenOf(`{"d":"2026-11-26T17:00:00Z"}`),
		"id not a UUID":  tokenOf(`{"i":"1' OR '1'='1"}`),
		"id of a number": tokenOf(`{"i":7}`),
	} {
		calls := map[string]error{}
		_, calls["ListQueue"] = e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{PageToken: tok})
		_, calls["ListDisagreements"] = e.client.ListDisagreements(p.ctx, &triagev1.ListDisagreementsRequest{PageToken: tok})
		_, calls["ListInformationRequests"] = e.client.ListInformationRequests(p.ctx, &triagev1.ListInformationRequestsRequest{PageToken: tok})
		for call, err := range calls {
			if status.Code(err) != codes.InvalidArgument || field(err) != "pageToken" {
				t.Errorf("%s with a token %s: %v, want INVALID_ARGUMENT on pageToken", call, name, err)
			}
		}
	}
	_, err := e.client.ListQueue(p.ctx, &triagev1.ListQueueRequest{PageToken: "!!!", States: []triagev1.CaseState{99}})
	if got := fields(err); strings.Join(got, ",") != "states[0],pageToken" {
		t.Errorf("queue with a bad state and a bad token: violations on %v, want states[0] and pageToken", got)
	}
}
