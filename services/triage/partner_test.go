package triage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// partner signs in a person of a partner agency, as the console's partner view does.
func (e *env) partner(t testing.TB, agency, kind string) caller {
	t.Helper()
	sess, token, err := e.auth.CreateSessionOfKind(context.Background(), "p-"+uuid.NewString()[:8], "Partner person", auth.RolePartner, agency, kind, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return caller{ctx: metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), token: token,
		id: sess.Identity().ClientID}
}

// Staff of a partner agency answer their own agency's information requests and raise and
// follow its disagreements, and see nothing else: another agency's requests do not exist for
// them, a referral their agency neither made nor was told of cannot be disagreed with, and
// the hub's queue, cases and dashboard are refused.
func TestPartnerStaffAreScopedToTheirAgency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	id := uuid.NewString()
	e.received(t, referral{id: id, partnership: "rct", agency: "south-wales-police", receivedAt: start})
	e.decided(t, decision(id, "rct", 2, rulesv1.DecisionStatus_CONFIRMED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN, start.Add(24*time.Hour), start.Add(72*time.Hour)))
	e.waitCase(t, id, func(c store.Case) bool { return c.Received && c.State == store.StateDecided })
	p := e.staff(t, auth.RolePractitioner)
	gwent := e.partner(t, "gwent-police", "police")
	swp := e.partner(t, "south-wales-police", "police")

	toGwent, err := e.client.RequestInformation(p.ctx, &triagev1.RequestInformationRequest{ReferralId: id, Agency: "gwent-police", Question: "Any call-outs?"})
	if err != nil {
		t.Fatal(err)
	}
	toHealth, err := e.client.RequestInformation(p.ctx, &triagev1.RequestInformationRequest{ReferralId: id, Agency: "cardiff-health", Question: "Health visitor contact?"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.client.ListInformationRequests(gwent.ctx, &triagev1.ListInformationRequestsRequest{ReferralId: id})
	if err != nil || len(list.GetRequests()) != 1 || list.GetRequests()[0].GetId() != toGwent.GetRequest().GetId() {
		t.Fatalf("gwent's list: %v %v", list, err)
	}
	if list, err := e.client.ListInformationRequests(gwent.ctx, &triagev1.ListInformationRequestsRequest{Agency: "cardiff-health"}); err != nil || len(list.GetRequests()) != 0 {
		t.Fatalf("a partner listing another agency's requests: %v %v", list, err)
	}
	if _, err := e.client.AnswerInformationRequest(gwent.ctx, &triagev1.AnswerInformationRequestRequest{RequestId: toHealth.GetRequest().GetId(), Answer: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("a partner answering another agency's request: %v", err)
	}
	got, err := e.client.AnswerInformationRequest(gwent.ctx, &triagev1.AnswerInformationRequestRequest{RequestId: toGwent.GetRequest().GetId(), Answer: "Two call-outs in October."})
	if err != nil || got.GetRequest().GetAnsweredBy() != gwent.id || got.GetRequest().GetState() != triagev1.InformationRequestState_ANSWERED {
		t.Fatalf("a partner answering its own request: %v %v", got, err)
	}

	// The hub's own work is refused.
	if _, err := e.client.ListQueue(gwent.ctx, &triagev1.ListQueueRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a partner reading the queue: %v", err)
	}
	if _, err := e.client.GetCase(swp.ctx, &triagev1.GetCaseRequest{ReferralId: id}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a partner reading the case it referred: %v", err)
	}
	if _, err := e.client.GetDashboard(gwent.ctx, &triagev1.GetDashboardRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a partner reading the dashboard: %v", err)
	}
	if _, err := e.rules.GetDecision(swp.ctx, &rulesv1.GetDecisionRequest{ReferralId: id}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a partner reading the rules' decision: %v", err)
	}

	// Gwent neither made the referral nor was told of its decision: it cannot disagree.
	if _, err := e.client.RaiseDisagreement(gwent.ctx, &triagev1.RaiseDisagreementRequest{ReferralId: id, Reason: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("a partner disagreeing about a referral its agency was not part of: %v", err)
	}
	raised, err := e.client.RaiseDisagreement(swp.ctx, &triagev1.RaiseDisagreementRequest{ReferralId: id, Reason: "Third incident this year; level 2 is too low."})
	if err != nil || raised.GetDisagreement().GetRaisedByAgency() != "south-wales-police" || raised.GetDisagreement().GetRaisedBy() != swp.id {
		t.Fatalf("the referrer's partner raising: %v %v", raised, err)
	}
	if ds, err := e.client.ListDisagreements(gwent.ctx, &triagev1.ListDisagreementsRequest{ReferralId: id}); err != nil || len(ds.GetDisagreements()) != 0 {
		t.Fatalf("another agency's partner sees the disagreement: %v %v", ds, err)
	}
	if ds, err := e.client.ListDisagreements(swp.ctx, &triagev1.ListDisagreementsRequest{}); err != nil || len(ds.GetDisagreements()) != 1 {
		t.Fatalf("the raising partner follows its disagreement: %v %v", ds, err)
	}
	d := raised.GetDisagreement()
	if _, err := e.client.ResolveDisagreement(swp.ctx, &triagev1.ResolveDisagreementRequest{DisagreementId: d.GetId(), ExpectedVersion: d.GetVersion(), Resolution: "x"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a partner resolving its own disagreement: %v", err)
	}
	if _, err := e.client.EscalateDisagreement(gwent.ctx, &triagev1.EscalateDisagreementRequest{DisagreementId: d.GetId(), ExpectedVersion: d.GetVersion(), Outcome: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("another agency's partner escalating: %v", err)
	}
	esc, err := e.client.EscalateDisagreement(swp.ctx, &triagev1.EscalateDisagreementRequest{DisagreementId: d.GetId(), ExpectedVersion: d.GetVersion(),
		Outcome: "The practitioner kept level 2; we ask the team manager."})
	if err != nil || esc.GetDisagreement().GetStage() != triagev1.DisagreementStage_TEAM_MANAGER ||
		!strings.HasPrefix(esc.GetDisagreement().GetSteps()[0].GetActor(), auth.UserPrefix) {
		t.Fatalf("the raising partner escalating: %v %v", esc, err)
	}
}
