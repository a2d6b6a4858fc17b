package triage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// noticeStates maps notify's event subjects to the delivery state they report.
var noticeStates = map[string]string{
	eventsv1.SubjectNotificationSent:         "SENT",
	eventsv1.SubjectNotificationRetried:      "SENT",
	eventsv1.SubjectNotificationDelivered:    "DELIVERED",
	eventsv1.SubjectNotificationAcknowledged: "ACKNOWLEDGED",
	eventsv1.SubjectNotificationFailed:       "FAILED",
	eventsv1.SubjectNotificationEscalated:    "ESCALATED",
}

// handlers project events into the case read model inside the consumer's transaction (with
// its inbox row), one typed handler per subject. Subjects it does not register are
// acknowledged and ignored: producers may add events without breaking this consumer.
// Notify's events about each notification go to noticeHandlers, on a consumer of their own.
func (s *Service) handlers() *events.Router {
	r := events.NewRouter()
	events.On(r, s.projectReceived, eventsv1.SubjectReferralReceived)
	events.On(r, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.RecommendationMade) error {
		return s.projectDecision(ctx, tx, env, ev.GetDecision(),
			store.DecisionRecord{Agencies: nonEmpty(ev.GetPackAgencies()), Pathways: nonEmpty(ev.GetPackPathways())})
	}, EventRecommended)
	events.On(r, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.DecisionMade) error {
		return s.projectDecision(ctx, tx, env, ev.GetDecision(), store.DecisionRecord{})
	}, EventDecisionMade)
	events.On(r, s.recordChannelAnswer, EventResearchAnswerReceived)
	return r
}

// noticeHandlers project what notify did with each notification onto the case's list of
// who was told. They have a consumer of their own: a decision names several agencies and
// each notification makes two or three events, so on a shared consumer these outnumbered
// the referrals and decisions about ten to one, and a new referral waited behind them to
// reach the queue.
func (s *Service) noticeHandlers() *events.Router {
	r := events.NewRouter()
	for subject, state := range noticeStates {
		events.On(r, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.NotificationEvent) error {
			return s.projectNotice(ctx, tx, env, ev, state)
		}, subject)
	}
	return r
}

type noticeBatchKey struct{}

// noticesInOneRoundTrip is the notice consumer's BatchScope: the batch's notices are queued
// on ctx and sent to Postgres together, one statement each in arrival order (a
// notification's sent and delivered events may share a batch, and each applies over the
// other), in one round trip rather than one per event.
func noticesInOneRoundTrip(ctx context.Context, tx pgx.Tx, apply func(context.Context) error) error {
	b := &pgx.Batch{}
	if err := apply(context.WithValue(ctx, noticeBatchKey{}, b)); err != nil {
		return err
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply %d notices: %w", b.Len(), err)
	}
	return nil
}

// recordChannelAnswer records an answer an agency gave on its own channel (notify heard it
// and names the agency from the channel, never from the message). Only the agency asked may
// answer, and only once: anything else is logged by id and dropped, as retrying could not
// make it right.
func (s *Service) recordChannelAnswer(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.InformationAnswerReceived) error {
	drop := func(why string) error {
		s.log.Warn("channel answer not recorded", zap.String("why", why), zap.String("event_id", env.GetEventId()),
			zap.String("request_id", ev.GetRequestId()), zap.String("agency", ev.GetAgency()))
		return nil
	}
	if strings.TrimSpace(ev.GetAnswer()) == "" || ev.GetAgency() == "" {
		return drop("empty answer or no agency")
	}
	r, err := store.LockInformationRequest(ctx, tx, ev.GetRequestId())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return drop("no such request")
	case err != nil:
		return err
	case r.Agency != ev.GetAgency():
		return drop("the request was addressed to another agency")
	case r.State == store.InfoAnswered:
		return drop("already answered")
	}
	who := "agency:" + ev.GetAgency() + " (" + ev.GetChannel() + ")"
	_, err = s.answerIn(ctx, tx, r.ID, ev.GetAnswer(), who, auth.Actor{ID: who, Role: auth.ActorRoleAgency}, s.now().UTC())
	return err
}

func (s *Service) projectReceived(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.ReferralReceived) error {
	ref := ev.GetReferral()
	if ref.GetId() == "" {
		return fmt.Errorf("event %s: referral without an id", env.GetEventId())
	}
	sub := ref.GetSubmission()
	receivedAt := ref.GetReceivedAt().AsTime()
	r := store.Received{
		ReferralID: ref.GetId(), Partnership: ref.GetPartnership(), ChildName: displayName(sub.GetChild()),
		ChildAgeYears: ageYears(sub.GetChild(), receivedAt, s.calendar.Location()), SourceAgency: ref.GetAgency(), SourceKind: ref.GetAgencyKind(),
		Concerns: concernNames(sub.GetConcerns()), ReceivedAt: receivedAt, ConsentStatus: sub.GetConsent().GetStatus().String(),
		Reference: ref.GetReference(), ExternalReference: ref.GetExternalReference(), FamilyGroup: sub.GetFamilyGroup(),
	}
	if ref.GetDecisionDue() != nil {
		due := ref.GetDecisionDue().AsTime()
		r.DecisionDue = &due
	}
	applied, err := store.ApplyReceived(ctx, tx, r)
	if err != nil {
		return err
	}
	if err := store.PutSearchKeys(ctx, tx, searchKeysOf(ref)); err != nil {
		return err
	}
	if applied {
		s.log.Debug("case received", zap.String("referral_id", r.ReferralID), zap.String("event_id", env.GetEventId()))
	}
	return nil
}

// decisionOf converts a rules decision at the event and API boundary.
func decisionOf(d *rulesv1.Decision) store.Decision {
	out := store.Decision{
		ReferralID: d.GetReferralId(), Partnership: d.GetPartnership(), ChildID: d.GetChildId(), DecisionID: d.GetId(),
		Version: d.GetVersion(), Status: int16(d.GetStatus()), Level: int16(d.GetCurrent().GetLevel()),
		RecommendedLevel: int16(d.GetRecommended().GetLevel()), RAG: int16(d.GetCurrent().GetRag()),
		Pathway: d.GetCurrent().GetPathway(), Agencies: d.GetCurrent().GetAgencies(),
		DecisionDue:   optTime(d.GetDecisionDue().AsTime(), d.GetDecisionDue() != nil),
		RAGDue:        optTime(d.GetResponseDue().AsTime(), d.GetResponseDue() != nil),
		RecommendedAt: optTime(d.GetDecidedAt().AsTime(), d.GetDecidedAt() != nil),
	}
	if d.GetStatus() != rulesv1.DecisionStatus_RECOMMENDED && d.GetReviewedAt() != nil {
		out.DecidedAt = optTime(d.GetReviewedAt().AsTime(), true)
		out.DecidedBy = d.GetReviewedBy()
	}
	return out
}

func optTime(t time.Time, ok bool) *time.Time {
	if !ok {
		return nil
	}
	t = t.UTC()
	return &t
}

// projectDecision records the rules' recommendation on the case, with the decision itself
// and the pack's vocabulary, which a practitioner's decision is built from. Triage's own
// decisions are projected too: DecideCase applied them already, so they change nothing
// unless a newer version is missing (a case restored from the log).
func (s *Service) projectDecision(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, d *rulesv1.Decision, vocab store.DecisionRecord) error {
	if d.GetReferralId() == "" || d.GetVersion() <= 0 {
		return fmt.Errorf("event %s: decision without a referral or version", env.GetEventId())
	}
	c, applied, err := store.ApplyDecision(ctx, tx, decisionOf(d))
	if err != nil || !applied {
		return err
	}
	raw, err := proto.Marshal(d)
	if err != nil {
		return fmt.Errorf("event %s: encode decision: %w", env.GetEventId(), err)
	}
	vocab.Decision = raw
	if err := store.SetDecisionRecord(ctx, tx, c.ReferralID, vocab); err != nil {
		return err
	}
	// A decision made elsewhere (a case restored, a decision the rules record) joins the
	// family group's lead professional as one made here does.
	if _, err := s.followGroupLead(ctx, tx, c, decisionActor(env)); err != nil {
		return err
	}
	s.log.Debug("case decision applied", zap.String("referral_id", c.ReferralID), zap.Int64("decision_version", d.GetVersion()),
		zap.Int64("case_version", c.Version))
	return nil
}

// nonEmpty is s, or nil (unknown) when it is empty.
func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func (s *Service) projectNotice(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, ev *eventsv1.NotificationEvent, state string) error {
	if ev.GetNotificationId() == "" || env.GetReferralId() == "" {
		return nil // not about one notification of one referral
	}
	at := env.GetOccurredAt().AsTime().UTC()
	n := store.Notice{NotificationID: ev.GetNotificationId(), ReferralID: env.GetReferralId(), Partnership: env.GetPartnership(),
		Agency: ev.GetAgency(), Role: ev.GetRole(), Kind: ev.GetKind(), State: state, At: at}
	switch state {
	case "SENT":
		n.SentAt = &at
	case "DELIVERED":
		n.DeliveredAt = &at
	case "ACKNOWLEDGED":
		n.AcknowledgedAt = &at
	}
	if ev.GetAckDue() != nil {
		due := ev.GetAckDue().AsTime().UTC()
		n.AckDue = &due
	}
	if b, ok := ctx.Value(noticeBatchKey{}).(*pgx.Batch); ok {
		store.QueueNotice(b, n)
		return nil
	}
	return store.ApplyNotice(ctx, tx, n)
}

// displayName is what practitioners see of the child; never logged.
func displayName(c *intakev1.Child) string {
	name := strings.TrimSpace(c.GetGivenName() + " " + c.GetFamilyName())
	if name == "" && c.GetUnborn() {
		return "Unborn child"
	}
	return name
}

// ageYears is the child's age in whole years on t's date in loc, the hub's time zone, as
// intake and notify count it; 0 when unborn or the date of birth is unknown.
func ageYears(c *intakev1.Child, t time.Time, loc *time.Location) int32 {
	dob, err := time.Parse(time.DateOnly, c.GetDateOfBirth())
	if err != nil || c.GetUnborn() {
		return 0
	}
	return int32(max(calendar.AgeOn(dob, t.In(loc)), 0))
}

func concernNames(cs []*intakev1.Concern) []string {
	out := make([]string, 0, len(cs))
	seen := map[string]bool{}
	for _, c := range cs {
		name := c.GetCategory().String()
		if !seen[name] && c.GetCategory() != intakev1.ConcernCategory_CONCERN_CATEGORY_UNSPECIFIED {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// decisionActor is who made a decision event, as the actor of what follows from it.
func decisionActor(env *eventsv1.Envelope) auth.Actor {
	if a := env.GetActor(); a.GetId() != "" {
		return auth.Actor{ID: a.GetId(), Role: a.GetRole(), Agency: a.GetAgency()}
	}
	return sweep
}
