package console

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/referral"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// The fakes below are in-memory implementations of the services' gRPC client interfaces,
// holding a little casework so every screen has something to show. They record the bearer
// credential of each call, so tests can check the console calls as the signed-in person.

var fixtureNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func callerOf(ctx context.Context) string {
	md, _ := metadata.FromOutgoingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// amberCaseID is the fixture's Amber, level 3a case, awaiting a decision: the case the
// casework tests act on.
const amberCaseID = "0192a3b4-0000-7000-8000-000000000002"

type fakeTriage struct {
	triagev1.TriageServiceClient
	mu      sync.Mutex
	cases   map[string]*triagev1.Case
	callers []string
	// levelChanges counts decisions that changed a case's level, for the dashboard.
	levelChanges int64
	// decideErr, when set, is returned by DecideCase.
	decideErr error
	// englishPack makes GetCase's decision come from a pack in English only (no Welsh).
	englishPack bool
	// disagreements and info are the casework records GetCase shows, by id.
	disagreements map[string]*triagev1.Disagreement
	info          map[string]*triagev1.InformationRequest
	// disagreeErr, when set, is returned by EscalateDisagreement and ResolveDisagreement.
	disagreeErr error
	// escalated, resolved and answered count the changes that reached the fake.
	escalated, resolved, answered int
	// whoami maps a bearer credential to the client id the fake records as assignee.
	whoami func(ctx context.Context) string
	// infoRequested is the last information request that reached the fake.
	infoRequested *triagev1.RequestInformationRequest
	// raised are the disagreements raised through the fake.
	raised []*triagev1.RaiseDisagreementRequest
}

func newFakeTriage() *fakeTriage {
	f := &fakeTriage{cases: map[string]*triagev1.Case{}}
	add := func(id, name string, rag rulesv1.Rag, level rulesv1.Level, due time.Duration, overdue bool) {
		f.cases[id] = &triagev1.Case{ReferralId: id, Partnership: "cardiff", ChildId: "child-" + id, ChildName: name, ChildAgeYears: 7,
			SourceAgency: "south-wales-police", SourceKind: "police", Concerns: []string{"DOMESTIC_ABUSE", "NEGLECT"},
			State: triagev1.CaseState_AWAITING_DECISION, Level: level, Rag: rag, Pathway: "strategy_discussion",
			Agencies: []string{"childrens-social-care", "police"}, DecisionStatus: rulesv1.DecisionStatus_RECOMMENDED,
			DecisionVersion: 1, ReceivedAt: ts(fixtureNow.Add(-2 * time.Hour)), DecisionDue: ts(fixtureNow.Add(22 * time.Hour)),
			RagDue: ts(fixtureNow.Add(due)), Overdue: overdue, Version: 1,
			Reference: "MASH-2026-00000" + id[len(id)-2:], ExternalReference: "SWP-" + id[len(id)-2:]}
	}
	add("0192a3b4-0000-7000-8000-000000000001", "Ffion Test", rulesv1.Rag_RAG_RED, rulesv1.Level_LEVEL_4, -time.Hour, true)
	add(amberCaseID, "Dylan Test", rulesv1.Rag_RAG_AMBER, rulesv1.Level_LEVEL_3A, 20*time.Hour, false)
	add("0192a3b4-0000-7000-8000-000000000003", "Cerys Test", rulesv1.Rag_RAG_GREEN, rulesv1.Level_LEVEL_2, 70*time.Hour, false)
	f.addCasework()
	// Triage says what is held back once a case is decided; the fake shows it on a case
	// still in the queue so the queue's counts stay as they are.
	held := f.cases[sharingCase]
	held.ConsentStatus, held.SharingHeld = "REFUSED", "consent refused: nothing is shared"
	return f
}

// Fixture ids of the casework records.
const (
	caseOne         = "0192a3b4-0000-7000-8000-000000000001"
	disagreeOpen    = "0192a3b4-0000-7000-8000-0000000000d1" // team manager stage, due in two days
	disagreeOverdue = "0192a3b4-0000-7000-8000-0000000000d2" // partnership stage, deadline passed
	disagreeDone    = "0192a3b4-0000-7000-8000-0000000000d3" // resolved
	infoOpen        = "0192a3b4-0000-7000-8000-0000000000e1"
	infoLate        = "0192a3b4-0000-7000-8000-0000000000e2"
)

// addCasework gives case one an information request awaiting an answer, one overdue, and
// three disagreements in different states; every other case has none.
func (f *fakeTriage) addCasework() {
	raised := fixtureNow.Add(-72 * time.Hour)
	f.info = map[string]*triagev1.InformationRequest{
		infoOpen: {Id: infoOpen, ReferralId: caseOne, Partnership: "cardiff", Agency: "health-visiting", Question: "Is the child known to health visiting?",
			Due: ts(fixtureNow.Add(5 * time.Hour)), State: triagev1.InformationRequestState_REQUESTED, RequestedAt: ts(fixtureNow.Add(-time.Hour))},
		infoLate: {Id: infoLate, ReferralId: caseOne, Partnership: "cardiff", Agency: "ysgol-y-ddraig", Question: "What is the child's attendance this term?",
			Due: ts(fixtureNow.Add(-3 * time.Hour)), State: triagev1.InformationRequestState_REQUESTED, RequestedAt: ts(fixtureNow.Add(-27 * time.Hour)), Overdue: true},
	}
	f.disagreements = map[string]*triagev1.Disagreement{
		disagreeOpen: {Id: disagreeOpen, ReferralId: caseOne, Partnership: "cardiff", RaisedByAgency: "ysgol-y-ddraig", RaisedBy: "client:school-api (ysgol-y-ddraig, referrer)",
			Reason: "We think level 3a is too low", Stage: triagev1.DisagreementStage_TEAM_MANAGER, StageDue: ts(fixtureNow.Add(48 * time.Hour)),
			RaisedAt: ts(raised), Version: 2, Steps: []*triagev1.DisagreementStep{
				{Stage: triagev1.DisagreementStage_PRACTITIONER, StartedAt: ts(raised), Due: ts(raised.Add(24 * time.Hour)), EndedAt: ts(raised.Add(20 * time.Hour)),
					Outcome: "Practitioner kept level 3a: no new information", Actor: "client:user:alice (mash-hub, practitioner)"},
				{Stage: triagev1.DisagreementStage_TEAM_MANAGER, StartedAt: ts(raised.Add(20 * time.Hour)), Due: ts(fixtureNow.Add(48 * time.Hour))}}},
		disagreeOverdue: {Id: disagreeOverdue, ReferralId: caseOne, Partnership: "cardiff", RaisedByAgency: "south-wales-police",
			Reason: "The police consider a strategy discussion is needed", Stage: triagev1.DisagreementStage_PARTNERSHIP, StageDue: ts(fixtureNow.Add(-2 * time.Hour)),
			RaisedAt: ts(raised), Version: 4, Steps: []*triagev1.DisagreementStep{
				{Stage: triagev1.DisagreementStage_SENIOR_SAFEGUARDING_MANAGER, StartedAt: ts(raised), Due: ts(raised.Add(48 * time.Hour)), EndedAt: ts(raised.Add(49 * time.Hour)),
					Outcome: "deadline passed", Actor: "triage", EscalatedByDeadline: true},
				{Stage: triagev1.DisagreementStage_PARTNERSHIP, StartedAt: ts(raised.Add(49 * time.Hour)), Due: ts(fixtureNow.Add(-2 * time.Hour))}}},
		disagreeDone: {Id: disagreeDone, ReferralId: "0192a3b4-0000-7000-8000-000000000003", Partnership: "newport", RaisedByAgency: "gwent-health",
			Reason: "Health visiting should have been told", Stage: triagev1.DisagreementStage_PRACTITIONER, Resolved: true,
			Resolution: "Health visiting added to the agencies told", RaisedAt: ts(raised), ResolvedAt: ts(raised.Add(3 * time.Hour)), Version: 2},
	}
}

// disagreementsOf returns a referral's disagreements, or all, open first and nearest
// deadline first, as the service orders them.
func (f *fakeTriage) disagreementsOf(referral, partnership string, openOnly bool) []*triagev1.Disagreement {
	var out []*triagev1.Disagreement
	for _, d := range f.disagreements {
		if (referral != "" && d.GetReferralId() != referral) || (partnership != "" && d.GetPartnership() != partnership) || (openOnly && d.GetResolved()) {
			continue
		}
		out = append(out, proto.Clone(d).(*triagev1.Disagreement))
	}
	slices.SortFunc(out, func(a, b *triagev1.Disagreement) int {
		if a.GetResolved() != b.GetResolved() {
			if a.GetResolved() {
				return 1
			}
			return -1
		}
		return a.GetStageDue().AsTime().Compare(b.GetStageDue().AsTime())
	})
	return out
}

func (f *fakeTriage) note(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.callers = append(f.callers, callerOf(ctx))
}

func rank(c *triagev1.Case) int64 { return c.GetRagDue().AsTime().Unix() }

func (f *fakeTriage) ListQueue(ctx context.Context, req *triagev1.ListQueueRequest, _ ...grpc.CallOption) (*triagev1.ListQueueResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	want := req.GetStates()
	if len(want) == 0 {
		want = []triagev1.CaseState{triagev1.CaseState_AWAITING_RULES, triagev1.CaseState_AWAITING_DECISION}
	}
	resp := &triagev1.ListQueueResponse{}
	counts := map[triagev1.CaseState]*triagev1.QueueCount{}
	for _, st := range states {
		counts[st] = &triagev1.QueueCount{State: st}
		resp.Counts = append(resp.Counts, counts[st])
	}
	for _, c := range f.cases {
		if len(req.GetRags()) > 0 && !slices.Contains(req.GetRags(), c.GetRag()) {
			continue
		}
		counts[c.GetState()].Count++
		if c.GetOverdue() {
			counts[c.GetState()].Overdue++
		}
		if slices.Contains(want, c.GetState()) {
			resp.Cases = append(resp.Cases, proto.Clone(c).(*triagev1.Case))
		}
	}
	slices.SortFunc(resp.Cases, func(a, b *triagev1.Case) int { return int(rank(a) - rank(b)) })
	return resp, nil
}

func (f *fakeTriage) GetCase(ctx context.Context, req *triagev1.GetCaseRequest, _ ...grpc.CallOption) (*triagev1.GetCaseResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cases[req.GetReferralId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such case")
	}
	fired := []*rulesv1.FiredRule{{Id: "dash-high", Description: "High-risk domestic abuse with a child in the home",
		Reason: "DASH grade high and a child of 7 lives at the address", Level: rulesv1.Level_LEVEL_4, Rag: rulesv1.Rag_RAG_RED,
		Agencies: []string{"police", "childrens-social-care"}}}
	out := &rulesv1.Outcome{Level: c.GetLevel(), Rag: c.GetRag(), Pathway: c.GetPathway(), Agencies: c.GetAgencies(), Fired: fired,
		Reason: "DASH grade high and a child of 7 lives at the address", PackVersion: "2026.11.1"}
	if !f.englishPack {
		fired[0].DescriptionCy = "Cam-drin domestig risg uchel gyda phlentyn yn y cartref"
		fired[0].ReasonCy = "Gradd DASH uchel ac mae plentyn 7 oed yn byw yn y cyfeiriad"
		out.ReasonCy = fired[0].ReasonCy
	}
	return &triagev1.GetCaseResponse{
		Case:     proto.Clone(c).(*triagev1.Case),
		Decision: &rulesv1.Decision{Id: "d1", ReferralId: c.GetReferralId(), PackVersion: "2026.11.1", Recommended: out, Current: out, Status: c.GetDecisionStatus(), MatchBasis: "nhs_number", Version: c.GetDecisionVersion()},
		History: []*triagev1.ChildHistoryEntry{{ReferralId: "0192a3b4-0000-7000-8000-0000000000aa", ReceivedAt: ts(fixtureNow.AddDate(0, -3, 0)),
			Concerns: []string{"NEGLECT"}, Level: rulesv1.Level_LEVEL_2, Rag: rulesv1.Rag_RAG_GREEN, State: triagev1.CaseState_CLOSED,
			Outcome: triagev1.CaseOutcome_ADVICE_AND_SIGNPOSTING, SourceAgency: "ysgol-y-ddraig"}},
		Notices: []*triagev1.AgencyNotice{{NotificationId: "n1", Agency: "police", Kind: "ACTION", State: "ACKNOWLEDGED",
			SentAt: ts(fixtureNow.Add(-time.Hour)), AcknowledgedAt: ts(fixtureNow.Add(-30 * time.Minute)), AckDue: ts(fixtureNow.Add(time.Hour))},
			{NotificationId: "n2", Role: "camhs", Kind: "ACTION", State: "FAILED"}},
		StrategyDiscussions: []*triagev1.StrategyDiscussion{{Id: "s1", HeldAt: ts(fixtureNow.Add(-time.Hour)), Participants: []string{"A Social Worker (CSC, practitioner)"},
			Outcome: "Section 47 enquiry agreed", Section_47: true, RecordedBy: "user:alice"}},
		InformationRequests: f.infoOf(c.GetReferralId()),
		Disagreements:       f.disagreementsOf(c.GetReferralId(), "", false),
		Referral:            fixtureReferral(c),
		Family:              f.familyOf(c),
		QualityReviews: []*triagev1.QualityReview{{Id: "qa1", ReferralId: c.GetReferralId(), Verdict: triagev1.QualityVerdict_DISAGREE,
			Reason: "Level 3a: the school's earlier concerns were not weighed", LearningPoint: "Read the school's chronology first",
			Reviewer: "user:manager1", ReviewerRole: "manager", ReviewedAt: ts(fixtureNow.Add(-20 * time.Minute))}},
	}, nil
}

// fixtureReferral is the referral behind a fixture case, as intake holds it.
func fixtureReferral(c *triagev1.Case) *intakev1.Referral {
	dob := "2019-05-12"
	return &intakev1.Referral{Id: c.GetReferralId(), Reference: c.GetReference(), ExternalReference: c.GetExternalReference(),
		Agency: c.GetSourceAgency(), AgencyKind: c.GetSourceKind(), Partnership: c.GetPartnership(), ReceivedAt: c.GetReceivedAt(),
		Submission: &intakev1.ReferralSubmission{ExternalReference: c.GetExternalReference(), Partnership: c.GetPartnership(),
			Referrer: &intakev1.Referrer{Name: "PC Rhys Evans", Role: "Police constable, Public Protection Unit", Phone: "+441443000000",
				Email: "rhys.evans@police.example", KeepIdentityFromFamily: true},
			Child: &intakev1.Child{GivenName: "Ffion", FamilyName: "Test", DateOfBirth: dob, NhsNumber: "9434765919", Sex: intakev1.Sex_FEMALE,
				Address: &intakev1.Address{Line1: "1 Heol y Test", Town: "Pontypridd", Postcode: "CF37 1AA"}, School: "Ysgol y Ddraig",
				PreferredLanguage: "cy"},
			Household: []*intakev1.HouseholdMember{{Relationship: intakev1.Relationship_MOTHER, GivenName: "Sian", FamilyName: "Test", LivesWithChild: true},
				{Relationship: intakev1.Relationship_MOTHERS_PARTNER, GivenName: "Gareth", FamilyName: "Nottest", LivesWithChild: true}},
			Concerns: []*intakev1.Concern{{Category: intakev1.ConcernCategory_DOMESTIC_ABUSE, Summary: "Police attended a domestic incident; the child was in the next room.",
				ObservedAt: ts(fixtureNow.Add(-5 * time.Hour)), Location: "The family home", ChildPresent: true, ChildDisclosure: true}},
			RiskIndicators: &intakev1.RiskIndicators{DomesticAbuseRisk: intakev1.DomesticAbuseRisk_HIGH, PoliceIncidentsLast_12Months: 3,
				SuspectHasAccessToChild: true},
			Consent:   &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: "Seeking consent would put the child at risk"},
			Narrative: "Neighbours called 999 at 02:10. The mother said the child had been woken by shouting."}}
}

// familyOf is the other fixture cases of c's family group.
func (f *fakeTriage) familyOf(c *triagev1.Case) []*triagev1.Case {
	var out []*triagev1.Case
	for _, o := range f.cases {
		if o.GetFamilyGroup() != "" && o.GetFamilyGroup() == c.GetFamilyGroup() && o.GetReferralId() != c.GetReferralId() {
			out = append(out, proto.Clone(o).(*triagev1.Case))
		}
	}
	return out
}

// fakeIntake takes contacts: it refuses what intake's validation would for the fields the
// tests exercise, and acknowledges the rest with a reference, once per external reference.
type fakeIntake struct {
	intakev1.IntakeServiceClient
	mu        sync.Mutex
	submitted []*intakev1.ReferralSubmission
	byRef     map[string]*intakev1.Acknowledgement
	callers   []string
}

func (f *fakeIntake) SubmitReferral(ctx context.Context, req *intakev1.SubmitReferralRequest, _ ...grpc.CallOption) (*intakev1.SubmitReferralResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.callers = append(f.callers, callerOf(ctx))
	sub := req.GetReferral()
	var vs []*errdetails.BadRequest_FieldViolation
	if sub.GetChild().GetGivenName() == "" {
		vs = append(vs, &errdetails.BadRequest_FieldViolation{Field: "child.givenName", Description: "is required"})
	}
	if sub.GetChild().GetSex() == intakev1.Sex_SEX_UNSPECIFIED {
		vs = append(vs, &errdetails.BadRequest_FieldViolation{Field: "child.sex", Description: "is required (use SEX_NOT_KNOWN when the sex is not known)"})
	}
	if ch := sub.GetChild(); ch.GetDateOfBirth() == "" && !ch.GetAgeUnknown() && ch.EstimatedAgeYears == nil {
		vs = append(vs, &errdetails.BadRequest_FieldViolation{Field: "child.dateOfBirth", Description: "is required unless the age is unknown or estimated"})
	}
	if sub.GetReferrer().GetPhone() == "" && sub.GetReferrer().GetEmail() == "" && !sub.GetReferrer().GetAnonymous() {
		vs = append(vs, &errdetails.BadRequest_FieldViolation{Field: "referrer.phone", Description: "is required when email is not given"})
	}
	if sub.GetConsent().GetStatus() != intakev1.ConsentStatus_GIVEN && sub.GetConsent().GetReason() == "" {
		vs = append(vs, &errdetails.BadRequest_FieldViolation{Field: "consent.reason", Description: "is required unless consent was given"})
	}
	// The concerns as intake itself checks them (pkg/referral, the API's validation).
	for _, v := range referral.Validate(sub, time.Now()) {
		if strings.HasPrefix(v.Field, "concerns") {
			vs = append(vs, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Reason})
		}
	}
	if len(vs) > 0 {
		st, _ := status.New(codes.InvalidArgument, fmt.Sprintf("the referral has %d invalid fields", len(vs))).WithDetails(&errdetails.BadRequest{FieldViolations: vs})
		return nil, st.Err()
	}
	if f.byRef == nil {
		f.byRef = map[string]*intakev1.Acknowledgement{}
	}
	if ack, ok := f.byRef[sub.GetExternalReference()]; ok {
		replay := proto.Clone(ack).(*intakev1.Acknowledgement)
		replay.Replay = true
		return &intakev1.SubmitReferralResponse{Acknowledgement: replay}, nil
	}
	f.submitted = append(f.submitted, proto.Clone(sub).(*intakev1.ReferralSubmission))
	n := len(f.submitted)
	ack := &intakev1.Acknowledgement{ReferralId: fmt.Sprintf("0192a3b4-0000-7000-8000-0000000001%02d", n),
		Reference: fmt.Sprintf("MASH-2026-%07d", 100+n), ExternalReference: sub.GetExternalReference(), ReceivedAt: ts(fixtureNow)}
	f.byRef[sub.GetExternalReference()] = ack
	return &intakev1.SubmitReferralResponse{Acknowledgement: ack}, nil
}

func (f *fakeTriage) ClaimCase(ctx context.Context, req *triagev1.ClaimCaseRequest, _ ...grpc.CallOption) (*triagev1.ClaimCaseResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cases[req.GetReferralId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such case")
	}
	me := f.whoami(ctx)
	if c.GetAssignee() != "" && c.GetAssignee() != me {
		return nil, status.Error(codes.FailedPrecondition, "the case is claimed by "+c.GetAssignee())
	}
	c.Assignee, c.ClaimExpiresAt = me, ts(time.Now().Add(time.Hour))
	c.Version++
	return &triagev1.ClaimCaseResponse{Case: c}, nil
}

func (f *fakeTriage) ReleaseCase(ctx context.Context, req *triagev1.ReleaseCaseRequest, _ ...grpc.CallOption) (*triagev1.ReleaseCaseResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cases[req.GetReferralId()]
	c.Assignee, c.ClaimExpiresAt = "", nil
	c.Version++
	return &triagev1.ReleaseCaseResponse{Case: c}, nil
}

func (f *fakeTriage) DecideCase(ctx context.Context, req *triagev1.DecideCaseRequest, _ ...grpc.CallOption) (*triagev1.DecideCaseResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.decideErr != nil {
		return nil, f.decideErr
	}
	c, ok := f.cases[req.GetReferralId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such case")
	}
	if c.GetAssignee() != f.whoami(ctx) {
		return nil, status.Error(codes.FailedPrecondition, "claim the case before deciding it")
	}
	if req.GetExpectedVersion() != 0 && req.GetExpectedVersion() != c.GetVersion() {
		return nil, status.Error(codes.Aborted, "the case changed since you read it")
	}
	if !req.GetConfirm() && req.GetReason() == "" {
		return nil, invalid("reason", "an override needs a reason")
	}
	if req.GetLevel() != 0 {
		if req.GetLevel() != c.Level {
			f.levelChanges++
		}
		c.Level = req.GetLevel()
	}
	if req.GetRag() != 0 {
		c.Rag = req.GetRag()
	}
	c.State, c.DecisionStatus = triagev1.CaseState_DECIDED, rulesv1.DecisionStatus_OVERRIDDEN
	if req.GetConfirm() {
		c.DecisionStatus = rulesv1.DecisionStatus_CONFIRMED
	}
	c.DecidedBy, c.DecidedAt = f.whoami(ctx), ts(time.Now())
	c.Version++
	return &triagev1.DecideCaseResponse{Case: c}, nil
}

func (f *fakeTriage) RecordStrategyDiscussion(ctx context.Context, req *triagev1.RecordStrategyDiscussionRequest, _ ...grpc.CallOption) (*triagev1.RecordStrategyDiscussionResponse, error) {
	f.note(ctx)
	return &triagev1.RecordStrategyDiscussionResponse{Discussion: &triagev1.StrategyDiscussion{Id: "s2"}}, nil
}

func (f *fakeTriage) CloseCase(ctx context.Context, req *triagev1.CloseCaseRequest, _ ...grpc.CallOption) (*triagev1.CloseCaseResponse, error) {
	f.note(ctx)
	return &triagev1.CloseCaseResponse{}, nil
}

func (f *fakeTriage) RequestInformation(ctx context.Context, req *triagev1.RequestInformationRequest, _ ...grpc.CallOption) (*triagev1.RequestInformationResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	f.infoRequested = proto.Clone(req).(*triagev1.RequestInformationRequest)
	f.mu.Unlock()
	return &triagev1.RequestInformationResponse{Request: &triagev1.InformationRequest{Id: "i2"}}, nil
}

func (f *fakeTriage) infoOf(referral string) []*triagev1.InformationRequest {
	var out []*triagev1.InformationRequest
	for _, r := range f.info {
		if r.GetReferralId() == referral {
			out = append(out, proto.Clone(r).(*triagev1.InformationRequest))
		}
	}
	slices.SortFunc(out, func(a, b *triagev1.InformationRequest) int { return a.GetDue().AsTime().Compare(b.GetDue().AsTime()) })
	return out
}

func (f *fakeTriage) AnswerInformationRequest(ctx context.Context, req *triagev1.AnswerInformationRequestRequest, _ ...grpc.CallOption) (*triagev1.AnswerInformationRequestResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.info[req.GetRequestId()]
	switch {
	case !ok:
		return nil, status.Error(codes.NotFound, "no information request "+req.GetRequestId())
	case req.GetAnswer() == "":
		return nil, invalid("answer", "is required: what your agency knows (\"nothing known\" is an answer)")
	case r.GetState() == triagev1.InformationRequestState_ANSWERED:
		return nil, status.Error(codes.FailedPrecondition, "information request "+r.GetId()+" was answered at "+r.GetAnsweredAt().AsTime().Format(time.RFC3339)+" by "+r.GetAnsweredBy())
	}
	f.answered++
	r.State, r.Answer, r.AnsweredBy, r.AnsweredAt, r.Overdue = triagev1.InformationRequestState_ANSWERED, req.GetAnswer(), f.whoami(ctx), ts(fixtureNow), false
	return &triagev1.AnswerInformationRequestResponse{Request: proto.Clone(r).(*triagev1.InformationRequest)}, nil
}

func (f *fakeTriage) ListDisagreements(ctx context.Context, req *triagev1.ListDisagreementsRequest, _ ...grpc.CallOption) (*triagev1.ListDisagreementsResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	return &triagev1.ListDisagreementsResponse{Disagreements: f.disagreementsOf(req.GetReferralId(), req.GetPartnership(), req.GetOpenOnly())}, nil
}

// changeDisagreement checks a change as the service does: found, the version expected,
// still open.
func (f *fakeTriage) changeDisagreement(id string, expected int64) (*triagev1.Disagreement, error) {
	d, ok := f.disagreements[id]
	switch {
	case f.disagreeErr != nil:
		return nil, f.disagreeErr
	case !ok:
		return nil, status.Error(codes.NotFound, "no disagreement "+id)
	case expected > 0 && expected != d.GetVersion():
		return nil, status.Error(codes.Aborted, fmt.Sprintf("disagreement %s changed since you loaded it (version %d, now %d); reload it and try again", id, expected, d.GetVersion()))
	case d.GetResolved():
		return nil, status.Error(codes.FailedPrecondition, "disagreement "+id+" was resolved")
	}
	return d, nil
}

func (f *fakeTriage) EscalateDisagreement(ctx context.Context, req *triagev1.EscalateDisagreementRequest, _ ...grpc.CallOption) (*triagev1.EscalateDisagreementResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.changeDisagreement(req.GetDisagreementId(), req.GetExpectedVersion())
	switch {
	case err != nil:
		return nil, err
	case req.GetOutcome() == "":
		return nil, invalid("outcome", "is required: what the current stage concluded, and why it goes further")
	case d.GetStage() >= triagev1.DisagreementStage_PARTNERSHIP:
		return nil, status.Error(codes.FailedPrecondition, "disagreement "+d.GetId()+" is at the partnership, the last stage; resolve it with the partnership's outcome")
	}
	f.escalated++
	if n := len(d.Steps); n > 0 {
		d.Steps[n-1].EndedAt, d.Steps[n-1].Outcome, d.Steps[n-1].Actor = ts(fixtureNow), req.GetOutcome(), f.whoami(ctx)
	}
	d.Stage++
	d.StageDue = ts(fixtureNow.Add(72 * time.Hour))
	d.Steps = append(d.Steps, &triagev1.DisagreementStep{Stage: d.Stage, StartedAt: ts(fixtureNow), Due: d.StageDue})
	d.Version++
	return &triagev1.EscalateDisagreementResponse{Disagreement: proto.Clone(d).(*triagev1.Disagreement)}, nil
}

func (f *fakeTriage) ResolveDisagreement(ctx context.Context, req *triagev1.ResolveDisagreementRequest, _ ...grpc.CallOption) (*triagev1.ResolveDisagreementResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.changeDisagreement(req.GetDisagreementId(), req.GetExpectedVersion())
	switch {
	case err != nil:
		return nil, err
	case req.GetResolution() == "":
		return nil, invalid("resolution", "is required: what was agreed")
	}
	f.resolved++
	if n := len(d.Steps); n > 0 {
		d.Steps[n-1].EndedAt, d.Steps[n-1].Outcome, d.Steps[n-1].Actor = ts(fixtureNow), req.GetResolution(), f.whoami(ctx)
	}
	d.Resolved, d.Resolution, d.ResolvedAt, d.StageDue = true, req.GetResolution(), ts(fixtureNow), nil
	d.Version++
	return &triagev1.ResolveDisagreementResponse{Disagreement: proto.Clone(d).(*triagev1.Disagreement)}, nil
}

func (f *fakeTriage) GetDashboard(ctx context.Context, req *triagev1.GetDashboardRequest, _ ...grpc.CallOption) (*triagev1.GetDashboardResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	changes := f.levelChanges
	f.mu.Unlock()
	return &triagev1.GetDashboardResponse{From: ts(fixtureNow.AddDate(0, 0, -90)), To: ts(fixtureNow), Referrals: 412,
		BySourceAgency:                    []*triagev1.Tally{{Label: "south-wales-police", Count: 250}, {Label: "=cmd|' /C calc'!A0", Count: 1}, {Label: "cardiff-schools", Count: 90}},
		DecidedWithinOneWorkingDayPercent: 93.5, MedianMinutesToDecision: 212, WithinRagTimePercent: 88.1,
		RagDistribution:   []*triagev1.Tally{{Label: "RED", Count: 40}, {Label: "AMBER", Count: 150}, {Label: "GREEN", Count: 222}},
		OutcomesByLevel:   []*triagev1.LevelOutcomes{{Level: rulesv1.Level_LEVEL_4, Outcomes: []*triagev1.Tally{{Label: "SECTION_47_ENQUIRY", Count: 20}}}},
		ReReferralPercent: 21.7, ReReferralAfterNfaPercent: 9.2, StepUps: 12 + changes, StepDowns: 30,
		LeadProfessionalsNamed: 37, LeadProfessionalPercent: 42.5,
		AcknowledgementTimes:   []*triagev1.AgencyTurnaround{{Agency: "police", Count: 200, MedianMinutes: 14, OnTimePercent: 97}},
		ReferralsByWeek:        []*triagev1.Tally{{Label: "2026-W45", Count: 31}, {Label: "2026-W46", Count: 35}},
		EncompassNotifications: 44, EncompassOnTimePercent: 100}, nil
}

func invalid(field, desc string) error {
	st, _ := status.New(codes.InvalidArgument, "the request has 1 invalid field").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}}})
	return st.Err()
}

type fakeRules struct {
	rulesv1.RulesServiceClient
	activated []string
	// activateErr, when set, is returned by ActivatePack.
	activateErr error
}

func (f *fakeRules) ListPacks(ctx context.Context, req *rulesv1.ListPacksRequest, _ ...grpc.CallOption) (*rulesv1.ListPacksResponse, error) {
	packs := []*rulesv1.Pack{
		{Id: "p2", Partnership: req.GetPartnership(), Version: "2026.11.2", Description: "Raise DASH medium to amber", Source: "version: 2026.11.2\nrules:\n  - id: dash-medium\n    rag: AMBER\n", UploadedBy: "user:bob", UploadedAt: ts(fixtureNow)},
		{Id: "p1", Partnership: req.GetPartnership(), Version: "2026.11.1", Description: "Initial", Active: true, ActivatedBy: "user:bob", Source: "version: 2026.11.1\nrules:\n  - id: dash-medium\n    rag: GREEN\n", UploadedAt: ts(fixtureNow.AddDate(0, 0, -7))},
	}
	if !req.GetIncludeSource() {
		// As the rules service does: the YAML only when asked for.
		for _, p := range packs {
			p.Source = ""
		}
	}
	return &rulesv1.ListPacksResponse{Packs: packs}, nil
}

func (f *fakeRules) ReplayPack(ctx context.Context, req *rulesv1.ReplayPackRequest, _ ...grpc.CallOption) (*rulesv1.ReplayPackResponse, error) {
	return &rulesv1.ReplayPackResponse{Referrals: 1000, Changed: 41, RagChanged: 41,
		Examples: []*rulesv1.ReplayChange{{ReferralId: amberCaseID, Before: &rulesv1.Outcome{Rag: rulesv1.Rag_RAG_GREEN}, After: &rulesv1.Outcome{Rag: rulesv1.Rag_RAG_AMBER}}}}, nil
}

func (f *fakeRules) ActivatePack(ctx context.Context, req *rulesv1.ActivatePackRequest, _ ...grpc.CallOption) (*rulesv1.ActivatePackResponse, error) {
	if f.activateErr != nil {
		return nil, f.activateErr
	}
	f.activated = append(f.activated, req.GetPackId())
	return &rulesv1.ActivatePackResponse{}, nil
}

type fakeNotify struct {
	notifyv1.NotifyServiceClient
	// extra are listed after the fixture's notifications.
	extra   []*notifyv1.Notification
	retried []string
	// retryErr, when set, is returned by RetryNotification.
	retryErr error
	// approved and rejected are the change ids decided, with the reason given; decideErr,
	// when set, is returned by both.
	approved, rejected []string
	decideErr          error
}

func (f *fakeNotify) ListAgencies(ctx context.Context, req *notifyv1.ListAgenciesRequest, _ ...grpc.CallOption) (*notifyv1.ListAgenciesResponse, error) {
	return &notifyv1.ListAgenciesResponse{Agencies: []*notifyv1.Agency{
		{Id: "rct-csc", Partnership: req.GetPartnership(), Name: "Children's Services duty", Roles: []string{"childrens_social_care"},
			Channel: notifyv1.ChannelKind_WEBHOOK, Url: "https://csc.example/hook", HasSecret: true},
		{Id: "south-wales-police", Partnership: req.GetPartnership(), Name: "SWP PPU", Roles: []string{"police"},
			Channel: notifyv1.ChannelKind_NATS, Subject: "mash.notify.south-wales-police"},
	}}, nil
}

func (f *fakeNotify) ListDirectoryChanges(ctx context.Context, req *notifyv1.ListDirectoryChangesRequest, _ ...grpc.CallOption) (*notifyv1.ListDirectoryChangesResponse, error) {
	change := func(id, by string, state notifyv1.DirectoryChangeState) *notifyv1.DirectoryChange {
		return &notifyv1.DirectoryChange{Id: id, Partnership: req.GetPartnership(), AgencyId: "rct-csc", State: state, Reason: "new case system",
			Changes: []*notifyv1.FieldChange{{Field: "url", Before: "https://csc.example/hook", After: "https://new-csc.example/hook"},
				{Field: "secret", Before: "(current secret)", After: "(new secret)"}},
			ProposedBy: by, ProposedByRole: "manager", ProposedFrom: "203.0.113.5 via 127.0.0.1", ProposedAt: ts(fixtureNow), ExpiresAt: ts(fixtureNow.Add(72 * time.Hour))}
	}
	old := change("c-old", "client:ops (rct-mash, admin)", notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_APPROVED)
	old.DecidedBy, old.DecidedFrom, old.PreviousContactNoticeState = "user:manager2", "198.51.100.4", "DELIVERED"
	return &notifyv1.ListDirectoryChangesResponse{Changes: []*notifyv1.DirectoryChange{
		change("c-own", "user:manager1", notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_PENDING),
		change("c-other", "client:ops (rct-mash, admin)", notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_PENDING), old}}, nil
}

func (f *fakeNotify) GetAckDeadlines(ctx context.Context, req *notifyv1.GetAckDeadlinesRequest, _ ...grpc.CallOption) (*notifyv1.GetAckDeadlinesResponse, error) {
	return &notifyv1.GetAckDeadlinesResponse{Partnership: req.GetPartnership(), RedAckMinutes: 60,
		Deadlines: []*notifyv1.AckDeadline{{Role: "police", Rag: "RED", Within: "30m"}},
		Defaults:  []*notifyv1.AckDeadline{{Role: "school_dsl", Rag: "*", Within: "school-day"}, {Role: "*", Rag: "RED", Within: "60m"}}}, nil
}

func (f *fakeNotify) ApproveDirectoryChange(ctx context.Context, req *notifyv1.ApproveDirectoryChangeRequest, _ ...grpc.CallOption) (*notifyv1.ApproveDirectoryChangeResponse, error) {
	if f.decideErr != nil {
		return nil, f.decideErr
	}
	f.approved = append(f.approved, req.GetChangeId()+": "+req.GetReason())
	return &notifyv1.ApproveDirectoryChangeResponse{}, nil
}

func (f *fakeNotify) RejectDirectoryChange(ctx context.Context, req *notifyv1.RejectDirectoryChangeRequest, _ ...grpc.CallOption) (*notifyv1.RejectDirectoryChangeResponse, error) {
	if f.decideErr != nil {
		return nil, f.decideErr
	}
	f.rejected = append(f.rejected, req.GetChangeId()+": "+req.GetReason())
	return &notifyv1.RejectDirectoryChangeResponse{}, nil
}

func (f *fakeNotify) ListNotifications(ctx context.Context, req *notifyv1.ListNotificationsRequest, _ ...grpc.CallOption) (*notifyv1.ListNotificationsResponse, error) {
	return &notifyv1.ListNotificationsResponse{Notifications: append([]*notifyv1.Notification{
		{Id: "n-failed", ReferralId: "0192a3b4-0000-7000-8000-000000000001", Reference: "MASH-2026-000001", Agency: "housing", Role: "housing",
			Kind: notifyv1.NotificationKind_ACTION, State: notifyv1.NotificationState_FAILED, Attempts: 8, LastError: "HTTP 503", CreatedAt: ts(fixtureNow)},
		{Id: "n-ok", ReferralId: "0192a3b4-0000-7000-8000-000000000001", Reference: "MASH-2026-000001", Agency: "police",
			Kind: notifyv1.NotificationKind_ACTION, State: notifyv1.NotificationState_ACKNOWLEDGED, Attempts: 1, AcknowledgedAt: ts(fixtureNow), AcknowledgedBy: "duty sergeant"},
	}, f.extra...)}, nil
}

func (f *fakeNotify) RetryNotification(ctx context.Context, req *notifyv1.RetryNotificationRequest, _ ...grpc.CallOption) (*notifyv1.RetryNotificationResponse, error) {
	if f.retryErr != nil {
		return nil, f.retryErr
	}
	f.retried = append(f.retried, req.GetNotificationId())
	return &notifyv1.RetryNotificationResponse{}, nil
}

type fakeAudit struct{ auditv1.AuditServiceClient }

func (fakeAudit) GetTrail(ctx context.Context, req *auditv1.GetTrailRequest, _ ...grpc.CallOption) (*auditv1.GetTrailResponse, error) {
	return &auditv1.GetTrailResponse{Entries: []*auditv1.AuditEntry{{Seq: 7, EventType: "mash.triage.overridden", OccurredAt: ts(fixtureNow),
		ReferralId: req.GetReferralId(), Actor: "user:alice", ActorRole: "practitioner", Agency: "mash-hub", Decision: "LEVEL_4/RAG_RED"},
		{Seq: 9, IntegrityError: "entry 9: stored decision differ from what the leaf commits to"}}}, nil
}

func (fakeAudit) WhoAccessed(ctx context.Context, req *auditv1.WhoAccessedRequest, _ ...grpc.CallOption) (*auditv1.WhoAccessedResponse, error) {
	return &auditv1.WhoAccessedResponse{Accesses: []*auditv1.AccessRecord{{Seq: 8, OccurredAt: ts(fixtureNow), Actor: "user:alice",
		Role: "practitioner", Agency: "mash-hub", What: fmt.Sprintf("read: GetCase %s", req.GetReferralId()), Reason: "Strategy meeting prep"}}}, nil
}

// sharingCase is the fixture case decided with consent refused and nothing yet shared.
const sharingCase = "0192a3b4-0000-7000-8000-000000000003"

func (f *fakeTriage) AuthoriseSharing(ctx context.Context, req *triagev1.AuthoriseSharingRequest, _ ...grpc.CallOption) (*triagev1.AuthoriseSharingResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cases[req.GetReferralId()]
	switch {
	case !ok:
		return nil, status.Error(codes.NotFound, "no case")
	case req.GetExpectedVersion() != 0 && req.GetExpectedVersion() != c.GetVersion():
		return nil, status.Error(codes.Aborted, "case changed since you loaded it")
	case c.GetSharingHeld() == "":
		return nil, status.Error(codes.FailedPrecondition, "nothing is held back on this case")
	}
	c.SharingAuthorisation = &triagev1.SharingAuthorisation{LawfulBasis: req.GetLawfulBasis(), Reason: req.GetReason(),
		Ground: "MANAGER_JUDGEMENT", AuthorisedBy: "user:manager1", AuthorisedAt: ts(fixtureNow)}
	c.SharingHeld = ""
	c.Version++
	return &triagev1.AuthoriseSharingResponse{Case: c}, nil
}

func (f *fakeTriage) RevokeSharing(ctx context.Context, req *triagev1.RevokeSharingRequest, _ ...grpc.CallOption) (*triagev1.RevokeSharingResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cases[req.GetReferralId()]
	if !ok || c.GetSharingAuthorisation() == nil {
		return nil, status.Error(codes.FailedPrecondition, "no authorisation to revoke")
	}
	c.SharingAuthorisation, c.SharingHeld = nil, "held"
	c.Version++
	return &triagev1.RevokeSharingResponse{Case: c}, nil
}

// fakeQuality is triage's quality assurance service in memory: two sampled cases, one of
// them the signed-in manager's own decision, and the reviews recorded.
type fakeQuality struct {
	mu      sync.Mutex
	reviews []*triagev1.QualityReview
	callers []string
}

const (
	qaCase  = "0192a3b4-0000-7000-8000-00000000aaaa"
	qaOwn   = "0192a3b4-0000-7000-8000-00000000bbbb"
	qaStart = "2026-11-23"
)

func (f *fakeQuality) ListQualitySample(ctx context.Context, req *triagev1.ListQualitySampleRequest, _ ...grpc.CallOption) (*triagev1.ListQualitySampleResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.callers = append(f.callers, callerOf(ctx))
	reviewed := false
	for _, r := range f.reviews {
		reviewed = reviewed || r.GetReferralId() == qaCase
	}
	at := timestamppb.New(time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC))
	return &triagev1.ListQualitySampleResponse{SamplePercent: 10, Decided: 20, From: req.GetFrom(), To: req.GetTo(), Cases: []*triagev1.QualitySampleCase{
		{ReferralId: qaCase, Reference: "MASH-2026-0000201", Partnership: "cardiff", ChildName: "Alys Test", Level: rulesv1.Level_LEVEL_2,
			RecommendedLevel: rulesv1.Level_LEVEL_3A, DecidedBy: "practitioner1", DecidedAt: at, ReviewedByMe: reviewed, Reviews: int32(len(f.reviews))},
		{ReferralId: qaOwn, Reference: "MASH-2026-0000202", Partnership: "cardiff", ChildName: "Bryn Test", Level: rulesv1.Level_LEVEL_4,
			RecommendedLevel: rulesv1.Level_LEVEL_4, DecidedBy: "manager1", DecidedAt: at, DecidedByMe: true},
	}}, nil
}

func (f *fakeQuality) RecordQualityReview(ctx context.Context, req *triagev1.RecordQualityReviewRequest, _ ...grpc.CallOption) (*triagev1.RecordQualityReviewResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(req.GetLearningPoint()) > 20 {
		st, _ := status.New(codes.InvalidArgument, "the review has 1 invalid field").WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "learningPoint", Description: "is longer than 20 characters"}}})
		return nil, st.Err()
	}
	r := &triagev1.QualityReview{Id: fmt.Sprintf("review-%d", len(f.reviews)+1), ReferralId: req.GetReferralId(), Partnership: "cardiff",
		Verdict: req.GetVerdict(), Reason: req.GetReason(), LearningPoint: req.GetLearningPoint(), Reviewer: "manager1",
		ReviewedAt: timestamppb.New(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))}
	f.reviews = append(f.reviews, r)
	return &triagev1.RecordQualityReviewResponse{Review: r}, nil
}

func (f *fakeQuality) ListQualityReviews(_ context.Context, _ *triagev1.ListQualityReviewsRequest, _ ...grpc.CallOption) (*triagev1.ListQualityReviewsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &triagev1.ListQualityReviewsResponse{Reviews: slices.Clone(f.reviews)}, nil
}

func (f *fakeQuality) GetQualityAgreement(_ context.Context, _ *triagev1.GetQualityAgreementRequest, _ ...grpc.CallOption) (*triagev1.GetQualityAgreementResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := &triagev1.QualityAgreement{Partnership: "cardiff", Period: "2026-11", Reviewed: 3 + int64(len(f.reviews)), Agreed: 2}
	for _, r := range f.reviews {
		if r.GetVerdict() == triagev1.QualityVerdict_AGREE {
			a.Agreed++
		}
	}
	a.AgreementPercent = float64(a.Agreed) * 100 / float64(a.Reviewed)
	return &triagev1.GetQualityAgreementResponse{Periods: []*triagev1.QualityAgreement{a}, Totals: []*triagev1.QualityAgreement{a}}, nil
}

func (f *fakeTriage) ReassignCases(ctx context.Context, req *triagev1.ReassignCasesRequest, _ ...grpc.CallOption) (*triagev1.ReassignCasesResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.GetAssignee() == "user:nobody" {
		return nil, invalid("assignee", "\"user:nobody\" is not a member of staff the hub knows")
	}
	resp := &triagev1.ReassignCasesResponse{}
	for _, id := range req.GetReferralIds() {
		c, ok := f.cases[id]
		if !ok {
			resp.Results = append(resp.Results, &triagev1.ReassignmentResult{ReferralId: id, ErrorCode: "NOT_FOUND", Error: "no case for referral " + id})
			resp.Refused++
			continue
		}
		c.Assignee, c.ClaimExpiresAt = req.GetAssignee(), nil
		c.Version++
		resp.Results = append(resp.Results, &triagev1.ReassignmentResult{ReferralId: id, Case: c})
		resp.Assigned++
	}
	return resp, nil
}

func (f *fakeTriage) NameLeadProfessional(ctx context.Context, req *triagev1.NameLeadProfessionalRequest, _ ...grpc.CallOption) (*triagev1.NameLeadProfessionalResponse, error) {
	f.note(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cases[req.GetReferralId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such case")
	}
	if req.GetAgency() == "nowhere" {
		return nil, invalid("agency", "\"nowhere\" is not in the agency directory")
	}
	c.LeadProfessional = &triagev1.LeadProfessional{Agency: req.GetAgency(), Team: req.GetTeam(), Person: req.GetPerson(), Scope: req.GetScope(),
		NamedBy: f.whoami(ctx), NamedByRole: "practitioner", NamedAt: ts(time.Now())}
	c.Version++
	return &triagev1.NameLeadProfessionalResponse{Cases: []*triagev1.Case{c}}, nil
}
