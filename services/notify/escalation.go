package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/notify/channel"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/share"
	"github.com/mash-hub/mash/services/notify/store"
)

// escalationBatch bounds one sweep's transaction.
const escalationBatch = 100

// escalationLoop sweeps for overdue acknowledgements until ctx ends.
func (s *Service) escalationLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.EscalationEvery)
	defer t.Stop()
	for {
		if _, err := s.EscalateDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("escalate overdue acknowledgements", zap.Error(err))
		}
		if _, err := s.ExpireChanges(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("expire directory changes", zap.Error(err))
		}
		if _, err := s.PruneAgencyRecords(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("prune agency message records", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// EscalateDue escalates every notification whose acknowledgement is overdue at the service's
// clock: the partnership's duty manager gets an escalation (itself a notification) and the
// original is marked, in one transaction per batch. It returns how many it escalated.
//
// Each escalation has its own savepoint: one that fails (its case's events cannot be sealed,
// say) is logged and left for the next sweep, and the rest of the batch is escalated.
func (s *Service) EscalateDue(ctx context.Context) (int, error) {
	total := 0
	setAside := []string{} // not nil: id <> ALL(NULL) would match nothing
	for {
		var n, done int
		err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
			now := s.now().UTC()
			due, err := store.DueEscalations(ctx, tx, now, escalationBatch, setAside)
			if err != nil {
				return err
			}
			n, done = len(due), 0
			escalated := map[string]bool{}
			for _, d := range due {
				if escalated[d.ID] {
					continue // listed in its decision's escalation already
				}
				sp, err := tx.Begin(ctx)
				if err != nil {
					return fmt.Errorf("escalate notification %s: %w", d.ID, err)
				}
				ids, err := s.escalateDue(ctx, sp, d, now)
				if err != nil {
					if ctx.Err() != nil {
						return err
					}
					if rerr := sp.Rollback(ctx); rerr != nil {
						return errors.Join(err, rerr)
					}
					s.log.Error("escalation left for the next sweep", zap.String("notification_id", d.ID),
						zap.String("referral_id", d.ReferralID), zap.Error(err))
					setAside = append(setAside, d.ID)
					continue
				}
				if err := sp.Commit(ctx); err != nil {
					return fmt.Errorf("escalate notification %s: %w", d.ID, err)
				}
				for _, id := range ids {
					escalated[id] = true
				}
			}
			for _, d := range due {
				if escalated[d.ID] {
					done++
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += done
		if done > 0 {
			s.afterCommit()
		}
		if n < escalationBatch {
			return total, nil
		}
	}
}

// escalateDue escalates overdue notification d within tx, alone or with the rest of its
// decision, and returns the ids it marked escalated.
func (s *Service) escalateDue(ctx context.Context, tx pgx.Tx, d store.Notification, now time.Time) ([]string, error) {
	r, err := store.ReferralIn(ctx, tx, d.ReferralID)
	if err != nil {
		return nil, fmt.Errorf("escalate notification %s: %w", d.ID, err)
	}
	var ref intakev1.Referral
	if err := proto.Unmarshal(r.Proto, &ref); err != nil {
		return nil, fmt.Errorf("escalate notification %s: decode referral: %w", d.ID, err)
	}
	dir, err := s.directoryOf(ctx, tx, ref.GetPartnership())
	if err != nil {
		return nil, err
	}
	reason := fmt.Sprintf("%s notification to %s not acknowledged by %s", d.RAG, d.Agency, d.AckDue.UTC().Format(time.RFC3339))
	if d.Kind == notifyv1.NotificationKind_INFORMATION_REQUEST.String() {
		// An answer by any route marks it answered (onResearchAnswered, the answer
		// listener); a receipt alone does not, so this one is unanswered.
		reason = fmt.Sprintf("information request to %s not answered by its deadline %s", d.Agency, d.AckDue.UTC().Format(time.RFC3339))
	}
	first, byDecision := d, d.DecisionID != "" && d.Kind == notifyv1.NotificationKind_ACTION.String()
	if d.Kind == notifyv1.NotificationKind_ENCOMPASS.String() {
		// A school's Encompass notice joins the escalation of the referral's
		// decision when there is one: one escalation per decision.
		if first, byDecision, err = s.decisionToEscalate(ctx, tx, d); err != nil {
			return nil, err
		}
	}
	if byDecision {
		return s.escalateDecision(ctx, tx, dir, &ref, first, now)
	}
	if err := s.escalate(ctx, tx, dir, &ref, d, reason, now); err != nil {
		return nil, err
	}
	return []string{d.ID}, nil
}

// escalate tells the duty manager about n and marks it escalated, within tx.
func (s *Service) escalate(ctx context.Context, tx pgx.Tx, dir partnershipDirectory, ref *intakev1.Referral, n store.Notification, reason string, now time.Time) error {
	if err := store.MarkEscalated(ctx, tx, n.ID, now); err != nil {
		return err
	}
	dm, ok := s.dutyManagerAt(dir, now)
	sp := spec{dir: dir, ref: ref, role: directory.RoleDutyManager, kind: notifyv1.NotificationKind_ESCALATION, key: "escalate:" + n.ID,
		rag: n.RAG, aboutID: n.ID, aboutAgency: n.Agency, note: reason, now: now, agency: dm}
	if !ok {
		sp.agency = directory.Agency{Partnership: dir.partnership.ID}
		sp.failed = fmt.Sprintf("partnership %s has no duty manager in its directory to escalate to", dir.partnership.ID)
	}
	if n.DecisionID != "" {
		sp.decision = appliedSummary(n)
	}
	esc, err := s.create(ctx, tx, sp)
	if err != nil {
		return err
	}
	detail := reason
	if esc != nil {
		detail += "; escalation " + esc.ID + " to " + dm.ID
	}
	if err := s.emit(ctx, tx, EventEscalated, n, n.Attempts, detail, auth.Actor{ID: "notify", Role: auth.ActorRoleSystem}); err != nil {
		return err
	}
	s.metrics.escalations.Inc()
	s.log.Warn("notification escalated", zap.String("notification_id", n.ID), zap.String("referral_id", n.ReferralID),
		zap.String("agency", n.Agency), zap.String("duty_manager", dm.ID))
	return nil
}

// dutyManagerAt is who escalations go to at now: the partnership's duty manager, or out of
// its hours the out-of-hours route it names in the directory (the emergency duty team).
func (s *Service) dutyManagerAt(dir partnershipDirectory, now time.Time) (directory.Agency, bool) {
	dm, ok := dir.byID(dir.partnership.DutyManager)
	if ok && !dm.InHours(now) && dm.OutOfHours != "" {
		if ooh, found := dir.byID(dm.OutOfHours); found {
			return ooh, true
		}
	}
	return dm, ok
}

// decisionToEscalate finds, for an overdue Encompass notice enc, the decision whose one
// escalation should list it: the referral's newest unacknowledged action notification
// stands for it (byDecision); with none, the notice is escalated on its own.
func (s *Service) decisionToEscalate(ctx context.Context, tx pgx.Tx, enc store.Notification) (store.Notification, bool, error) {
	n, found, err := store.LatestOpenAction(ctx, tx, enc.ReferralID)
	if err != nil || !found {
		return enc, false, err
	}
	return n, true, nil
}

// escalateDecision sends one escalation for the decision behind first, an action
// notification: it lists every agency told of that decision that has not acknowledged
// (late, or with its deadline still to come), the referral's unacknowledged Operation
// Encompass notices among them, each agency once, and marks them all escalated, so a
// decision never raises more than one. It returns the ids it marked.
func (s *Service) escalateDecision(ctx context.Context, tx pgx.Tx, dir partnershipDirectory, ref *intakev1.Referral, first store.Notification, now time.Time) ([]string, error) {
	open, err := store.UnacknowledgedOfDecision(ctx, tx, first.ReferralID, first.DecisionID, first.DecisionVersion)
	if err != nil {
		return nil, err
	}
	encs, err := store.OpenEncompassOf(ctx, tx, first.ReferralID)
	if err != nil {
		return nil, err
	}
	open = append(open, encs...)
	if !slices.ContainsFunc(open, func(n store.Notification) bool { return n.ID == first.ID }) {
		open = append(open, first)
	}
	reason := s.decisionEscalationReason(first, open, now)
	dm, ok := s.dutyManagerAt(dir, now)
	key := fmt.Sprintf("escalate:decision:%s:v%d", first.DecisionID, first.DecisionVersion)
	sp := spec{dir: dir, ref: ref, role: directory.RoleDutyManager, kind: notifyv1.NotificationKind_ESCALATION,
		key: key, rag: first.RAG, aboutID: first.ID,
		aboutAgency: first.Agency, note: reason, now: now, agency: dm, decision: appliedSummary(first)}
	if !ok {
		sp.agency = directory.Agency{Partnership: dir.partnership.ID}
		sp.failed = fmt.Sprintf("partnership %s has no duty manager in its directory to escalate to", dir.partnership.ID)
	}
	esc, err := s.create(ctx, tx, sp)
	if err != nil {
		return nil, err
	}
	if esc == nil {
		// The decision was escalated before, and these came due after (a notice re-addressed
		// from the dead letters since): they are told once more, together.
		sp.key = key + ":" + first.ID
		if esc, err = s.create(ctx, tx, sp); err != nil {
			return nil, err
		}
	}
	ids := make([]string, 0, len(open))
	for _, n := range open {
		if err := store.MarkEscalated(ctx, tx, n.ID, now); err != nil {
			return nil, err
		}
		detail := reason
		if esc != nil {
			detail = "escalation " + esc.ID + " to " + dm.ID + ": " + reason
		}
		if err := s.emit(ctx, tx, EventEscalated, n, n.Attempts, detail, auth.Actor{ID: "notify", Role: auth.ActorRoleSystem}); err != nil {
			return nil, err
		}
		ids = append(ids, n.ID)
	}
	s.metrics.escalations.Inc()
	s.log.Warn("decision escalated", zap.String("referral_id", first.ReferralID), zap.String("decision_id", first.DecisionID),
		zap.Int("unacknowledged", len(open)), zap.String("to", dm.ID))
	return ids, nil
}

// decisionEscalationReason lists the agencies of a decision's escalation, each once with
// everything it has not acknowledged (a school's decision and its Encompass notice), late
// ones first, then those whose deadline is still to come.
func (s *Service) decisionEscalationReason(first store.Notification, open []store.Notification, now time.Time) string {
	type agencyDue struct {
		who  string
		what []string
		due  time.Time
	}
	byAgency := map[string]*agencyDue{}
	var order []string
	for _, n := range open {
		key := n.Agency + "/" + n.RoutedFrom
		a, ok := byAgency[key]
		if !ok {
			who := n.Agency
			if n.RoutedFrom != "" {
				who = n.Agency + " for " + n.RoutedFrom
			}
			a = &agencyDue{who: who, due: *n.AckDue}
			byAgency[key] = a
			order = append(order, key)
		}
		what := []string{n.Role}
		if n.Kind == notifyv1.NotificationKind_ENCOMPASS.String() {
			what = []string{"Operation Encompass"}
		} else if _, carried := carriedEncompass(n); carried {
			what = append(what, "Operation Encompass")
		}
		for _, w := range what {
			if !slices.Contains(a.what, w) {
				a.what = append(a.what, w)
			}
		}
		if n.AckDue.Before(a.due) {
			a.due = *n.AckDue
		}
	}
	var late, waiting []string
	for _, key := range order {
		a := byAgency[key]
		line := a.who + " (" + strings.Join(a.what, ", ") + "), due " + a.due.In(s.calendar.Location()).Format("Mon 2 Jan 15:04")
		if !a.due.After(now) {
			late = append(late, line)
		} else {
			waiting = append(waiting, line)
		}
	}
	reason := fmt.Sprintf("decision %s v%d (%s): not acknowledged by %s", first.DecisionID, first.DecisionVersion, first.RAG, strings.Join(late, "; "))
	if len(waiting) > 0 {
		reason += "; also awaiting " + strings.Join(waiting, "; ")
	}
	return reason
}

// appliedSummary is the decision as the original notification recorded it.
func appliedSummary(n store.Notification) *share.Decision {
	var m notifyv1.AgencyMessage
	if protojson.Unmarshal(n.Payload, &m) != nil || m.GetDecision() == nil {
		return &share.Decision{ID: n.DecisionID, Version: n.DecisionVersion, RAG: n.RAG}
	}
	d := m.GetDecision()
	sd := &share.Decision{ID: d.GetDecisionId(), Version: d.GetVersion(), Level: d.GetLevel(), RAG: d.GetRag(), Pathway: d.GetPathway(),
		Reason: d.GetReason(), Status: d.GetStatus()}
	if d.GetLeadAgency() != "" {
		sd.Roles = []string{d.GetLeadAgency()}
	}
	if d.GetResponseDue() != nil {
		sd.ResponseDue = d.GetResponseDue().AsTime()
	}
	return sd
}

// Acknowledge records an agency's acknowledgement of notification id, by by, and emits
// mash.notification.acknowledged once.
func (s *Service) Acknowledge(ctx context.Context, id string, by auth.Actor, note string) (store.Notification, bool, error) {
	var n store.Notification
	var already bool
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		var err error
		if n, already, err = store.Acknowledge(ctx, tx, id, s.now().UTC(), by.ID, note); err != nil || already {
			return err
		}
		return s.emit(ctx, tx, EventAcknowledged, n, n.Attempts, note, by)
	})
	if err != nil {
		return store.Notification{}, false, err
	}
	if !already {
		s.relay.Wake()
		if n.DeliveredAt != nil {
			s.metrics.ackLatency.WithLabelValues(n.RAG).Observe(n.AcknowledgedAt.Sub(*n.DeliveredAt).Seconds())
		}
		s.log.Info("notification acknowledged", zap.String("notification_id", n.ID), zap.String("agency", n.Agency), zap.String("by", by.ID))
	}
	return n, already, nil
}

// errStillUnroutable: a retried unroutable notification still has no agency to go to.
var errStillUnroutable = errors.New("still no agency in the directory fills the role")

// Retry puts a failed notification back for delivery. One that had no agency (a gap in the
// directory) is resolved again: a copy goes to each agency now filling the role.
func (s *Service) Retry(ctx context.Context, id string, by auth.Actor, reason string) (store.Notification, error) {
	var out store.Notification
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		now := s.now().UTC()
		orig, err := store.GetIn(ctx, tx, id)
		if err != nil {
			return err
		}
		if orig.Agency != "" {
			if out, err = store.Retry(ctx, tx, id, now); err != nil {
				return err
			}
			return s.emit(ctx, tx, EventRetried, out, 0, reason, by)
		}
		if orig.State != store.StateFailed {
			return store.ErrState
		}
		r, err := store.ReferralIn(ctx, tx, orig.ReferralID)
		if err != nil {
			return err
		}
		var ref intakev1.Referral
		if err := proto.Unmarshal(r.Proto, &ref); err != nil {
			return fmt.Errorf("retry %s: decode referral: %w", id, err)
		}
		dir, err := s.readDirectory(ctx, tx, ref.GetPartnership())
		if err != nil {
			return err
		}
		var targets []directory.Agency
		if a, ok := addressedRole(orig.Role); ok {
			ag, found, err := s.agencyByID(ctx, tx, dir, a)
			if err != nil {
				return err
			}
			if found {
				targets = []directory.Agency{ag}
			}
		} else {
			targets = directory.Resolve(dir.agencies, orig.Role, ref.GetSubmission().GetChild().GetSchool())
		}
		if len(targets) == 0 {
			return fmt.Errorf("%w %s in %s", errStillUnroutable, orig.Role, dir.partnership.ID)
		}
		for _, a := range targets {
			copyN, err := s.readdress(dir, orig, a, now)
			if err != nil {
				return err
			}
			if _, err := store.InsertNotification(ctx, tx, copyN); err != nil {
				return err
			}
			if err := s.emit(ctx, tx, EventRetried, copyN, 0, reason+" (re-addressed from unroutable "+orig.ID+")", by); err != nil {
				return err
			}
			out = copyN
		}
		return store.MarkWithdrawn(ctx, tx, orig.ID, now)
	})
	if err != nil {
		return store.Notification{}, err
	}
	s.afterCommit()
	return out, nil
}

// addressedRole names the agency of a notification addressed to one agency rather than a
// role: the referrer's feedback ("referrer:<agency>") or an information request
// ("research:<agency>").
func addressedRole(role string) (string, bool) {
	for _, p := range []string{"referrer:", "research:"} {
		if len(role) > len(p) && role[:len(p)] == p {
			return role[len(p):], true
		}
	}
	return "", false
}

// readdress copies an unroutable notification to agency a, with the payload naming it.
func (s *Service) readdress(dir partnershipDirectory, orig store.Notification, a directory.Agency, now time.Time) (store.Notification, error) {
	var m notifyv1.AgencyMessage
	if err := protojson.Unmarshal(orig.Payload, &m); err != nil {
		return store.Notification{}, fmt.Errorf("re-address %s: decode payload: %w", orig.ID, err)
	}
	n := orig
	n.ID = uuid.Must(uuid.NewV7()).String()
	n.DedupeKey = orig.DedupeKey + ":to:" + a.ID
	n.Agency, n.Channel, n.State, n.LastError, n.Attempts = a.ID, a.Channel, store.StatePending, "", 0
	n.CreatedAt, n.NextAttemptAt = now, now
	n.WithdrawnAt, n.EscalatedAt, n.AckDue = nil, nil, nil
	switch orig.Kind {
	case notifyv1.NotificationKind_ACTION.String():
		due, err := s.ackDue(dir, orig.Role, orig.RAG, now)
		if err != nil {
			return store.Notification{}, fmt.Errorf("re-address %s: %w", orig.ID, err)
		}
		if !due.IsZero() {
			n.AckDue = &due
			m.AcknowledgeBy = timestamppb.New(due)
		}
	case notifyv1.NotificationKind_INFORMATION_REQUEST.String():
		// Still due when the hub asked for it (a late copy is overdue at once, and says so).
		if r := m.GetInformationRequest(); r.GetDue() != nil {
			due := r.GetDue().AsTime().UTC()
			n.AckDue = &due
			m.AcknowledgeBy = r.GetDue()
			n.Role = RoleResearch
			r.AnswerSubject = ""
			if a.Channel == channel.KindNATS {
				r.AnswerSubject = AnswerSubject(a.ID)
			}
		}
	}
	m.NotificationId, m.Agency, m.CreatedAt = n.ID, a.ID, timestamppb.New(now)
	body, err := protojson.Marshal(&m)
	if err != nil {
		return store.Notification{}, fmt.Errorf("re-address %s: %w", orig.ID, err)
	}
	sum := sha256.Sum256(body)
	n.Payload, n.PayloadSHA256 = body, hex.EncodeToString(sum[:])
	return n, nil
}
