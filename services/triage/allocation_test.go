package triage_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage"
	"github.com/mash-hub/mash/services/triage/store"
)

// scoped is a hub credential serving only partnerships.
func (e *env) scoped(t testing.TB, role auth.Role, partnerships ...string) caller {
	t.Helper()
	c, token, err := e.auth.Create(context.Background(), "rct-mash", "hub", role, "test", partnerships...)
	if err != nil {
		t.Fatal(err)
	}
	return caller{ctx: metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), token: token, id: c.ClientID}
}

// receivedCases publishes n referrals of partnership and waits for their cases.
func (e *env) receivedCases(t testing.TB, partnership string, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		id := uuid.NewString()
		e.received(t, referral{id: id, partnership: partnership, agency: "south-wales-police", concerns: []intakev1.ConcernCategory{intakev1.ConcernCategory_NEGLECT}, receivedAt: start})
		ids = append(ids, id)
	}
	for _, id := range ids {
		e.waitCase(t, id, func(c store.Case) bool { return c.Received })
	}
	return ids
}

// A manager's assignment holds until it is changed: the claim timeout and the sweep leave it
// with its assignee, who works it (decides it) however long it takes; only a practitioner's
// own claim lapses. Claiming an assigned case does not turn it into a lapsing claim.
func TestManagerAssignmentSurvivesClaimExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{runRules: true})
	assigned := uuid.NewString()
	e.receivedSubmission(t, assigned, "south-wales-police", start, example(t))
	e.waitCase(t, assigned, func(c store.Case) bool { return c.Received && c.State == store.StateAwaitingDecision })
	claimed := e.receivedCases(t, "rct", 1)[0]
	// The sweep skips rows another transaction holds, so the recommendation's projection must
	// be done before the clock moves, or the sweep may pass over alice's claim this time.
	e.waitCase(t, claimed, func(c store.Case) bool { return c.State == store.StateAwaitingDecision })
	bob, alice := e.staff(t, auth.RolePractitioner), e.staff(t, auth.RolePractitioner)
	manager := e.staff(t, auth.RoleManager)

	resp, err := e.client.AssignCase(manager.ctx, &triagev1.AssignCaseRequest{ReferralId: assigned, Assignee: bob.id})
	if err != nil || resp.GetCase().GetAssignee() != bob.id || resp.GetCase().GetClaimExpiresAt() != nil {
		t.Fatalf("assign: %v %v", resp, err)
	}
	// Bob claiming his assigned case changes nothing: it still holds until changed.
	again, err := e.client.ClaimCase(bob.ctx, &triagev1.ClaimCaseRequest{ReferralId: assigned})
	if err != nil || again.GetCase().GetClaimExpiresAt() != nil || again.GetCase().GetVersion() != resp.GetCase().GetVersion() {
		t.Fatalf("claiming an assigned case: %v %v", again, err)
	}
	if _, err := e.client.ClaimCase(alice.ctx, &triagev1.ClaimCaseRequest{ReferralId: claimed}); err != nil {
		t.Fatal(err)
	}

	// Well past any claim's timeout.
	e.drained(t)
	e.clock.Advance(10 * triage.DefaultClaimTimeout)
	res, err := e.svc.Sweep(context.Background())
	if err != nil || res.ClaimsReleased != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	if c, _ := e.row(t, claimed); c.Assignee != "" {
		t.Fatalf("alice's own claim did not lapse: %+v", c)
	}
	got, err := e.client.GetCase(bob.ctx, &triagev1.GetCaseRequest{ReferralId: assigned})
	if err != nil || got.GetCase().GetAssignee() != bob.id {
		t.Fatalf("the assignment lapsed: %v %v", got.GetCase(), err)
	}
	mine, err := e.client.ListQueue(bob.ctx, &triagev1.ListQueueRequest{Assignee: "me"})
	if err != nil || len(mine.GetCases()) != 1 || mine.GetCases()[0].GetReferralId() != assigned {
		t.Fatalf("bob's queue: %v %v", mine, err)
	}
	none, err := e.client.ListQueue(bob.ctx, &triagev1.ListQueueRequest{Assignee: "none"})
	if err != nil || len(none.GetCases()) != 1 || none.GetCases()[0].GetReferralId() != claimed {
		t.Fatalf("unassigned queue: %v %v", none, err)
	}
	// Nobody else takes it, and the refusal says a manager holds the key.
	_, err = e.client.ClaimCase(alice.ctx, &triagev1.ClaimCaseRequest{ReferralId: assigned})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "assigned to "+bob.id) {
		t.Fatalf("claiming another's assigned case: %v", err)
	}
	// Bob decides it, hours after the assignment.
	if _, err := e.client.DecideCase(bob.ctx, &triagev1.DecideCaseRequest{ReferralId: assigned, Confirm: true}); err != nil {
		t.Fatalf("the assignee deciding: %v", err)
	}
	// The manager reassigns: the change is the manager's, on the trail.
	if _, err := e.client.AssignCase(manager.ctx, &triagev1.AssignCaseRequest{ReferralId: assigned, Assignee: alice.id}); err != nil {
		t.Fatal(err)
	}
	msgs := e.streamEvents(t, triage.EventAssigned, 2)
	_, ev := decode(t, msgs[1].Data, &eventsv1.CaseChanged{})
	if ev.GetActor() != manager.id || !strings.Contains(ev.GetReason(), "assigned to "+alice.id) || !strings.Contains(ev.GetReason(), bob.id) {
		t.Fatalf("reassigned event: %v", ev)
	}
}

// Only staff of the case's partnership who work cases may be given it: someone the hub does
// not know, a disabled person, an auditor, or staff of another partnership are refused with
// InvalidArgument naming "assignee", over gRPC and HTTP. People are known to the staff
// directory from their first sign-in.
func TestAssigneeMustBeStaffOfThePartnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id := e.receivedCases(t, "rct", 1)[0]
	manager := e.staff(t, auth.RoleManager)
	elsewhere := e.scoped(t, auth.RolePractitioner, "merthyr-tydfil")
	auditor := e.staff(t, auth.RoleAuditor)
	revoked := e.staff(t, auth.RolePractitioner)
	if err := e.auth.Revoke(context.Background(), revoked.id, "test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.auth.CreateSession(context.Background(), "gwen.jones", "Gwen Jones", auth.RolePractitioner, "rct-mash", time.Hour, "rct"); err != nil {
		t.Fatal(err)
	}
	for name, who := range map[string]string{"unknown": "user:nobody", "other partnership": elsewhere.id, "auditor": auditor.id,
		"revoked": revoked.id, "blank": "  "} {
		_, err := e.client.AssignCase(manager.ctx, &triagev1.AssignCaseRequest{ReferralId: id, Assignee: who})
		if status.Code(err) != codes.InvalidArgument || field(err) != "assignee" {
			t.Errorf("assigning to %s: %v (field %q)", name, err, field(err))
		}
	}
	code, _, body := httpDo(t, "POST", e.httpURL+"/v1/cases/"+id+"/assign", manager.token, `{"assignee": "`+elsewhere.id+`"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"field":"assignee"`) || !strings.Contains(body, "rct") {
		t.Fatalf("HTTP assignment outside the partnership: %d %s", code, body)
	}
	if c, _ := e.row(t, id); c.Assignee != "" {
		t.Fatalf("a refused assignment changed the case: %+v", c)
	}
	// A person who signed in serving the partnership is known.
	resp, err := e.client.AssignCase(manager.ctx, &triagev1.AssignCaseRequest{ReferralId: id, Assignee: "user:gwen.jones"})
	if err != nil || resp.GetCase().GetAssignee() != "user:gwen.jones" {
		t.Fatalf("assigning to a signed-in person: %v %v", resp, err)
	}
	// Once disabled, no more work.
	if err := e.auth.SetStaffActive(context.Background(), "gwen.jones", false); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.AssignCase(manager.ctx, &triagev1.AssignCaseRequest{ReferralId: id, Assignee: "user:gwen.jones"})
	if status.Code(err) != codes.InvalidArgument || field(err) != "assignee" {
		t.Fatalf("assigning to a disabled person: %v", err)
	}
}

// A manager reassigns several cases from the queue at once: each case is assigned on its
// own, with its own event; a case that cannot be (closed, of a partnership the assignee does
// not serve, unknown) is reported in its result and the others are assigned. A malformed
// request or an assignee who cannot be given work changes nothing.
func TestBulkReassignment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	rct := e.receivedCases(t, "rct", 3)
	other := e.receivedCases(t, "merthyr-tydfil", 1)[0]
	manager := e.staff(t, auth.RoleManager)
	practitioner := e.staff(t, auth.RolePractitioner)
	bob := e.scoped(t, auth.RolePractitioner, "rct")
	if _, err := e.client.ClaimCase(practitioner.ctx, &triagev1.ClaimCaseRequest{ReferralId: rct[0]}); err != nil {
		t.Fatal(err)
	}
	missing := uuid.NewString()

	// Only managers; and the request is checked whole first.
	if _, err := e.client.ReassignCases(practitioner.ctx, &triagev1.ReassignCasesRequest{ReferralIds: rct, Assignee: bob.id}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a practitioner reassigning: %v", err)
	}
	_, err := e.client.ReassignCases(manager.ctx, &triagev1.ReassignCasesRequest{ReferralIds: []string{rct[0], "x", rct[0]}})
	if status.Code(err) != codes.InvalidArgument || strings.Join(fields(err), ",") != "referralIds[1],referralIds[2],assignee" {
		t.Fatalf("a malformed reassignment: %v %v", err, fields(err))
	}
	_, err = e.client.ReassignCases(manager.ctx, &triagev1.ReassignCasesRequest{ReferralIds: rct, Assignee: "user:nobody"})
	if status.Code(err) != codes.InvalidArgument || field(err) != "assignee" {
		t.Fatalf("reassigning to someone unknown: %v", err)
	}

	resp, err := e.client.ReassignCases(manager.ctx, &triagev1.ReassignCasesRequest{ReferralIds: append(append([]string{}, rct...), other, missing), Assignee: bob.id})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAssigned() != 3 || resp.GetRefused() != 2 || len(resp.GetResults()) != 5 {
		t.Fatalf("reassignment: %v", resp)
	}
	for i, r := range resp.GetResults()[:3] {
		if r.GetReferralId() != rct[i] || r.GetCase().GetAssignee() != bob.id || r.GetErrorCode() != "" {
			t.Fatalf("result %d: %v", i, r)
		}
	}
	if r := resp.GetResults()[3]; r.GetReferralId() != other || r.GetErrorCode() != "INVALID_ARGUMENT" || !strings.Contains(r.GetError(), "merthyr-tydfil") || r.GetCase() != nil {
		t.Fatalf("the other partnership's case: %v", r)
	}
	if r := resp.GetResults()[4]; r.GetErrorCode() != "NOT_FOUND" {
		t.Fatalf("the unknown case: %v", r)
	}
	if c, _ := e.row(t, other); c.Assignee != "" {
		t.Fatalf("the refused case was assigned: %+v", c)
	}
	// Each case its own event, by the manager.
	msgs := e.streamEvents(t, triage.EventAssigned, 3)
	seen := map[string]bool{}
	for _, m := range msgs {
		env, ev := decode(t, m.Data, &eventsv1.CaseChanged{})
		if ev.GetActor() != manager.id || ev.GetCase().GetAssignee() != bob.id {
			t.Fatalf("assigned event: %v", ev)
		}
		seen[env.GetReferralId()] = true
	}
	if len(seen) != 3 || !seen[rct[0]] || !seen[rct[1]] || !seen[rct[2]] {
		t.Fatalf("assigned events for %v, want one per case of %v", seen, rct)
	}
	if !strings.Contains(msgs[0].Subject, "assigned") {
		t.Fatalf("subject %s", msgs[0].Subject)
	}
	// Over HTTP.
	code, _, body := httpDo(t, "POST", e.httpURL+"/v1/queue/reassign", manager.token, `{"referralIds": ["`+rct[1]+`"], "assignee": "`+practitioner.id+`"}`)
	got := fromJSON(t, code, body, &triagev1.ReassignCasesResponse{})
	if got.GetAssigned() != 1 || got.GetResults()[0].GetCase().GetAssignee() != practitioner.id {
		t.Fatalf("HTTP reassignment: %s", body)
	}
}
