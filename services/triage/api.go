package triage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// Page sizes.
const (
	defaultPageSize = 50
	maxPageSize     = 200
	historyLimit    = 50
	caseListLimit   = 200
)

type grpcAPI struct {
	triagev1.UnimplementedTriageServiceServer
	svc *Service
}

// hubStaff reports whether the caller works in the hub rather than for a referring or
// partner agency (its system, or its staff signed in to the partner view).
func hubStaff(id auth.Identity) bool { return !id.AgencyScoped() }

// servedPartnerships is the partnership limit of a list query for id: nil when id is not
// limited, else the partnerships it serves (none: an empty, not nil, list).
func servedPartnerships(id auth.Identity) []string {
	ps, all := id.PartnershipScope()
	if all {
		return nil
	}
	return append([]string{}, ps...)
}

func pageSize(n int32) int {
	switch {
	case n <= 0:
		return defaultPageSize
	case n > maxPageSize:
		return maxPageSize
	}
	return int(n)
}

// encodeToken and decodeToken make page tokens opaque: base64 of the last row's sort key.
func encodeToken(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// badToken is what a page token this service did not issue gets.
var badToken = apierr.Violation{Field: "pageToken", Reason: "is not a token this service issued; pass nextPageToken from the previous page unchanged"}

// pageKey is a list's sort key; every one ends in the row's id.
type pageKey interface{ rowID() string }

// decodeToken reads tok into k. It reports false for anything this service could not have
// issued, including a key whose row id is not a UUID: that id goes into the next page's
// query.
func decodeToken(tok string, k pageKey) bool {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	return err == nil && json.Unmarshal(b, k) == nil && isUUIDString(k.rowID())
}

// emit writes an event made by by into the outbox within tx.
func (s *Service) emit(ctx context.Context, tx pgx.Tx, by auth.Actor, subject, partnership, referralID string, version int64, payload proto.Message) error {
	env, raw, err := events.NewEnvelope(subject, partnership, referralID, version, s.now(), by.Event(), payload)
	if err != nil {
		return fmt.Errorf("referral %s: build %s: %w", referralID, subject, err)
	}
	if raw, err = events.Seal(ctx, s.cipher, env); err != nil {
		if errors.Is(err, events.ErrPayloadErased) {
			return apierr.FailedPrecondition(fmt.Sprintf("case %s was erased: nothing more can be recorded about it", referralID))
		}
		return fmt.Errorf("referral %s: %w", referralID, err)
	}
	if err := events.InsertOutbox(ctx, tx, store.Schema, env, raw); err != nil {
		return fmt.Errorf("referral %s: %w", referralID, err)
	}
	return nil
}

// emitCase writes a CaseChanged event for c, made by by.
func (s *Service) emitCase(ctx context.Context, tx pgx.Tx, subject string, c store.Case, by auth.Actor, reason string) error {
	return s.emit(ctx, tx, by, subject, c.Partnership, c.ReferralID, c.Version,
		&eventsv1.CaseChanged{Case: caseToProto(c, s.now()), Actor: by.ID, ActorRole: by.Role, Reason: reason})
}

func (a *grpcAPI) ListQueue(ctx context.Context, req *triagev1.ListQueueRequest) (*triagev1.ListQueueResponse, error) {
	id, err := server.Require(ctx, auth.ReadQueue)
	if err != nil {
		return nil, err
	}
	now := a.svc.now()
	f := store.QueueFilter{Partnership: req.GetPartnership(), Partnerships: servedPartnerships(id), SourceAgency: req.GetSourceAgency(),
		OverdueOnly: req.GetOverdueOnly(), Now: now, Limit: pageSize(req.GetPageSize())}
	var vs []apierr.Violation
	// Cases keep their concerns as category names, so a filter that is not one would match
	// nothing: refused, rather than answered with an empty queue.
	if c := strings.ToUpper(req.GetConcern()); c != "" {
		if v, ok := intakev1.ConcernCategory_value[c]; !ok || v == 0 {
			vs = append(vs, apierr.Violation{Field: "concern", Reason: "is not a concern category"})
		}
		f.Concern = c
	}
	for i, st := range req.GetStates() {
		if _, ok := triagev1.CaseState_name[int32(st)]; !ok || st == triagev1.CaseState_CASE_STATE_UNSPECIFIED {
			vs = append(vs, apierr.Violation{Field: fmt.Sprintf("states[%d]", i), Reason: "is not a case state"})
		}
		f.States = append(f.States, int16(st))
	}
	if len(f.States) == 0 {
		f.States = []int16{store.StateAwaitingRules, store.StateAwaitingDecision}
	}
	for i, r := range req.GetRags() {
		if _, ok := rulesv1.Rag_name[int32(r)]; !ok || r == rulesv1.Rag_RAG_UNSPECIFIED {
			vs = append(vs, apierr.Violation{Field: fmt.Sprintf("rags[%d]", i), Reason: "is not a RAG rating"})
		}
		f.RAGs = append(f.RAGs, int16(r))
	}
	for i, l := range req.GetLevels() {
		if _, ok := rulesv1.Level_name[int32(l)]; !ok || l == rulesv1.Level_LEVEL_UNSPECIFIED {
			vs = append(vs, apierr.Violation{Field: fmt.Sprintf("levels[%d]", i), Reason: "is not an intervention level"})
		}
		f.Levels = append(f.Levels, int16(l))
	}
	switch as := req.GetAssignee(); as {
	case "":
	case "none":
		f.Unassigned = true
	case "me":
		f.Assignee = id.ClientID
	default:
		f.Assignee = as
	}
	if tok := req.GetPageToken(); tok != "" {
		var k queueToken
		if decodeToken(tok, &k) {
			f.After = &store.QueueKey{RAGDue: k.RAGDue, DecisionDue: k.DecisionDue, ReferralID: k.ReferralID}
		} else {
			vs = append(vs, badToken)
		}
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	pool := a.svc.store.Pool()
	cases, err := store.ListQueue(ctx, pool, f)
	if err != nil {
		return nil, err
	}
	counts, err := store.QueueCounts(ctx, pool, f, slices.Contains(f.States, store.StateClosed))
	if err != nil {
		return nil, err
	}
	if len(cases) > 0 {
		// One access entry per page, naming every child the page shows; it commits before
		// the page leaves.
		listed := make([]access.Listed, len(cases))
		for i, c := range cases {
			listed[i] = access.Listed{ReferralID: c.ReferralID, ChildID: c.ChildID}
		}
		if err := access.Record(ctx, pool, store.Schema, a.svc.relay.Wake, a.svc.cipher, id, access.Read{Type: eventsv1.SubjectAccessQueue, Action: "ListQueue",
			Partnership: f.Partnership, Listed: listed}, now); err != nil {
			return nil, err
		}
	}
	resp := &triagev1.ListQueueResponse{}
	for _, c := range cases {
		resp.Cases = append(resp.Cases, caseToProto(c, now))
	}
	if len(cases) == f.Limit {
		k := store.KeyOf(cases[len(cases)-1])
		resp.NextPageToken = encodeToken(queueToken{RAGDue: k.RAGDue, DecisionDue: k.DecisionDue, ReferralID: k.ReferralID})
	}
	// Every open state is listed, with zeros, so a client can draw the tabs as they are.
	got := map[int16]store.StateCount{}
	for _, c := range counts {
		got[c.State] = c
	}
	states := []int16{store.StateAwaitingRules, store.StateAwaitingDecision, store.StateDecided}
	if slices.Contains(f.States, store.StateClosed) {
		states = append(states, store.StateClosed)
	}
	for _, st := range states {
		resp.Counts = append(resp.Counts, &triagev1.QueueCount{State: triagev1.CaseState(st), Count: got[st].Count, Overdue: got[st].Overdue})
	}
	return resp, nil
}

// listedCases is what a page of records kept by referral (information requests,
// disagreements) shows of children, for its access entry: for each of referralIDs, in
// order, the referral and its case's child record (the referral alone while it has none).
func listedCases(ctx context.Context, q store.Querier, referralIDs []string) ([]access.Listed, error) {
	children, err := store.CaseChildren(ctx, q, referralIDs)
	if err != nil {
		return nil, err
	}
	listed := make([]access.Listed, len(referralIDs))
	for i, r := range referralIDs {
		listed[i] = access.Listed{ReferralID: r, ChildID: children[r]}
	}
	return listed, nil
}

type queueToken struct {
	RAGDue      *time.Time `json:"r,omitempty"`
	DecisionDue *time.Time `json:"d,omitempty"`
	ReferralID  string     `json:"i"`
}

func (k *queueToken) rowID() string { return k.ReferralID }

func isUUIDString(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func (a *grpcAPI) GetCase(ctx context.Context, req *triagev1.GetCaseRequest) (*triagev1.GetCaseResponse, error) {
	id, err := server.Require(ctx, auth.ReadCases)
	if err != nil {
		return nil, err
	}
	if req.GetReferralId() == "" {
		return nil, invalid("referralId", "is required")
	}
	s := a.svc
	pool := s.store.Pool()
	c, err := store.GetCase(ctx, pool, req.GetReferralId())
	if err == nil && !id.Serves(c.Partnership) {
		err = store.ErrNotFound // another partnership's case is as unknown as a missing one
	}
	if err != nil {
		return nil, notFoundAs(err, caseNotFound(req.GetReferralId()))
	}
	// The trace of this read commits before the record leaves.
	if err := access.Record(ctx, pool, store.Schema, s.relay.Wake, s.cipher, id, access.Read{Type: eventsv1.SubjectAccessCase, Action: "GetCase",
		Partnership: c.Partnership, ReferralID: c.ReferralID, ChildID: c.ChildID}, s.now()); err != nil {
		return nil, err
	}
	now := s.now()
	resp := &triagev1.GetCaseResponse{Case: caseToProto(c, now)}
	history, err := store.ChildHistory(ctx, pool, c.ChildID, c.ReferralID, c.ReceivedAt, historyLimit)
	if err != nil {
		return nil, err
	}
	for _, h := range history {
		resp.History = append(resp.History, historyToProto(h))
	}
	family, err := store.FamilyGroup(ctx, pool, c.SourceAgency, c.FamilyGroup, c.ReferralID, caseListLimit)
	if err != nil {
		return nil, err
	}
	for _, f := range family {
		if id.Serves(f.Partnership) {
			resp.Family = append(resp.Family, caseToProto(f, now))
		}
	}
	resp.Referral, resp.ReferralUnavailable = s.referralFromIntake(ctx, c.ReferralID)
	notices, err := store.Notices(ctx, pool, c.ReferralID)
	if err != nil {
		return nil, err
	}
	for _, n := range notices {
		resp.Notices = append(resp.Notices, noticeToProto(n))
	}
	discussions, err := store.StrategyDiscussions(ctx, pool, c.ReferralID)
	if err != nil {
		return nil, err
	}
	for _, d := range discussions {
		resp.StrategyDiscussions = append(resp.StrategyDiscussions, strategyToProto(d))
	}
	requests, err := store.ListInformationRequests(ctx, pool, store.InfoFilter{ReferralID: c.ReferralID, Limit: caseListLimit})
	if err != nil {
		return nil, err
	}
	for _, r := range requests {
		resp.InformationRequests = append(resp.InformationRequests, infoToProto(r, now))
	}
	disagreements, err := store.ListDisagreements(ctx, pool, store.DisagreementFilter{ReferralID: c.ReferralID, Limit: caseListLimit})
	if err != nil {
		return nil, err
	}
	for _, d := range disagreements {
		resp.Disagreements = append(resp.Disagreements, disagreementToProto(d))
	}
	if resp.QualityReviews, err = caseReviews(ctx, pool, c.ReferralID, caseListLimit); err != nil {
		return nil, err
	}
	if c.DecisionVersion > 0 {
		resp.Decision = s.caseDecision(ctx, c)
	}
	return resp, nil
}

// caseDecision is the decision the case holds, from triage's own copy (so a practitioner
// reads their decision at once), else from the rules service.
func (s *Service) caseDecision(ctx context.Context, c store.Case) *rulesv1.Decision {
	if rec, err := store.GetDecisionRecord(ctx, s.store.Pool(), c.ReferralID); err == nil && rec.Decision != nil {
		var d rulesv1.Decision
		if proto.Unmarshal(rec.Decision, &d) == nil && d.GetVersion() == c.DecisionVersion {
			return &d
		}
	}
	return s.decisionFromRules(ctx, c.ReferralID)
}

// decisionFromRules fetches the full decision (fired rules, reasons, facts) from the rules
// service as the caller. The case itself is what practitioners need to act; if rules cannot
// answer, the case is returned without the decision rather than not at all.
func (s *Service) decisionFromRules(ctx context.Context, referralID string) *rulesv1.Decision {
	client, err := s.rulesClient()
	if err != nil {
		s.log.Warn("rules service unreachable; case returned without its decision", zap.String("referral_id", referralID), zap.Error(err))
		return nil
	}
	resp, err := client.GetDecision(peers.AsCaller(ctx), &rulesv1.GetDecisionRequest{ReferralId: referralID})
	if err != nil {
		s.log.Warn("rules service did not return the decision; case returned without it", zap.String("referral_id", referralID), zap.Error(err))
		return nil
	}
	return resp.GetDecision()
}

// referralFromIntake fetches the referral itself (child, concerns, household, consent,
// referrer, narrative) from intake as the caller, so intake checks and records the read as
// its own. Like the decision, it is best effort: the case is what practitioners act on, and
// why the referral is missing is said rather than the case withheld.
func (s *Service) referralFromIntake(ctx context.Context, referralID string) (*intakev1.Referral, string) {
	if s.peers == nil {
		return nil, "intake is not reachable from triage"
	}
	conn, err := s.peers.Conn("intake")
	if err != nil {
		s.log.Warn("intake unreachable; case returned without its referral", zap.String("referral_id", referralID), zap.Error(err))
		return nil, "intake is not reachable from triage"
	}
	resp, err := intakev1.NewIntakeServiceClient(conn).GetReferral(peers.AsCaller(ctx), &intakev1.GetReferralRequest{Id: referralID})
	if err != nil {
		s.log.Warn("intake did not return the referral; case returned without it", zap.String("referral_id", referralID), zap.Error(err))
		return nil, "intake did not return the referral: " + status.Code(err).String()
	}
	return resp.GetReferral(), ""
}

func (s *Service) rulesClient() (rulesv1.RulesServiceClient, error) {
	conn, err := s.peers.Conn("rules")
	if err != nil {
		return nil, err
	}
	return rulesv1.NewRulesServiceClient(conn), nil
}

// changeCase runs fn on the locked case in one transaction with the event fn returns, then
// wakes the relay. fn returns the case after the change, the event subject (empty: nothing
// changed) and the event's reason.
func (s *Service) changeCase(ctx context.Context, referralID string, id auth.Identity,
	fn func(tx pgx.Tx, c store.Case) (store.Case, string, string, error)) (store.Case, error) {
	var out store.Case
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
		c, err := store.LockCase(ctx, tx, referralID)
		if err == nil && !id.Serves(c.Partnership) {
			err = store.ErrNotFound
		}
		if err != nil {
			return notFoundAs(err, caseNotFound(referralID))
		}
		// Another process may still hold the case's key for a minute after an erasure.
		if e, err := store.ErasureOf(ctx, tx, referralID); err != nil || e != nil {
			if err == nil {
				err = caseErased(referralID)
			}
			return err
		}
		after, subject, reason, err := fn(tx, c)
		if err != nil {
			return err
		}
		out = after
		if subject == "" {
			return nil
		}
		return s.emitCase(ctx, tx, subject, after, staff(id), reason)
	})
	if err != nil {
		return store.Case{}, err
	}
	s.relay.Wake()
	return out, nil
}

func (a *grpcAPI) ClaimCase(ctx context.Context, req *triagev1.ClaimCaseRequest) (*triagev1.ClaimCaseResponse, error) {
	id, err := server.Require(ctx, auth.ClaimCases)
	if err != nil {
		return nil, err
	}
	s := a.svc
	now := s.now()
	c, err := s.changeCase(ctx, req.GetReferralId(), id, func(tx pgx.Tx, c store.Case) (store.Case, string, string, error) {
		if err := checkVersion(c, req.GetExpectedVersion()); err != nil {
			return c, "", "", err
		}
		if c.State == store.StateClosed {
			return c, "", "", caseClosed(c)
		}
		if c.ClaimLive(now) && c.Assignee != id.ClientID {
			return c, "", "", claimedByOther(c)
		}
		if c.Assigned() {
			return c, "", "", nil // assigned to the caller: it holds already, with no expiry to renew
		}
		until := now.Add(s.claimFor).UTC()
		after, err := store.SetClaim(ctx, tx, c.ReferralID, id.ClientID, &until)
		return after, EventClaimed, "", err
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("case claimed", zap.String("referral_id", c.ReferralID), zap.String("client", id.ClientID))
	return &triagev1.ClaimCaseResponse{Case: caseToProto(c, now)}, nil
}

func (a *grpcAPI) ReleaseCase(ctx context.Context, req *triagev1.ReleaseCaseRequest) (*triagev1.ReleaseCaseResponse, error) {
	id, err := server.Require(ctx, auth.ClaimCases)
	if err != nil {
		return nil, err
	}
	s := a.svc
	now := s.now()
	c, err := s.changeCase(ctx, req.GetReferralId(), id, func(tx pgx.Tx, c store.Case) (store.Case, string, string, error) {
		if err := checkVersion(c, req.GetExpectedVersion()); err != nil {
			return c, "", "", err
		}
		if c.Assignee == "" {
			return c, "", "", nil // nobody holds it: releasing is already done
		}
		if c.ClaimLive(now) && c.Assignee != id.ClientID && id.Role != auth.RoleManager {
			return c, "", "", claimedByOther(c)
		}
		reason := ""
		if c.Assignee != id.ClientID {
			reason = "released " + c.Assignee + "'s claim"
		}
		after, err := store.SetClaim(ctx, tx, c.ReferralID, "", nil)
		return after, EventReleased, reason, err
	})
	if err != nil {
		return nil, err
	}
	return &triagev1.ReleaseCaseResponse{Case: caseToProto(c, now)}, nil
}

// checkStrategy is RecordStrategyDiscussion's check of its request.
func (s *Service) checkStrategy(req *triagev1.RecordStrategyDiscussionRequest) []apierr.Violation {
	now := s.now().UTC()
	var vs []apierr.Violation
	if req.GetHeldAt() == nil {
		vs = append(vs, apierr.Violation{Field: "heldAt", Reason: "is required: when the discussion took place"})
	} else if req.GetHeldAt().AsTime().After(now.Add(5 * time.Minute)) {
		vs = append(vs, apierr.Violation{Field: "heldAt", Reason: "is in the future: record a discussion once it has taken place"})
	}
	var participants []string
	for _, p := range req.GetParticipants() {
		if p = strings.TrimSpace(p); p != "" {
			participants = append(participants, p)
		}
	}
	if len(participants) == 0 {
		vs = append(vs, apierr.Violation{Field: "participants", Reason: "is required: who took part, as \"name (agency, role)\""})
	}
	if strings.TrimSpace(req.GetOutcome()) == "" {
		vs = append(vs, apierr.Violation{Field: "outcome", Reason: "is required: what the discussion decided"})
	}
	if req.GetReferralId() == "" {
		vs = append(vs, apierr.Violation{Field: "referralId", Reason: "is required"})
	}
	return vs
}

func (a *grpcAPI) RecordStrategyDiscussion(ctx context.Context, req *triagev1.RecordStrategyDiscussionRequest) (*triagev1.RecordStrategyDiscussionResponse, error) {
	id, err := server.Require(ctx, auth.DecideCases)
	if err != nil {
		return nil, err
	}
	s := a.svc
	now := s.now().UTC()
	if vs := s.checkStrategy(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	var participants []string
	for _, p := range req.GetParticipants() {
		if p = strings.TrimSpace(p); p != "" {
			participants = append(participants, p)
		}
	}
	d := store.StrategyDiscussion{ID: uuid.Must(uuid.NewV7()).String(), ReferralID: req.GetReferralId(),
		HeldAt: req.GetHeldAt().AsTime().UTC(), Participants: participants, Outcome: req.GetOutcome(),
		Section47: req.GetSection_47(), RecordedBy: id.Actor(), RecordedAt: now}
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		c, err := store.LockCase(ctx, tx, req.GetReferralId())
		if err != nil {
			return notFoundAs(err, caseNotFound(req.GetReferralId()))
		}
		if err := store.InsertStrategyDiscussion(ctx, tx, d); err != nil {
			return err
		}
		return s.emit(ctx, tx, staff(id), EventStrategyRecorded, c.Partnership, c.ReferralID, c.Version,
			&eventsv1.StrategyDiscussionRecorded{ReferralId: c.ReferralID, Discussion: strategyToProto(d), RecordedByRole: string(id.Role)})
	})
	if err != nil {
		return nil, err
	}
	s.relay.Wake()
	return &triagev1.RecordStrategyDiscussionResponse{Discussion: strategyToProto(d)}, nil
}

// checkClose is CloseCase's check of its request.
func checkClose(req *triagev1.CloseCaseRequest) []apierr.Violation {
	if _, ok := triagev1.CaseOutcome_name[int32(req.GetOutcome())]; !ok || req.GetOutcome() == triagev1.CaseOutcome_CASE_OUTCOME_UNSPECIFIED {
		return []apierr.Violation{{Field: "outcome", Reason: "is required: every referral gets an outcome, even advice and signposting"}}
	}
	return nil
}

func (a *grpcAPI) CloseCase(ctx context.Context, req *triagev1.CloseCaseRequest) (*triagev1.CloseCaseResponse, error) {
	id, err := server.Require(ctx, auth.DecideCases)
	if err != nil {
		return nil, err
	}
	if vs := checkClose(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	now := s.now()
	c, err := s.changeCase(ctx, req.GetReferralId(), id, func(tx pgx.Tx, c store.Case) (store.Case, string, string, error) {
		if err := checkVersion(c, req.GetExpectedVersion()); err != nil {
			return c, "", "", err
		}
		switch {
		case c.State == store.StateClosed:
			return c, "", "", caseClosed(c)
		case c.State != store.StateDecided:
			return c, "", "", apierr.FailedPrecondition(fmt.Sprintf("case %s is %s: a case is closed only once a practitioner has decided it",
				c.ReferralID, triagev1.CaseState(c.State)))
		case c.ClaimLive(now) && c.Assignee != id.ClientID && id.Role != auth.RoleManager:
			return c, "", "", claimedByOther(c)
		}
		after, err := store.CloseCase(ctx, tx, c.ReferralID, int16(req.GetOutcome()), req.GetNote(), id.Actor(), now.UTC())
		return after, EventClosed, req.GetOutcome().String(), err
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("case closed", zap.String("referral_id", c.ReferralID), zap.String("outcome", req.GetOutcome().String()))
	return &triagev1.CloseCaseResponse{Case: caseToProto(c, now)}, nil
}
