package rules

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/rules/childindex"
	"github.com/mash-hub/mash/services/rules/pack"
	"github.com/mash-hub/mash/services/rules/store"
)

// StatusRecommended is a decision awaiting a practitioner.
const StatusRecommended = "RECOMMENDED"

// historyWindow is how far back a child's history counts.
const historyWindow = 365 * 24 * time.Hour

// routers are the typed handlers of the service's four consumers: referrals to decide,
// practitioners' decisions, corrections of child records, and notify's word that a decision
// reached it.
func (s *Service) routers() (referrals, decisions, children, notified *events.Router) {
	referrals, decisions, children, notified = events.NewRouter(), events.NewRouter(), events.NewRouter(), events.NewRouter()
	events.On(referrals, s.handleReferralReceived, eventsv1.SubjectReferralReceived)
	events.On(decisions, s.handleDecisionMade, EventDecisionMade)
	events.On(children, s.handleChildChanged, eventsv1.SubjectCaseChildChanged)
	// Notify's events say a decision reached it; a decision none has named by the reconcile
	// age is re-emitted. The first event of every notification is sent (at its first
	// attempt) or failed (given up before one), so those two say it; the rest of each
	// notification's story (delivered, acknowledged, retried, escalated) would only repeat
	// it, at an inbox row and a transaction each.
	events.On(notified, s.handleNotified, eventsv1.SubjectNotificationSent, eventsv1.SubjectNotificationFailed)
	return referrals, decisions, children, notified
}

// handleNotified marks the decision a notification was about as having reached notify; in a
// batch, markNotifiedTogether marks the batch's decisions at its end.
func (s *Service) handleNotified(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.NotificationEvent) error {
	parsed, err := uuid.Parse(ev.GetDecisionId())
	if err != nil {
		return nil // not a decision rules made (none, or not an id rules would give)
	}
	// The canonical form: uuid.Parse also takes forms (urn:uuid:…) Postgres refuses, and one
	// such id would fail the whole batch's statement.
	id := parsed.String()
	if named, ok := ctx.Value(notifiedBatchKey{}).(map[string]bool); ok {
		named[id] = true
		return nil
	}
	return store.MarkNotified(ctx, tx, []string{id})
}

type notifiedBatchKey struct{}

// markNotifiedTogether is the notified consumer's BatchScope. A decision names several
// agencies, so a batch of notify's events names each decision several times: marking them
// one event at a time cost a statement each (a tenth of Postgres's time in the pipeline
// bench), where the batch's decisions need one.
func markNotifiedTogether(ctx context.Context, tx pgx.Tx, apply func(context.Context) error) error {
	named := map[string]bool{}
	if err := apply(context.WithValue(ctx, notifiedBatchKey{}, named)); err != nil {
		return err
	}
	if len(named) == 0 {
		return nil
	}
	return store.MarkNotified(ctx, tx, slices.Sorted(maps.Keys(named)))
}

// handleReferralReceived decides a referral inside the consumer's transaction: the inbox row,
// the child-index link, the decision and its outbox event commit together or not at all, so
// a redelivered event never makes a second decision.
func (s *Service) handleReferralReceived(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.ReferralReceived) error {
	ref := ev.GetReferral()
	sub := ref.GetSubmission()
	receivedAt := ref.GetReceivedAt().AsTime()

	packID, compiled, err := s.activePack(ctx, tx, ref.GetPartnership())
	if err != nil {
		return fmt.Errorf("referral %s: active pack of %s: %w", ref.GetId(), ref.GetPartnership(), err)
	}
	indexChild, basis, err := store.ResolveChild(ctx, tx, childindex.KeyOf(sub.GetChild()))
	if err != nil {
		return fmt.Errorf("referral %s: %w", ref.GetId(), err)
	}
	// A record a practitioner merged into another counts as that other: its history is
	// the combined one.
	childID, err := store.EffectiveChild(ctx, tx, indexChild)
	if err != nil {
		return fmt.Errorf("referral %s: %w", ref.GetId(), err)
	}
	h, err := store.ChildHistory(ctx, tx, childID, ref.GetId(), receivedAt.Add(-historyWindow), receivedAt)
	if err != nil {
		return fmt.Errorf("referral %s: %w", ref.GetId(), err)
	}
	facts := pack.FactsFrom(sub, ref.GetAgencyKind(), packHistory(h), receivedAt)
	outcome := compiled.Evaluate(facts)
	decisionDue, responseDue := compiled.Timescales.Deadlines(receivedAt, outcome.RAG, s.calendar)
	if responseDue.IsZero() {
		responseDue = decisionDue
	}
	factsJSON, err := json.Marshal(facts.Record())
	if err != nil {
		return fmt.Errorf("referral %s: encode facts: %w", ref.GetId(), err)
	}
	recommended := outcomeToProto(outcome)
	outBytes, err := proto.Marshal(recommended)
	if err != nil {
		return fmt.Errorf("referral %s: encode outcome: %w", ref.GetId(), err)
	}
	d := store.Decision{
		ID: uuid.Must(uuid.NewV7()).String(), ReferralID: ref.GetId(), Partnership: ref.GetPartnership(),
		ChildID: childID, IndexChildID: indexChild, MatchBasis: string(basis), PackID: packID, PackVersion: compiled.Version,
		ReceivedAt: receivedAt, DecidedAt: s.now().UTC(), DecisionDue: decisionDue, ResponseDue: responseDue,
		Concerns: facts.Concerns, Facts: factsJSON, Recommended: outBytes, Current: outBytes,
		Level: outcome.Level.String(), RAG: outcome.RAG.String(), Status: StatusRecommended, Version: 1,
	}
	inserted, err := store.InsertDecision(ctx, tx, d)
	if err != nil || !inserted {
		// Not inserted: the referral was decided under another event id (a re-emitted
		// original would share ours and stop at the inbox); one decision is the rule.
		return err
	}
	dp, err := decisionToProto(d)
	if err != nil {
		return err
	}
	rec := &eventsv1.RecommendationMade{Decision: dp, PackAgencies: slices.Sorted(maps.Keys(compiled.Agencies)),
		PackPathways: slices.Sorted(maps.Keys(compiled.Pathways))}
	if err := s.emit(ctx, tx, EventRecommended, d, ref.GetVersion()+1, rec); err != nil {
		return err
	}
	s.log.Info("referral recommended", zap.String("referral_id", d.ReferralID), zap.String("decision_id", d.ID),
		zap.String("pack_version", d.PackVersion), zap.String("level", d.Level), zap.String("rag", d.RAG),
		zap.String("child_id", childID), zap.String("match_basis", string(basis)), zap.Int("rules_fired", len(outcome.Fired)))
	return nil
}

// handleDecisionMade records the decision a practitioner made through triage: the status,
// the outcome that now applies and who decided, unless the decision already holds this
// version or a newer one (events may come twice or out of order).
func (s *Service) handleDecisionMade(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.DecisionMade) error {
	d := ev.GetDecision()
	cur, err := proto.Marshal(d.GetCurrent())
	if err != nil {
		return fmt.Errorf("decision %s: encode outcome: %w", d.GetId(), err)
	}
	r := store.Review{Status: d.GetStatus().String(), Level: levelName(d.GetCurrent().GetLevel()), RAG: ragName(d.GetCurrent().GetRag()),
		Current: cur, By: d.GetReviewedBy(), Role: d.GetReviewedByRole(), Reason: d.GetReviewReason(), At: d.GetReviewedAt().AsTime().UTC()}
	applied, err := store.RecordReview(ctx, tx, d.GetReferralId(), d.GetVersion(), r)
	if err != nil {
		return err
	}
	if applied {
		s.log.Info("decision recorded", zap.String("referral_id", d.GetReferralId()), zap.String("decision_id", d.GetId()),
			zap.String("status", r.Status), zap.Int64("version", d.GetVersion()))
	}
	return nil
}

// handleChildChanged follows a practitioner's correction of child records in triage (a
// merge, an undone merge, a link or an unlink): the referral's decision moves to the
// record its case is on now, and a merge is remembered so that later referrals the index
// links to the merged record count the combined history.
func (s *Service) handleChildChanged(ctx context.Context, tx pgx.Tx, _ *eventsv1.Envelope, ev *eventsv1.CaseChanged) error {
	c, corr := ev.GetCase(), ev.GetCorrection()
	if corr.GetKind() == "MERGE" && corr.GetFromChildId() != "" && corr.GetToChildId() != "" {
		if err := store.RecordMerge(ctx, tx, corr.GetId(), corr.GetFromChildId(), corr.GetToChildId(), corr.GetUndoneAt() != nil); err != nil {
			return err
		}
	}
	if c.GetChildId() == "" {
		return nil
	}
	moved, err := store.MoveDecision(ctx, tx, c.GetReferralId(), c.GetChildId(), c.GetVersion())
	if err != nil {
		return err
	}
	if moved {
		s.log.Info("decision moved to corrected child record", zap.String("referral_id", c.GetReferralId()),
			zap.String("child_id", c.GetChildId()), zap.String("correction", corr.GetKind()))
	}
	return nil
}

// emit writes an event for decision d into the outbox within tx.
func (s *Service) emit(ctx context.Context, tx pgx.Tx, subject string, d store.Decision, version int64, payload proto.Message) error {
	env, raw, err := events.NewEnvelope(subject, d.Partnership, d.ReferralID, version, s.now(), events.System("rules"), payload)
	if err != nil {
		return fmt.Errorf("referral %s: build %s: %w", d.ReferralID, subject, err)
	}
	if raw, err = events.Seal(ctx, s.cipher, env); err != nil {
		return fmt.Errorf("referral %s: %w", d.ReferralID, err)
	}
	if err := events.InsertOutbox(ctx, tx, store.Schema, env, raw); err != nil {
		return fmt.Errorf("referral %s: %w", d.ReferralID, err)
	}
	return nil
}

func packHistory(h store.History) pack.History {
	out := pack.History{Referrals12m: h.Referrals, ByCategory12m: h.ByCategory}
	out.PreviousLevel, _ = pack.ParseLevel(h.PreviousLevel)
	if len(h.ByLevel) > 0 {
		out.ByLevel12m = make(map[pack.Level]int, len(h.ByLevel))
		for k, n := range h.ByLevel {
			if l, err := pack.ParseLevel(k); err == nil {
				out.ByLevel12m[l] = n
			}
		}
	}
	out.OpenCase = h.OpenCase
	return out
}

func decisionToProto(d store.Decision) (*rulesv1.Decision, error) {
	var rec, cur rulesv1.Outcome
	if err := proto.Unmarshal(d.Recommended, &rec); err != nil {
		return nil, fmt.Errorf("decode decision %s: %w", d.ID, err)
	}
	if err := proto.Unmarshal(d.Current, &cur); err != nil {
		return nil, fmt.Errorf("decode decision %s: %w", d.ID, err)
	}
	p := &rulesv1.Decision{
		Id: d.ID, ReferralId: d.ReferralID, Partnership: d.Partnership, PackId: d.PackID, PackVersion: d.PackVersion,
		Recommended: &rec, Current: &cur, Status: rulesv1.DecisionStatus(rulesv1.DecisionStatus_value[d.Status]),
		DecidedAt: timestamppb.New(d.DecidedAt), DecisionDue: timestamppb.New(d.DecisionDue), ResponseDue: timestamppb.New(d.ResponseDue),
		ChildId: cmp.Or(d.IndexChildID, d.ChildID), MatchBasis: d.MatchBasis, FactsJson: string(d.Facts), ReviewedBy: d.ReviewedBy,
		ReviewedByRole: d.ReviewedByRole, ReviewReason: d.ReviewReason, Version: d.Version,
	}
	if d.ReviewedAt != nil {
		p.ReviewedAt = timestamppb.New(*d.ReviewedAt)
	}
	return p, nil
}
