package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/text"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/share"
	"github.com/mash-hub/mash/services/notify/store"
)

// errNotYetReceived: a decision arrived before its referral; the consumer retries it.
var errNotYetReceived = errors.New("the referral has not reached notify yet")

// handlers apply each event inside the consumer's transaction, one typed handler per
// subject: the inbox row, the notifications it creates and their events commit together, so
// a redelivery creates none. A subject with no handler is an error (the consumer's filter
// takes only these).
func (s *Service) handlers() *events.Router {
	r := events.NewRouter()
	events.On(r, func(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.ReferralReceived) error {
		return s.onReceived(ctx, tx, ev.GetReferral())
	}, subjectReceived)
	events.On(r, func(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.RecommendationMade) error {
		return s.onRecommendation(ctx, tx, ev.GetDecision())
	}, subjectRecommended)
	events.On(r, func(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.DecisionMade) error {
		return s.onDecision(ctx, tx, ev.GetDecision())
	}, subjectDecisionMade)
	events.On(r, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.SharingChanged) error {
		return s.onSharingChanged(ctx, tx, env.GetType(), ev)
	}, subjectSharingAuthorised, subjectSharingRevoked, subjectConsentChanged)
	events.On(r, func(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.CaseChanged) error {
		return s.onClosed(ctx, tx, ev.GetCase().GetReferralId(), ev.GetCase().GetOutcome().String())
	}, subjectCaseClosed)
	events.On(r, func(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.InformationRequestChanged) error {
		return s.onResearchRequested(ctx, tx, ev.GetRequest())
	}, subjectResearchRequested)
	events.On(r, func(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.InformationRequestChanged) error {
		return s.onResearchAnswered(ctx, tx, ev.GetRequest())
	}, subjectResearchAnswered)
	events.On(r, func(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.DisagreementChanged) error {
		return s.onDisagreementStage(ctx, tx, ev.GetDisagreement())
	}, subjectDisagreementRaised, subjectDisagreementEscalated)
	events.On(r, func(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.DisagreementChanged) error {
		return s.onDisagreementResolved(ctx, tx, ev.GetDisagreement())
	}, subjectDisagreementResolved)
	events.On(r, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.LeadProfessionalNamed) error {
		return s.onLeadProfessional(ctx, tx, env.GetEventId(), ev)
	}, subjectLeadProfessionalNamed)
	r.Default = func(_ context.Context, _ pgx.Tx, env *eventsv1.Envelope) error {
		return fmt.Errorf("notify does not handle %s", env.GetType())
	}
	return r
}

// onReceived keeps the referral, acknowledges it to the referring agency, and applies
// Operation Encompass.
func (s *Service) onReceived(ctx context.Context, tx pgx.Tx, ref *intakev1.Referral) error {
	raw, err := proto.Marshal(ref)
	if err != nil {
		return fmt.Errorf("referral %s: encode: %w", ref.GetId(), err)
	}
	if err := store.InsertReferral(ctx, tx, store.Referral{ID: ref.GetId(), Reference: ref.GetReference(), Partnership: ref.GetPartnership(),
		Agency: ref.GetAgency(), AgencyKind: ref.GetAgencyKind(), ReceivedAt: ref.GetReceivedAt().AsTime(), Proto: raw}); err != nil {
		return err
	}
	if err := store.InsertSharing(ctx, tx, ref.GetId(), ref.GetSubmission().GetConsent().GetStatus().String()); err != nil {
		return err
	}
	dir, err := s.directoryOf(ctx, tx, ref.GetPartnership())
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if err := s.notifyReferrer(ctx, tx, nil, dir, ref, notifyv1.NotificationKind_RECEIPT, nil, "receipt:"+ref.GetId(), now); err != nil {
		return err
	}
	applies, incident := share.EncompassApplies(ref)
	if !applies {
		return nil
	}
	school, err := dir.partnership.SchoolCalendar()
	if err != nil {
		return fmt.Errorf("referral %s: school calendar of %s: %w", ref.GetId(), dir.partnership.ID, err)
	}
	due := share.EncompassDeadline(school, now)
	leads := directory.Resolve(dir.agencies, directory.RoleSchoolDSL, ref.GetSubmission().GetChild().GetSchool())
	if len(leads) == 0 {
		return s.unroutable(ctx, tx, dir, ref, nil, nil, directory.RoleSchoolDSL, notifyv1.NotificationKind_ENCOMPASS, "encompass:"+ref.GetId(), now)
	}
	for _, a := range leads {
		if _, err := s.create(ctx, tx, spec{dir: dir, ref: ref, agency: a, role: directory.RoleSchoolDSL, kind: notifyv1.NotificationKind_ENCOMPASS,
			key: "encompass:" + ref.GetId() + ":" + a.ID, rag: "AMBER", ackDue: due, incidentAt: incident, now: now}); err != nil {
			return err
		}
	}
	return nil
}

// immediateDangerRoles are told on the rules' recommendation alone when it says a child is
// in immediate danger (level 4, Red): a strategy discussion cannot wait for the queue.
var immediateDangerRoles = []string{"childrens_social_care", "police"}

// awaitingNote marks what is shared on a recommendation alone.
const awaitingNote = "recommendation: awaiting the hub's decision"

// immediateDanger reports whether a recommendation is shared before a person decides.
func immediateDanger(o *rulesv1.Outcome) bool {
	return o.GetLevel() == rulesv1.Level_LEVEL_4 && o.GetRag() == rulesv1.Rag_RAG_RED
}

// onRecommendation shares the rules' recommendation only in immediate danger, with police
// and children's social care, marked as awaiting the hub's decision; anything else waits for
// a person's decision. The referrer is never told a recommendation.
func (s *Service) onRecommendation(ctx context.Context, tx pgx.Tx, d *rulesv1.Decision) error {
	if !immediateDanger(d.GetCurrent()) {
		return nil
	}
	return s.onDecision(ctx, tx, d)
}

// onDecision brings the agencies told in line with the decision's current outcome: new
// agencies are notified, removed ones get a withdrawal, kept ones are told again if the
// level or urgency changed or what they had was a recommendation; the referrer hears the
// decision a person made. A recommendation (immediate danger only) reaches police and
// children's social care alone. An event older than the one already applied changes nothing.
func (s *Service) onDecision(ctx context.Context, tx pgx.Tx, d *rulesv1.Decision) error {
	st, err := store.ReadDecisionState(ctx, tx, d.GetReferralId())
	if err != nil {
		return err
	}
	applied, found := st.Applied, st.AppliedFound
	if found && applied.Version >= d.GetVersion() {
		return nil
	}
	if !st.ReferralFound {
		return fmt.Errorf("decision %s for referral %s: %w", d.GetId(), d.GetReferralId(), errNotYetReceived)
	}
	var ref intakev1.Referral
	if err := proto.Unmarshal(st.Referral.Proto, &ref); err != nil {
		return fmt.Errorf("referral %s: decode: %w", st.Referral.ID, err)
	}
	dir, err := s.directoryOf(ctx, tx, ref.GetPartnership())
	if err != nil {
		return err
	}
	cur := d.GetCurrent()
	level, rag := cur.GetLevel().String(), ragName(cur.GetRag())
	roles := slices.Clone(cur.GetAgencies())
	recommendation := d.GetStatus() == rulesv1.DecisionStatus_RECOMMENDED
	if recommendation {
		roles = slices.Clone(immediateDangerRoles)
	}
	now := s.now().UTC()
	sum := decisionSummary(d)
	note := ""
	if recommendation {
		note = awaitingNote
	}
	wasRecommendation := found && applied.Status == rulesv1.DecisionStatus_RECOMMENDED.String()
	pos, posFound, err := store.SharingOf(ctx, tx, d.GetReferralId())
	if err != nil {
		return err
	}
	on, held := shareOnFor(pos, posFound, recommendation)

	p := plan{actionTo: map[string]string{}}
	if !held {
		if err := p.loadEncompass(ctx, tx, d.GetReferralId()); err != nil {
			return err
		}
	}
	told := map[string][]store.Notification{}
	for _, n := range st.Active {
		told[n.Role] = append(told[n.Role], n)
	}
	changed := found && (applied.Level != level || applied.RAG != rag || wasRecommendation)
	if !changed {
		// Agencies keeping what they were told count as told, in whichever role.
		for _, n := range st.Active {
			if slices.Contains(roles, n.Role) {
				p.actionTo[n.Agency] = n.Role
			}
		}
	}
	for _, role := range roles {
		prior := told[role]
		if len(prior) > 0 && !changed || held {
			// Held: without consent or a manager's authorisation nothing new leaves the hub;
			// what was already shared stands until consent is withdrawn or the role dropped.
			continue
		}
		if err := s.notifyRole(ctx, tx, &p, dir, &ref, sum, role, rag, now, prior, note, on); err != nil {
			return err
		}
	}
	for role, ns := range told {
		if slices.Contains(roles, role) {
			continue
		}
		for _, n := range ns {
			p.withdraw(dir, &ref, sum, n, now, "the hub's decision no longer names this agency: disregard and delete the earlier notification")
		}
	}
	if !recommendation && (!found || wasRecommendation || applied.Level != level || applied.RAG != rag || !sameOutcomeAgencies(applied.Agencies, roles)) {
		key := fmt.Sprintf("outcome:%s:v%d", d.GetId(), d.GetVersion())
		if err := s.notifyReferrer(ctx, tx, &p, dir, &ref, notifyv1.NotificationKind_OUTCOME, sum, key, now); err != nil {
			return err
		}
	}
	raw, err := proto.Marshal(d)
	if err != nil {
		return fmt.Errorf("decision %s: encode: %w", d.GetId(), err)
	}
	p.applied = &store.AppliedDecision{DecisionID: d.GetId(), Version: d.GetVersion(), Agencies: roles, Level: level, RAG: rag,
		Status: d.GetStatus().String(), Decision: raw}
	if held {
		s.log.Info("decision held back: no consent and no manager's authorisation", zap.String("referral_id", d.GetReferralId()),
			zap.String("decision_id", d.GetId()), zap.Int64("version", d.GetVersion()))
	}
	return s.execute(ctx, tx, d.GetReferralId(), p, now)
}

// plan is what handling an event will write, sent to Postgres in one round trip.
type plan struct {
	withdrawn []string
	creates   []spec
	applied   *store.AppliedDecision
	// actionTo holds the agencies an action is planned for, with its role: an agency that
	// fills two roles the decision names (or stands in for two out of hours) gets one
	// message per decision.
	actionTo map[string]string
	// encompass holds the referral's Operation Encompass notices by school, for the one
	// message per agency per decision (foldEncompass).
	encompass map[string]store.Notification
}

// withdraw plans telling an agency to disregard and delete what it was sent (why says
// why), stopping the original's delivery if not yet sent and its escalation.
func (p *plan) withdraw(dir partnershipDirectory, ref *intakev1.Referral, sum *share.Decision, n store.Notification, now time.Time, why string) {
	p.withdrawn = append(p.withdrawn, n.ID)
	if _, carried := carriedEncompass(n); carried && n.Kind == notifyv1.NotificationKind_ACTION.String() {
		why += "; the Operation Encompass notice it carried (police attended a domestic abuse incident) still stands"
	}
	a, ok := dir.byID(n.Agency)
	if !ok {
		a = directory.Agency{ID: n.Agency, Partnership: n.Partnership, Channel: n.Channel}
	}
	p.creates = append(p.creates, spec{dir: dir, ref: ref, decision: sum, agency: a, role: n.Role, kind: notifyv1.NotificationKind_WITHDRAWAL,
		key: "withdraw:" + n.ID, rag: n.RAG, aboutID: n.ID, aboutAgency: n.Agency,
		note: why, now: now})
}

// execute writes a plan within tx in one batch.
func (s *Service) execute(ctx context.Context, tx pgx.Tx, referralID string, p plan, now time.Time) error {
	ns := make([]store.Notification, len(p.creates))
	for i, sp := range p.creates {
		n, err := s.build(sp)
		if err != nil {
			return err
		}
		ns[i] = n
	}
	b := &pgx.Batch{}
	for _, id := range p.withdrawn {
		store.QueueMarkWithdrawn(b, id, now)
	}
	for i, n := range ns {
		store.QueueInsertNotification(b, n)
		if m := p.creates[i].merges; m != "" {
			store.QueueMarkMerged(b, m, n.ID, now)
		}
	}
	if p.applied != nil {
		store.QueueSetApplied(b, referralID, *p.applied)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("referral %s: write notifications: %w", referralID, err)
	}
	for _, n := range ns {
		s.metrics.created.WithLabelValues(n.Kind).Inc()
	}
	return nil
}

func sameOutcomeAgencies(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// notifyRole plans telling the agencies filling role, superseding prior notifications to
// the role (a changed level or urgency). Red outside an agency's hours goes to its
// out-of-hours route. A role no agency fills is recorded and escalated at once, within tx.
func (s *Service) notifyRole(ctx context.Context, tx pgx.Tx, p *plan, dir partnershipDirectory, ref *intakev1.Referral, sum *share.Decision,
	role, rag string, now time.Time, prior []store.Notification, note string, on shareOn) error {
	agencies := directory.Resolve(dir.agencies, role, ref.GetSubmission().GetChild().GetSchool())
	key := fmt.Sprintf("action:%s:v%d:%s", sum.ID, sum.Version, role)
	if on.generation > 0 { // shared after consent or an authorisation changed: a share of its own
		key = fmt.Sprintf("action:%s:v%d:g%d:%s", sum.ID, sum.Version, on.generation, role)
	}
	if len(agencies) == 0 {
		return s.unroutable(ctx, tx, dir, ref, sum, nil, role, notifyv1.NotificationKind_ACTION, key, now)
	}
	for _, n := range prior {
		p.withdrawn = append(p.withdrawn, n.ID)
	}
	due, err := s.ackDue(dir, role, rag, now)
	if err != nil {
		return err
	}
	for _, a := range agencies {
		target, routedFrom := a, ""
		if rag == "RED" && !a.InHours(now) && a.OutOfHours != "" {
			if ooh, ok := dir.byID(a.OutOfHours); ok {
				target, routedFrom = ooh, a.ID
			}
		}
		if first, ok := p.actionTo[target.ID]; ok {
			s.log.Debug("agency already told of this decision in another role", zap.String("agency", target.ID),
				zap.String("role", role), zap.String("told_as", first))
			continue
		}
		if p.actionTo == nil {
			p.actionTo = map[string]string{}
		}
		p.actionTo[target.ID] = role
		if len(prior) > 0 {
			note = "the hub's decision: this replaces the earlier notification"
		}
		sp := spec{dir: dir, ref: ref, decision: sum, agency: target, role: role, kind: notifyv1.NotificationKind_ACTION,
			key: key + ":" + a.ID, rag: rag, ackDue: due, routedFrom: routedFrom, note: note, basis: on.basis,
			authorisedBy: on.by, now: now}
		p.foldEncompass(&sp, prior)
		p.creates = append(p.creates, sp)
	}
	return nil
}

// onClosed tells the referring agency how the hub closed its referral: the outcome, once,
// and nothing of the closing note.
func (s *Service) onClosed(ctx context.Context, tx pgx.Tx, referralID, outcome string) error {
	r, err := store.ReferralIn(ctx, tx, referralID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("closure of referral %s: %w", referralID, errNotYetReceived)
	}
	if err != nil {
		return err
	}
	var ref intakev1.Referral
	if err := proto.Unmarshal(r.Proto, &ref); err != nil {
		return fmt.Errorf("referral %s: decode: %w", r.ID, err)
	}
	dir, err := s.directoryOf(ctx, tx, ref.GetPartnership())
	if err != nil {
		return err
	}
	now := s.now().UTC()
	key := "closure:" + referralID
	a, ok, err := s.agencyByID(ctx, tx, dir, ref.GetAgency())
	if err != nil {
		return err
	}
	if !ok {
		return s.unroutable(ctx, tx, dir, &ref, nil, nil, "referrer:"+ref.GetAgency(), notifyv1.NotificationKind_CLOSURE, key, now)
	}
	_, err = s.create(ctx, tx, spec{dir: dir, ref: &ref, agency: a, role: "referrer", kind: notifyv1.NotificationKind_CLOSURE,
		key: key, rag: "NONE", caseOutcome: outcome, now: now})
	return err
}

// notifyReferrer tells the referring agency of receipt or outcome, through its own channel.
func (s *Service) notifyReferrer(ctx context.Context, tx pgx.Tx, p *plan, dir partnershipDirectory, ref *intakev1.Referral,
	kind notifyv1.NotificationKind, sum *share.Decision, key string, now time.Time) error {
	a, ok, err := s.agencyByID(ctx, tx, dir, ref.GetAgency())
	if err != nil {
		return err
	}
	if !ok {
		return s.unroutable(ctx, tx, dir, ref, sum, nil, "referrer:"+ref.GetAgency(), kind, key, now)
	}
	rag := "NONE"
	if sum != nil {
		rag = sum.RAG
	}
	sp := spec{dir: dir, ref: ref, decision: sum, agency: a, role: "referrer", kind: kind, key: key, rag: rag, now: now}
	if p != nil {
		p.creates = append(p.creates, sp)
		return nil
	}
	_, err = s.create(ctx, tx, sp)
	return err
}

// unroutable records a notification no directory entry can take, as a failed notification
// staff see in the dead-letter list, and tells the duty manager at once: a child's referral
// must never wait on a gap in the directory.
func (s *Service) unroutable(ctx context.Context, tx pgx.Tx, dir partnershipDirectory, ref *intakev1.Referral, sum *share.Decision,
	research *share.Research, role string, kind notifyv1.NotificationKind, key string, now time.Time) error {
	reason := fmt.Sprintf("no agency in the directory of %s fills role %s", dir.partnership.ID, role)
	if research != nil {
		reason = fmt.Sprintf("information request %s: agency %s is not in the directory", research.RequestID, research.Agency)
	}
	rag := "NONE"
	if sum != nil {
		rag = sum.RAG
	}
	n, err := s.create(ctx, tx, spec{dir: dir, ref: ref, decision: sum, agency: directory.Agency{ID: "", Partnership: dir.partnership.ID},
		role: role, kind: kind, key: key + ":unroutable", rag: rag, failed: reason, research: research, now: now})
	if err != nil || n == nil {
		return err
	}
	s.log.Warn("notification unroutable", zap.String("referral_id", ref.GetId()), zap.String("notification_id", n.ID),
		zap.String("role", role), zap.String("partnership", dir.partnership.ID))
	if kind == notifyv1.NotificationKind_RECEIPT || kind == notifyv1.NotificationKind_OUTCOME || kind == notifyv1.NotificationKind_CLOSURE {
		return nil // the referrer's own feedback: listed for staff, not an emergency
	}
	return s.escalate(ctx, tx, dir, ref, *n, reason, now)
}

// ackDue is when an acknowledgement by an agency filling role is due before escalation, by
// the partnership's deadlines per role and RAG and the defaults (police and social care Red
// within the Red minutes, schools before the next school day, early help and Amber within a
// working day); zero when none is expected.
func (s *Service) ackDue(dir partnershipDirectory, role, rag string, now time.Time) (time.Time, error) {
	return dir.partnership.AckDue(role, rag, now, s.calendar)
}

// spec describes one notification to create.
type spec struct {
	dir         partnershipDirectory
	ref         *intakev1.Referral
	decision    *share.Decision
	agency      directory.Agency
	role        string
	kind        notifyv1.NotificationKind
	key         string
	rag         string
	ackDue      time.Time
	incidentAt  time.Time
	routedFrom  string
	aboutID     string
	aboutAgency string
	note        string
	// research is the question of an INFORMATION_REQUEST.
	research *share.Research
	// caseOutcome is how the hub closed the referral, for CLOSURE.
	caseOutcome string
	// disagreement is the disagreement of a DISAGREEMENT notice.
	disagreement *share.Disagreement
	// lead is who leads, for LEAD_PROFESSIONAL.
	lead *share.Lead
	// failed, when set, records the notification as failed at once with this reason.
	failed string
	// encompass says an ACTION also carries the Operation Encompass notice; merges names
	// the unsent notice it replaces (foldEncompass).
	encompass bool
	merges    string
	// basis and authorisedBy are what an action share rests on when not the referral's own
	// consent (see shareOn).
	basis        *share.Basis
	authorisedBy string
	now          time.Time
}

// create builds the agency's message and stores it with its share record; nil when the
// dedupe key shows it was made before.
func (s *Service) create(ctx context.Context, tx pgx.Tx, sp spec) (*store.Notification, error) {
	n, err := s.build(sp)
	if err != nil {
		return nil, err
	}
	inserted, err := store.InsertNotification(ctx, tx, n)
	if err != nil || !inserted {
		return nil, err
	}
	if sp.failed != "" {
		if err := s.emit(ctx, tx, EventFailed, n, 0, sp.failed, auth.Actor{}); err != nil {
			return nil, err
		}
	}
	s.metrics.created.WithLabelValues(n.Kind).Inc()
	return &n, nil
}

// build makes a notification: the agency's message for its role, and the share record.
func (s *Service) build(sp spec) (store.Notification, error) {
	id := uuid.Must(uuid.NewV7()).String()
	link := ""
	if sp.dir.partnership.ConsoleURL != "" {
		link = sp.dir.partnership.ConsoleURL + "/referrals/" + sp.ref.GetId()
	}
	built, err := share.Build(share.Input{NotificationID: id, Kind: sp.kind, Referral: sp.ref, Agency: sp.agency.ID, Role: sp.role,
		Partnership: share.PartnershipBasis{LawfulBasis: sp.dir.partnership.LawfulBasis}, Decision: sp.decision, CreatedAt: sp.now,
		AckDue: sp.ackDue, Link: link, AboutID: sp.aboutID, AboutAgency: sp.aboutAgency, Note: sp.note, IncidentAt: sp.incidentAt,
		AgencyRoles: sp.agency.Roles, Research: sp.research, Basis: sp.basis, CaseOutcome: sp.caseOutcome, Disagreement: sp.disagreement,
		Encompass: sp.encompass, Languages: sp.agency.Languages(), Lead: sp.lead})
	if err != nil {
		return store.Notification{}, err
	}
	n := store.Notification{ID: id, DedupeKey: sp.key, ReferralID: sp.ref.GetId(), Reference: sp.ref.GetReference(),
		Partnership: sp.ref.GetPartnership(), Agency: sp.agency.ID, Role: sp.role, Kind: sp.kind.String(), Channel: sp.agency.Channel,
		RAG: sp.rag, Priority: priority(sp.rag, sp.kind), Payload: built.Body, PayloadSHA256: built.SHA256, Fields: built.Fields,
		Purpose: built.Purpose, LawfulBasis: built.LawfulBasis, ConsentStatus: built.ConsentStatus, ConsentReason: built.ConsentReason,
		ReferrerWithheld: built.ReferrerWithheld, State: store.StatePending, NextAttemptAt: sp.now, CreatedAt: sp.now,
		RoutedFrom: sp.routedFrom, EscalatesID: "", WithdrawsID: "", AuthorisedBy: sp.authorisedBy}
	if n.Fields == nil {
		n.Fields = []string{}
	}
	if n.Channel == "" {
		n.Channel = "none"
	}
	if sp.decision != nil {
		n.DecisionID, n.DecisionVersion = sp.decision.ID, sp.decision.Version
	}
	if !sp.ackDue.IsZero() {
		due := sp.ackDue.UTC()
		n.AckDue = &due
	}
	switch sp.kind {
	case notifyv1.NotificationKind_ESCALATION:
		n.EscalatesID = sp.aboutID
	case notifyv1.NotificationKind_WITHDRAWAL:
		n.WithdrawsID = sp.aboutID
	}
	if sp.failed != "" {
		n.State, n.LastError, n.AckDue = store.StateFailed, sp.failed, nil
	}
	return n, nil
}

// priority orders delivery: Red first, then Amber (and Encompass, due by the school day),
// then the rest.
func priority(rag string, kind notifyv1.NotificationKind) int {
	switch {
	case rag == "RED" || kind == notifyv1.NotificationKind_ESCALATION:
		return 0
	case rag == "AMBER" || kind == notifyv1.NotificationKind_ENCOMPASS:
		return 1
	}
	return 2
}

// emit writes a notification event into the outbox within tx.
func (s *Service) emit(ctx context.Context, tx pgx.Tx, subject string, n store.Notification, attempt int, detail string, by auth.Actor) error {
	env, raw, err := s.event(ctx, subject, n, attempt, detail, by)
	if err != nil {
		return err
	}
	if err := events.InsertOutbox(ctx, tx, store.Schema, env, raw); err != nil {
		return fmt.Errorf("notification %s: %w", n.ID, err)
	}
	return nil
}

// event builds a notification event: ids, the share record and the payload's digest, never
// the payload. by names who caused it; empty for notify's own delivery work.
func (s *Service) event(ctx context.Context, subject string, n store.Notification, attempt int, detail string, by auth.Actor) (*eventsv1.Envelope, []byte, error) {
	ev := &eventsv1.NotificationEvent{NotificationId: n.ID, Agency: n.Agency, Role: n.Role, Kind: n.Kind, DecisionId: n.DecisionID,
		DecisionVersion: n.DecisionVersion, Rag: n.RAG, Channel: n.Channel, PayloadSha256: n.PayloadSHA256, LawfulBasis: n.LawfulBasis,
		ConsentStatus: n.ConsentStatus, ConsentReason: n.ConsentReason, Purpose: n.Purpose, Fields: n.Fields, Attempt: int32(attempt),
		Detail: truncate(detail, 500), Actor: by.ID, ActorRole: by.Role, EscalatesNotificationId: n.EscalatesID, AuthorisedBy: n.AuthorisedBy}
	if n.AckDue != nil {
		ev.AckDue = timestamppb.New(*n.AckDue)
	}
	actor := by.Event()
	if by.ID == "" {
		actor = events.System("notify")
	}
	env, raw, err := events.NewEnvelope(subject, n.Partnership, n.ReferralID, 0, s.now(), actor, ev)
	if err != nil {
		return nil, nil, fmt.Errorf("notification %s: build %s: %w", n.ID, subject, err)
	}
	if raw, err = events.Seal(ctx, s.cipher, env); err != nil {
		return nil, nil, fmt.Errorf("notification %s: %w", n.ID, err)
	}
	return env, raw, nil
}

// truncate cuts s to at most n bytes at a character boundary: Postgres refuses the
// invalid UTF-8 a cut inside a character would leave.
func truncate(s string, n int) string { return text.Truncate(s, n) }

func ragName(r rulesv1.Rag) string {
	switch r {
	case rulesv1.Rag_RAG_RED:
		return "RED"
	case rulesv1.Rag_RAG_AMBER:
		return "AMBER"
	case rulesv1.Rag_RAG_GREEN:
		return "GREEN"
	}
	return "NONE"
}

func decisionSummary(d *rulesv1.Decision) *share.Decision {
	cur := d.GetCurrent()
	sum := &share.Decision{ID: d.GetId(), Version: d.GetVersion(), Level: cur.GetLevel().String(), RAG: ragName(cur.GetRag()),
		Pathway: cur.GetPathway(), Reason: cur.GetReason(), ReasonCy: cur.GetReasonCy(), Status: d.GetStatus().String(), Roles: cur.GetAgencies()}
	if d.GetResponseDue() != nil {
		sum.ResponseDue = d.GetResponseDue().AsTime()
	}
	for _, f := range cur.GetFired() {
		sum.RuleIDs = append(sum.RuleIDs, f.GetId())
	}
	if d.GetStatus() == rulesv1.DecisionStatus_OVERRIDDEN && d.GetReviewReason() != "" {
		sum.Reason, sum.ReasonCy, sum.ReasonAsWritten = d.GetReviewReason(), "", true
	}
	return sum
}
