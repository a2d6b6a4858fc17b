package triage_test

import (
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

// Consent refused: the decided case says what is held back and why; a practitioner cannot
// authorise sharing without consent, a manager can, with the reason and the lawful basis,
// and the authorisation goes out as an event notify shares by. Consent can be recorded
// as withdrawn later, and the authorisation revoked.
func TestOnlyAManagerAuthorisesSharingWithoutConsent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.staff(t, auth.RolePractitioner)
	m := e.staff(t, auth.RoleManager)
	id := uuid.NewString()
	sub := example(t)
	sub.Consent = &intakev1.Consent{Status: intakev1.ConsentStatus_REFUSED, Reason: "Father refused on 20 Nov."}
	e.receivedSubmission(t, id, "south-wales-police", start, sub)
	e.decided(t, decision(id, "rct", 1, rulesv1.DecisionStatus_RECOMMENDED, rulesv1.Level_LEVEL_3A, rulesv1.Rag_RAG_AMBER,
		start.Add(24*time.Hour), start.Add(48*time.Hour)))
	e.waitCase(t, id, func(c store.Case) bool { return c.Received && c.State == store.StateAwaitingDecision })

	// Not decided yet: nothing to authorise.
	if _, err := e.client.AuthoriseSharing(m.ctx, &triagev1.AuthoriseSharingRequest{ReferralId: id, LawfulBasis: "x", Reason: "y"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("authorising an undecided case: %v", err)
	}
	claim, err := e.client.ClaimCase(p.ctx, &triagev1.ClaimCaseRequest{ReferralId: id})
	if err != nil {
		t.Fatal(err)
	}
	decided, err := e.client.DecideCase(p.ctx, &triagev1.DecideCaseRequest{ReferralId: id, ExpectedVersion: claim.GetCase().GetVersion(), Confirm: true})
	if err != nil {
		t.Fatal(err)
	}
	c := decided.GetCase()
	if c.GetConsentStatus() != "REFUSED" || !strings.Contains(c.GetSharingHeld(), "consent refused") || !strings.Contains(c.GetSharingHeld(), "childrens_social_care") {
		t.Fatalf("decided case does not say what is held back: consent %q, held %q", c.GetConsentStatus(), c.GetSharingHeld())
	}

	_, err = e.client.AuthoriseSharing(p.ctx, &triagev1.AuthoriseSharingRequest{ReferralId: id, LawfulBasis: "UK GDPR Art 6(1)(e)", Reason: "Risk."})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("practitioner authorising: %v", err)
	}
	_, err = e.client.AuthoriseSharing(m.ctx, &triagev1.AuthoriseSharingRequest{ReferralId: id})
	if status.Code(err) != codes.InvalidArgument || strings.Join(fields(err), ",") != "lawfulBasis,reason" {
		t.Fatalf("authorising without basis or reason: %v (fields %v)", err, fields(err))
	}
	const basis = "UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 18"
	auth1, err := e.client.AuthoriseSharing(m.ctx, &triagev1.AuthoriseSharingRequest{ReferralId: id, ExpectedVersion: c.GetVersion(),
		LawfulBasis: basis, Reason: "Neglect is escalating; the school and police must know despite the refusal."})
	if err != nil {
		t.Fatal(err)
	}
	a := auth1.GetCase().GetSharingAuthorisation()
	if a.GetLawfulBasis() != basis || !strings.Contains(a.GetAuthorisedBy(), m.id) || a.GetGround() != triage.GroundManagerJudgement || auth1.GetCase().GetSharingHeld() != "" {
		t.Fatalf("authorised case: %v", auth1.GetCase())
	}
	_, ev := decode(t, e.streamEvents(t, triage.EventSharingAuthorised, 1)[0].Data, &eventsv1.SharingChanged{})
	if ev.GetReferralId() != id || ev.GetConsentStatus() != "REFUSED" || ev.GetAuthorisation().GetLawfulBasis() != basis || ev.GetActorRole() != "manager" {
		t.Fatalf("authorised event: %v", ev)
	}

	// Consent recorded later: a note is needed for a withdrawal.
	if _, err := e.client.RecordConsent(p.ctx, &triagev1.RecordConsentRequest{ReferralId: id, Status: "WITHDRAWN"}); status.Code(err) != codes.InvalidArgument || field(err) != "note" {
		t.Fatalf("withdrawal without a note: %v", err)
	}
	if _, err := e.client.RecordConsent(p.ctx, &triagev1.RecordConsentRequest{ReferralId: id, Status: "MAYBE"}); status.Code(err) != codes.InvalidArgument || field(err) != "status" {
		t.Fatalf("unknown consent: %v", err)
	}
	rc, err := e.client.RecordConsent(p.ctx, &triagev1.RecordConsentRequest{ReferralId: id, Status: "WITHDRAWN", Note: "Mother rang the hub at 10:05."})
	if err != nil || rc.GetCase().GetConsentStatus() != "WITHDRAWN" {
		t.Fatalf("consent withdrawn: %v %v", rc, err)
	}
	_, cev := decode(t, e.streamEvents(t, triage.EventConsentChanged, 1)[0].Data, &eventsv1.SharingChanged{})
	if cev.GetConsentStatus() != "WITHDRAWN" || cev.GetAuthorisation().GetLawfulBasis() != basis {
		t.Fatalf("consent event: %v", cev)
	}

	if _, err := e.client.RevokeSharing(p.ctx, &triagev1.RevokeSharingRequest{ReferralId: id, Reason: "x"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("practitioner revoking: %v", err)
	}
	rv, err := e.client.RevokeSharing(m.ctx, &triagev1.RevokeSharingRequest{ReferralId: id, Reason: "Family engaging with early help."})
	if err != nil || rv.GetCase().GetSharingAuthorisation() != nil || rv.GetCase().GetSharingHeld() == "" {
		t.Fatalf("revoked: %v %v", rv, err)
	}
	_, rev := decode(t, e.streamEvents(t, triage.EventSharingRevoked, 1)[0].Data, &eventsv1.SharingChanged{})
	if rev.GetAuthorisation() != nil || rev.GetReason() == "" {
		t.Fatalf("revoked event: %v", rev)
	}
}
