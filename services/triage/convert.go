package triage

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// caseToProto converts a case at the API and event boundary, as it stands at now: a lapsed
// claim shows as no claim.
func caseToProto(c store.Case, now time.Time) *triagev1.Case {
	p := &triagev1.Case{
		ReferralId: c.ReferralID, Partnership: c.Partnership, ChildId: c.ChildID, ChildName: c.ChildName,
		ChildAgeYears: c.ChildAgeYears, SourceAgency: c.SourceAgency, SourceKind: c.SourceKind, Concerns: c.Concerns,
		State: triagev1.CaseState(c.State), Level: rulesv1.Level(c.Level), Rag: rulesv1.Rag(c.RAG), Pathway: c.Pathway,
		Agencies: c.Agencies, DecisionStatus: rulesv1.DecisionStatus(c.DecisionStatus), DecisionVersion: c.DecisionVersion,
		ReceivedAt: ts(c.ReceivedAt), DecisionDue: ts(c.DecisionDue), RagDue: ts(c.RAGDue), RecommendedAt: ts(c.RecommendedAt),
		DecidedAt: ts(c.DecidedAt), DecidedBy: c.DecidedBy, Overdue: c.Overdue(now), Outcome: triagev1.CaseOutcome(c.Outcome),
		OutcomeNote: c.OutcomeNote, ClosedAt: ts(c.ClosedAt), ClosedBy: c.ClosedBy, Version: c.Version,
		Reference: c.Reference, ExternalReference: c.ExternalReference, FamilyGroup: c.FamilyGroup,
	}
	if c.ClaimLive(now) {
		p.Assignee, p.ClaimExpiresAt = c.Assignee, ts(c.ClaimExpiresAt)
	}
	p.ConsentStatus = c.ConsentStatus
	if c.Sharing.At != nil {
		p.SharingAuthorisation = &triagev1.SharingAuthorisation{LawfulBasis: c.Sharing.Basis, Reason: c.Sharing.Reason,
			Ground: c.Sharing.Ground, AuthorisedBy: c.Sharing.By, AuthorisedAt: ts(c.Sharing.At)}
	}
	p.SharingHeld = sharingHeld(c)
	p.LeadProfessional = leadToProto(c.Lead)
	return p
}

func historyToProto(c store.Case) *triagev1.ChildHistoryEntry {
	return &triagev1.ChildHistoryEntry{ReferralId: c.ReferralID, ReceivedAt: ts(c.ReceivedAt), Concerns: c.Concerns,
		Level: rulesv1.Level(c.Level), Rag: rulesv1.Rag(c.RAG), State: triagev1.CaseState(c.State),
		Outcome: triagev1.CaseOutcome(c.Outcome), SourceAgency: c.SourceAgency, Reference: c.Reference, ClosedAt: ts(c.ClosedAt)}
}

func noticeToProto(n store.Notice) *triagev1.AgencyNotice {
	return &triagev1.AgencyNotice{NotificationId: n.NotificationID, Agency: n.Agency, Role: n.Role, Kind: n.Kind, State: n.State,
		SentAt: ts(n.SentAt), DeliveredAt: ts(n.DeliveredAt), AcknowledgedAt: ts(n.AcknowledgedAt), AckDue: ts(n.AckDue)}
}

func strategyToProto(d store.StrategyDiscussion) *triagev1.StrategyDiscussion {
	return &triagev1.StrategyDiscussion{Id: d.ID, HeldAt: timestamppb.New(d.HeldAt), Participants: d.Participants,
		Outcome: d.Outcome, Section_47: d.Section47, RecordedBy: d.RecordedBy, RecordedAt: timestamppb.New(d.RecordedAt)}
}

func infoToProto(r store.InformationRequest, now time.Time) *triagev1.InformationRequest {
	return &triagev1.InformationRequest{Id: r.ID, ReferralId: r.ReferralID, Partnership: r.Partnership, Agency: r.Agency,
		Question: r.Question, Due: timestamppb.New(r.Due), State: triagev1.InformationRequestState(r.State), Answer: r.Answer,
		RequestedBy: r.RequestedBy, RequestedAt: timestamppb.New(r.RequestedAt), AnsweredBy: r.AnsweredBy,
		AnsweredAt: ts(r.AnsweredAt), Overdue: r.State == store.InfoRequested && r.Due.Before(now)}
}

func disagreementToProto(d store.Disagreement) *triagev1.Disagreement {
	p := &triagev1.Disagreement{Id: d.ID, ReferralId: d.ReferralID, Partnership: d.Partnership, RaisedByAgency: d.RaisedByAgency,
		RaisedBy: d.RaisedBy, Reason: d.Reason, Stage: triagev1.DisagreementStage(d.Stage), StageDue: timestamppb.New(d.StageDue),
		Resolved: d.Resolved, Resolution: d.Resolution, RaisedAt: timestamppb.New(d.RaisedAt), ResolvedAt: ts(d.ResolvedAt),
		Version: d.Version}
	for _, s := range d.Steps {
		p.Steps = append(p.Steps, &triagev1.DisagreementStep{Stage: triagev1.DisagreementStage(s.Stage),
			StartedAt: timestamppb.New(s.StartedAt), Due: timestamppb.New(s.Due), EndedAt: ts(s.EndedAt), Outcome: s.Outcome,
			Actor: s.Actor, EscalatedByDeadline: s.Actor == systemActor && s.Outcome == deadlinePassed})
	}
	return p
}
