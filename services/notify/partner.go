package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/share"
	"github.com/mash-hub/mash/services/notify/store"
)

// inboxAPI serves AgencyInboxService beside NotifyService, with its checks.
type inboxAPI struct {
	notifyv1.UnimplementedAgencyInboxServiceServer
	api *grpcAPI
}

// GetNotificationMessage returns the message an agency was sent, to that agency alone: the
// partner view shows its staff exactly what their role's channel carried, and nothing more.
// Hub staff read what was shared through the share record (fields, digest, basis) instead;
// to them, as to any other agency, the message is not found.
func (in *inboxAPI) GetNotificationMessage(ctx context.Context, req *notifyv1.GetNotificationMessageRequest) (*notifyv1.GetNotificationMessageResponse, error) {
	a := in.api
	id, err := server.Require(ctx, auth.ReadNotifications)
	if err != nil {
		return nil, err
	}
	n, err := a.visible(ctx, id, req.GetNotificationId())
	if err != nil {
		return nil, err
	}
	if n.Agency != id.Agency {
		return nil, apierr.NotFound("notification " + n.ID + " not found among your agency's")
	}
	var m notifyv1.AgencyMessage
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(n.Payload, &m); err != nil {
		return nil, fmt.Errorf("decode message of notification %s: %w", n.ID, err)
	}
	// The trace of this read commits before the message leaves the service.
	if err := access.Record(ctx, a.svc.store.Pool(), store.Schema, a.svc.relay.Wake, a.svc.cipher, id, access.Read{Type: eventsv1.SubjectAccessNotification,
		Action: "GetNotificationMessage", Partnership: n.Partnership, ReferralID: n.ReferralID}, a.svc.now()); err != nil {
		return nil, err
	}
	return &notifyv1.GetNotificationMessageResponse{Notification: notificationToProto(n, nil), Message: &m}, nil
}

// Directory roles of the owners of a professional disagreement's stages, in the order the
// stages escalate (triage's PRACTITIONER, TEAM_MANAGER, SENIOR_SAFEGUARDING_MANAGER and
// PARTNERSHIP). A partnership whose directory fills none of a stage's role has the stage's
// notice listed as failed and its duty manager told, as for any role no one fills.
const (
	RoleDisagreementPractitioner = "hub_team"
	RoleDisagreementTeamManager  = "hub_team_manager"
	RoleDisagreementSenior       = "senior_safeguarding_manager"
	RoleDisagreementPartnership  = "partnership_contact"
)

// stageOwnerRole is the directory role that owns a disagreement stage.
func stageOwnerRole(stage triagev1.DisagreementStage) (string, bool) {
	switch stage {
	case triagev1.DisagreementStage_PRACTITIONER:
		return RoleDisagreementPractitioner, true
	case triagev1.DisagreementStage_TEAM_MANAGER:
		return RoleDisagreementTeamManager, true
	case triagev1.DisagreementStage_SENIOR_SAFEGUARDING_MANAGER:
		return RoleDisagreementSenior, true
	case triagev1.DisagreementStage_PARTNERSHIP:
		return RoleDisagreementPartnership, true
	}
	return "", false
}

// onDisagreementStage tells the owner of the stage a disagreement has reached (raised: the
// hub's team; escalated: the next stage's owner), once per disagreement and stage (dedupe
// key disagreement:<id>:<stage>), through the owner's own channel. No acknowledgement
// deadline is set: triage escalates a stage that passes its own deadline, which tells the
// next owner.
func (s *Service) onDisagreementStage(ctx context.Context, tx pgx.Tx, d *triagev1.Disagreement) error {
	role, ok := stageOwnerRole(d.GetStage())
	if d.GetId() == "" || d.GetReferralId() == "" || !ok {
		return fmt.Errorf("disagreement %q of referral %q at stage %s: id, referral and a stage are required", d.GetId(), d.GetReferralId(), d.GetStage())
	}
	if d.GetResolved() {
		return nil
	}
	ref, dir, err := s.referralAndDirectory(ctx, tx, d.GetReferralId(), "disagreement "+d.GetId())
	if err != nil {
		return err
	}
	now := s.now().UTC()
	sum := disagreementSummary(d)
	key := fmt.Sprintf("disagreement:%s:%s", d.GetId(), d.GetStage())
	owners := directory.Resolve(dir.agencies, role, "")
	if len(owners) == 0 {
		return s.unroutableDisagreement(ctx, tx, dir, ref, sum, role, key, now)
	}
	for _, a := range owners {
		if _, err := s.create(ctx, tx, spec{dir: dir, ref: ref, agency: a, role: role, kind: notifyv1.NotificationKind_DISAGREEMENT,
			key: key + ":" + a.ID, rag: "NONE", disagreement: sum, now: now}); err != nil {
			return err
		}
	}
	return nil
}

// RoleDisagreementRaiser is the role recorded on the notice telling the agency that raised a
// disagreement that it was resolved.
const RoleDisagreementRaiser = "disagreement_raiser"

// onDisagreementResolved tells the agency that raised a disagreement what was agreed, once,
// through its own channel (a partner without a system of its own reads it in the console's
// partner view from its email's link). An agency outside the directory is not told: it
// raised the disagreement through the API and follows it there, as a referrer outside the
// directory hears nothing of its referral.
func (s *Service) onDisagreementResolved(ctx context.Context, tx pgx.Tx, d *triagev1.Disagreement) error {
	if d.GetId() == "" || d.GetReferralId() == "" || d.GetRaisedByAgency() == "" {
		return fmt.Errorf("resolved disagreement %q of referral %q: id, referral and the raising agency are required", d.GetId(), d.GetReferralId())
	}
	ref, dir, err := s.referralAndDirectory(ctx, tx, d.GetReferralId(), "disagreement "+d.GetId())
	if err != nil {
		return err
	}
	a, ok, err := s.agencyByID(ctx, tx, dir, d.GetRaisedByAgency())
	if err != nil || !ok {
		return err
	}
	_, err = s.create(ctx, tx, spec{dir: dir, ref: ref, agency: a, role: RoleDisagreementRaiser, kind: notifyv1.NotificationKind_DISAGREEMENT,
		key: "disagreement:" + d.GetId() + ":resolved", rag: "NONE", disagreement: disagreementSummary(d), now: s.now().UTC()})
	return err
}

// referralAndDirectory reads the referral notify kept, and its partnership's directory; a
// referral not received yet is retried, as a decision is.
func (s *Service) referralAndDirectory(ctx context.Context, tx pgx.Tx, referralID, what string) (*intakev1.Referral, partnershipDirectory, error) {
	rec, err := store.ReferralIn(ctx, tx, referralID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, partnershipDirectory{}, fmt.Errorf("%s about referral %s: %w", what, referralID, errNotYetReceived)
	}
	if err != nil {
		return nil, partnershipDirectory{}, err
	}
	var ref intakev1.Referral
	if err := proto.Unmarshal(rec.Proto, &ref); err != nil {
		return nil, partnershipDirectory{}, fmt.Errorf("referral %s: decode: %w", rec.ID, err)
	}
	dir, err := s.directoryOf(ctx, tx, ref.GetPartnership())
	if err != nil {
		return nil, partnershipDirectory{}, err
	}
	return &ref, dir, nil
}

// unroutableDisagreement records a stage notice no directory entry can take as failed, and
// tells the duty manager, as for any unfilled role.
func (s *Service) unroutableDisagreement(ctx context.Context, tx pgx.Tx, dir partnershipDirectory, ref *intakev1.Referral,
	sum *share.Disagreement, role, key string, now time.Time) error {
	reason := fmt.Sprintf("no agency in partnership %s's directory fills role %s (owner of a disagreement's %s stage)", dir.partnership.ID, role,
		strings.ToLower(sum.Stage))
	n, err := s.create(ctx, tx, spec{dir: dir, ref: ref, agency: directory.Agency{ID: "", Partnership: dir.partnership.ID}, role: role,
		kind: notifyv1.NotificationKind_DISAGREEMENT, key: key + ":unroutable", rag: "NONE", disagreement: sum, failed: reason, now: now})
	if err != nil || n == nil {
		return err
	}
	s.log.Warn("disagreement notice unroutable", zap.String("referral_id", ref.GetId()), zap.String("notification_id", n.ID),
		zap.String("role", role), zap.String("partnership", dir.partnership.ID))
	return s.escalate(ctx, tx, dir, ref, *n, reason, now)
}

func disagreementSummary(d *triagev1.Disagreement) *share.Disagreement {
	sum := &share.Disagreement{ID: d.GetId(), RaisedByAgency: d.GetRaisedByAgency(), Reason: d.GetReason(), Stage: d.GetStage().String()}
	if d.GetStageDue() != nil {
		sum.StageDue = d.GetStageDue().AsTime().UTC()
	}
	if d.GetRaisedAt() != nil {
		sum.RaisedAt = d.GetRaisedAt().AsTime().UTC()
	}
	if d.GetResolved() {
		sum.Resolution = d.GetResolution()
		if d.GetResolvedAt() != nil {
			sum.ResolvedAt = d.GetResolvedAt().AsTime().UTC()
		}
	}
	// The stage before this one is the last ended step, when there is one.
	for _, st := range d.GetSteps() {
		if st.GetEndedAt() != nil && st.GetStage() < d.GetStage() {
			sum.PreviousOutcome = st.GetOutcome()
		}
	}
	return sum
}

// RoleLeadProfessional is the role recorded on the notice telling an agency it was named
// lead professional for a case.
const RoleLeadProfessional = "lead_professional"

// onLeadProfessional tells the agency named lead professional for a case, once per naming
// (the event's id keys it: naming the same agency again tells it again, as a change of team
// or person is news to it). An agency no directory lists is recorded as unroutable and the
// duty manager told, as for any gap in the directory.
func (s *Service) onLeadProfessional(ctx context.Context, tx pgx.Tx, eventID string, ev *eventsv1.LeadProfessionalNamed) error {
	l := ev.GetLeadProfessional()
	if ev.GetReferralId() == "" || l.GetAgency() == "" {
		return fmt.Errorf("lead professional of referral %q: the referral and the agency are required", ev.GetReferralId())
	}
	ref, dir, err := s.referralAndDirectory(ctx, tx, ev.GetReferralId(), "lead professional")
	if err != nil {
		return err
	}
	now := s.now().UTC()
	lead := &share.Lead{Agency: l.GetAgency(), Team: l.GetTeam(), Person: l.GetPerson(), Scope: l.GetScope().String(), GroupCases: ev.GetGroupCases()}
	if l.GetNamedAt() != nil {
		lead.NamedAt = l.GetNamedAt().AsTime().UTC()
	}
	key := "lead:" + ev.GetReferralId() + ":" + eventID
	a, ok, err := s.agencyByID(ctx, tx, dir, l.GetAgency())
	if err != nil {
		return err
	}
	if !ok {
		reason := fmt.Sprintf("lead professional agency %s is not in the directory of %s", l.GetAgency(), dir.partnership.ID)
		n, err := s.create(ctx, tx, spec{dir: dir, ref: ref, agency: directory.Agency{ID: l.GetAgency(), Partnership: dir.partnership.ID},
			role: RoleLeadProfessional, kind: notifyv1.NotificationKind_LEAD_PROFESSIONAL, key: key, rag: "NONE", lead: lead, failed: reason, now: now})
		if err != nil || n == nil {
			return err
		}
		s.log.Warn("lead professional notice unroutable", zap.String("referral_id", ref.GetId()), zap.String("notification_id", n.ID))
		return s.escalate(ctx, tx, dir, ref, *n, reason, now)
	}
	_, err = s.create(ctx, tx, spec{dir: dir, ref: ref, agency: a, role: RoleLeadProfessional, kind: notifyv1.NotificationKind_LEAD_PROFESSIONAL,
		key: key, rag: "NONE", lead: lead, now: now})
	return err
}
