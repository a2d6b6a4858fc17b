package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"mash/pkg/auth"
	"mash/pkg/events"
	eventsv1 "mash/proto/mash/events/v1"
	notifyv1 "mash/proto/mash/notify/v1"
	rulesv1 "mash/proto/mash/rules/v1"
	"mash/services/audit/store"
	auditlog "mash/services/audit/tlog"
)

// Roles recorded on entries whose actor is not a person.
const (
	RoleSystem       = auth.ActorRoleSystem
	RoleAgency       = auth.ActorRoleAgency
	RolePractitioner = string(auth.RolePractitioner)
)

// record stores one event as a pending entry inside the consumer's transaction, which also
// holds its inbox row: a redelivered event stops at the inbox and is never recorded twice.
// The payload (the envelope's Any, with its type) is sealed under the referral's case key;
// the entry keeps only SHA-256 of the ciphertext.
func (s *Service) record(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
	if strings.HasPrefix(env.GetType(), "mash.audit.") {
		// The service's own events (checkpoints) are already in its tables; recording them
		// would add an entry per checkpoint and a checkpoint per entry, forever.
		return nil
	}
	if err := store.AsWriter(ctx, tx); err != nil {
		return err
	}
	p := s.entryFields(env)
	if err := (auditlog.Entry{EventID: p.EventID, EventType: p.EventType, OccurredAt: p.OccurredAt, RecordedAt: p.ReceivedAt,
		Partnership: p.Partnership, ReferralID: p.ReferralID, ChildID: p.ChildID, Actor: p.Actor, ActorRole: p.ActorRole,
		Agency: p.Agency, PackVersion: p.PackVersion, Decision: p.Decision}).Validate(); err != nil {
		return fmt.Errorf("event %s cannot be an audit entry: %w", env.GetEventId(), err)
	}
	if env.GetPayload() != nil {
		plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(env.GetPayload())
		if err != nil {
			return fmt.Errorf("event %s: encode payload: %w", env.GetEventId(), err)
		}
		sum, err := s.sealPayload(ctx, tx, env.GetEventId(), env.GetReferralId(), plain)
		if err != nil {
			return fmt.Errorf("event %s: %w", env.GetEventId(), err)
		}
		p.PayloadSHA256 = sum
	}
	if err := store.InsertPending(ctx, tx, p); err != nil {
		return err
	}
	if env.GetType() == events.CaseErasedSubject {
		return s.applyErasure(ctx, tx, env)
	}
	return nil
}

// applyErasure shreds an erased case in the transaction that records its mash.case.erased
// entry: the case's payloads here become unreadable (its entries and every proof stay, so
// the trail still lists the case's events and the log still verifies), a case-shredded
// entry records it, and the case's dead letters go. The reason the manager gave is on the
// mash.admin.case entry of the same erasure; the shredding records where to find it.
func (s *Service) applyErasure(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
	ev, err := events.CaseErasedOf(env)
	if err != nil {
		return err
	}
	if _, err := events.EraseCase(ctx, tx, store.Schema, ev.GetReferralId()); err != nil {
		return err
	}
	role := ev.GetErasedByRole()
	if role == "" {
		role = RoleSystem
	}
	return s.shredIn(ctx, tx, ev.GetReferralId(), ev.GetErasedBy(), role,
		"case erased: event "+env.GetEventId()+" (the reason is on the case.erase administrative entry)")
}

// sealPayload encrypts plain under the case key of referralID (made on first use) and
// stores it, returning SHA-256 of the ciphertext. A case already shredded stores nothing:
// its later events are recorded as redacted from the start.
func (s *Service) sealPayload(ctx context.Context, tx pgx.Tx, eventID, referralID string, plain []byte) ([32]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return [32]byte{}, err
	}
	wrapped, err := wrapKey(s.cfg.MasterKey, fresh, referralID)
	if err != nil {
		return [32]byte{}, err
	}
	k, err := store.CaseKeyFor(ctx, tx, referralID, uuid.Must(uuid.NewV7()).String(), wrapped)
	if err != nil {
		return [32]byte{}, err
	}
	if k.DestroyedAt != nil {
		// Record that a payload existed (a hash of nothing sealed would be a lie): a fixed
		// marker, never a hash of the personal data.
		return sha256.Sum256([]byte("redacted: case key destroyed before the event arrived")), nil
	}
	key, err := unwrapKey(s.cfg.MasterKey, k.Wrapped, referralID)
	if err != nil {
		return [32]byte{}, err
	}
	nonce, ct, err := seal(key, plain, eventID)
	if err != nil {
		return [32]byte{}, err
	}
	if err := store.InsertPayload(ctx, tx, eventID, k.ID, nonce, ct); err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(ct), nil
}

// entryFields derives an entry from the envelope and, for the payloads it knows, the
// decision summary, pack version, child and actor. Unknown event types are recorded with
// the envelope's fields alone.
func (s *Service) entryFields(env *eventsv1.Envelope) store.Pending {
	now := s.now().UTC()
	p := store.Pending{
		EventID: env.GetEventId(), EventType: env.GetType(), OccurredAt: now, ReceivedAt: now,
		Partnership: env.GetPartnership(), ReferralID: env.GetReferralId(),
	}
	if env.GetOccurredAt() != nil {
		p.OccurredAt = env.GetOccurredAt().AsTime().UTC()
	}
	any := env.GetPayload()
	if any == nil {
		return p
	}
	switch {
	case any.MessageIs(&eventsv1.ReferralReceived{}):
		var ev eventsv1.ReferralReceived
		if any.UnmarshalTo(&ev) == nil {
			p.Agency = ev.GetReferral().GetAgency()
			p.Actor, p.ActorRole = p.Agency, RoleAgency
			p.Decision = "received"
		}
	case any.MessageIs(&eventsv1.RecommendationMade{}):
		var ev eventsv1.RecommendationMade
		if any.UnmarshalTo(&ev) == nil {
			decisionFields(&p, ev.GetDecision())
			p.Actor, p.ActorRole = "rules", RoleSystem
			p.Decision = "recommended " + p.Decision
		}
	case any.MessageIs(&eventsv1.DecisionMade{}):
		var ev eventsv1.DecisionMade
		if any.UnmarshalTo(&ev) == nil {
			d := ev.GetDecision()
			decisionFields(&p, d)
			p.Agency = ev.GetDecidedByAgency()
			p.Actor, p.ActorRole = d.GetReviewedBy(), roleOr(d.GetReviewedByRole())
			p.Decision = strings.ToLower(d.GetStatus().String()) + " " + p.Decision
			if d.GetStatus() == rulesv1.DecisionStatus_OVERRIDDEN {
				p.Decision += " from " + outcomeSummary(ev.GetPrevious())
			}
		}
	case any.MessageIs(&eventsv1.TriageDecided{}):
		var ev eventsv1.TriageDecided
		if any.UnmarshalTo(&ev) == nil {
			decisionFields(&p, ev.GetDecision())
			p.Actor, p.ActorRole = "rules", RoleSystem
		}
	case any.MessageIs(&eventsv1.TriageConfirmed{}):
		var ev eventsv1.TriageConfirmed
		if any.UnmarshalTo(&ev) == nil {
			decisionFields(&p, ev.GetDecision())
			p.Actor, p.ActorRole = ev.GetDecision().GetReviewedBy(), roleOr(ev.GetDecision().GetReviewedByRole())
		}
	case any.MessageIs(&eventsv1.RecordAccessed{}):
		var ev eventsv1.RecordAccessed
		if any.UnmarshalTo(&ev) == nil {
			p.Actor, p.ActorRole, p.Agency = ev.GetClientId(), ev.GetRole(), ev.GetAgency()
			p.ChildID = ev.GetChildId()
			p.Decision = "read: " + ev.GetAction()
			if n := len(ev.GetListed()); n > 0 {
				// A page of a list: which records it showed are in the sealed payload.
				p.Decision += fmt.Sprintf(" (%d listed)", n)
			}
		}
	case any.MessageIs(&eventsv1.NotificationEvent{}):
		var ev eventsv1.NotificationEvent
		if any.UnmarshalTo(&ev) == nil {
			p.Agency = ev.GetAgency()
			p.Actor, p.ActorRole = "notify", RoleSystem
			switch {
			case ev.GetActor() == "" || ev.GetActor() == "notify":
			case ev.GetActorRole() != "":
				p.Actor, p.ActorRole = ev.GetActor(), ev.GetActorRole()
			default:
				// Written before events carried the actor's role: only agencies acted then.
				p.Actor, p.ActorRole = ev.GetActor(), RoleAgency
			}
			p.Decision = strings.TrimPrefix(env.GetType(), "mash.notification.") + " " + ev.GetKind() + " to " + ev.GetAgency()
			if ev.GetPayloadSha256() != "" {
				p.Decision += " sha256:" + ev.GetPayloadSha256()[:16]
			}
		}
	case any.MessageIs(&eventsv1.CaseChanged{}):
		var ev eventsv1.CaseChanged
		if any.UnmarshalTo(&ev) == nil {
			c := ev.GetCase()
			p.ChildID = c.GetChildId()
			p.Actor, p.ActorRole = staffActor(ev.GetActor(), ev.GetActorRole())
			p.Decision = strings.TrimPrefix(env.GetType(), "mash.case.") + ": " + c.GetState().String()
			switch env.GetType() {
			case "mash.case.closed":
				p.Decision += " " + c.GetOutcome().String()
			case "mash.case.claimed", "mash.case.assigned":
				p.Decision += " to " + c.GetAssignee()
			case "mash.case.decided":
				p.Decision += " " + c.GetLevel().String() + "/" + c.GetRag().String()
			}
		}
	case any.MessageIs(&eventsv1.StrategyDiscussionRecorded{}):
		var ev eventsv1.StrategyDiscussionRecorded
		if any.UnmarshalTo(&ev) == nil {
			p.Actor, p.ActorRole = staffActor(ev.GetDiscussion().GetRecordedBy(), ev.GetRecordedByRole())
			p.Decision = fmt.Sprintf("strategy discussion recorded (%d taking part, section 47: %t)",
				len(ev.GetDiscussion().GetParticipants()), ev.GetDiscussion().GetSection_47())
		}
	case any.MessageIs(&eventsv1.InformationRequestChanged{}):
		var ev eventsv1.InformationRequestChanged
		if any.UnmarshalTo(&ev) == nil {
			r := ev.GetRequest()
			p.Agency = r.GetAgency()
			p.Actor, p.ActorRole = staffActor(ev.GetActor(), ev.GetActorRole())
			p.Decision = "information request " + r.GetId() + " " + strings.ToLower(r.GetState().String()) + " (" + r.GetAgency() + ")"
		}
	case any.MessageIs(&eventsv1.InformationAnswerReceived{}):
		var ev eventsv1.InformationAnswerReceived
		if any.UnmarshalTo(&ev) == nil {
			p.Agency = ev.GetAgency()
			p.Actor, p.ActorRole = ev.GetAgency(), RoleAgency
			p.Decision = "information request " + ev.GetRequestId() + " answered on " + ev.GetChannel()
		}
	case any.MessageIs(&eventsv1.DisagreementChanged{}):
		var ev eventsv1.DisagreementChanged
		if any.UnmarshalTo(&ev) == nil {
			d := ev.GetDisagreement()
			p.Agency = d.GetRaisedByAgency()
			p.Actor, p.ActorRole = staffActor(ev.GetActor(), ev.GetActorRole())
			p.Decision = "disagreement " + d.GetId() + " " + strings.TrimPrefix(env.GetType(), "mash.disagreement.") + " at " + d.GetStage().String()
		}
	case any.MessageIs(&eventsv1.DirectoryChangeProposed{}), any.MessageIs(&eventsv1.DirectoryChangeApproved{}),
		any.MessageIs(&eventsv1.DirectoryChangeRejected{}), any.MessageIs(&eventsv1.DirectoryChangeExpired{}),
		any.MessageIs(&eventsv1.AgencySecretRotated{}), any.MessageIs(&eventsv1.DirectoryContactNotified{}):
		directoryFields(&p, env)
	case any.MessageIs(&eventsv1.SharingChanged{}):
		var ev eventsv1.SharingChanged
		if any.UnmarshalTo(&ev) == nil {
			p.Actor, p.ActorRole = staffActor(ev.GetActor(), ev.GetActorRole())
			p.Decision = strings.TrimPrefix(env.GetType(), "mash.") + ": consent " + ev.GetConsentStatus()
			if a := ev.GetAuthorisation(); a != nil {
				p.Decision += ", shared without consent on " + a.GetGround() + " (" + a.GetLawfulBasis() + ")"
			}
		}
	case any.MessageIs(&eventsv1.CaseErased{}):
		var ev eventsv1.CaseErased
		if any.UnmarshalTo(&ev) == nil {
			p.ChildID = ev.GetChildId()
			p.Actor, p.ActorRole = staffActor(ev.GetErasedBy(), ev.GetErasedByRole())
			p.Decision = "case erased: key destroyed, personal data blanked in every service"
		}
	case any.MessageIs(&eventsv1.AdminActRecorded{}):
		var ev eventsv1.AdminActRecorded
		if any.UnmarshalTo(&ev) == nil {
			// Who, what, to what and the outcome go in the leaf; the client address, reason
			// and detail stay in the sealed payload (they may identify people).
			p.Actor, p.ActorRole, p.Agency = ev.GetActor(), ev.GetActorRole(), ev.GetAgency()
			p.Decision = ev.GetAction() + " " + ev.GetTarget() + ": " + ev.GetOutcome()
		}
	case any.MessageIs(&eventsv1.TriageOverridden{}):
		var ev eventsv1.TriageOverridden
		if any.UnmarshalTo(&ev) == nil {
			decisionFields(&p, ev.GetDecision())
			p.Actor, p.ActorRole = ev.GetDecision().GetReviewedBy(), roleOr(ev.GetDecision().GetReviewedByRole())
			p.Decision += " from " + outcomeSummary(ev.GetPrevious())
		}
	}
	return p
}

// directoryFields describes an act on the agency directory's four-eyes rule: who proposed
// or decided, in what role, from which client address, and what changed (URLs and fields,
// never a secret: the events carry none).
func directoryFields(p *store.Pending, env *eventsv1.Envelope) {
	msg, err := env.GetPayload().UnmarshalNew()
	if err != nil {
		return
	}
	var c *notifyv1.DirectoryChange
	switch ev := msg.(type) {
	case *eventsv1.DirectoryChangeProposed:
		c = ev.GetChange()
		p.Actor, p.ActorRole = c.GetProposedBy(), roleOr(c.GetProposedByRole())
		p.Decision = "directory change " + c.GetId() + " proposed for " + c.GetAgencyId() + ": " + fieldChanges(c) + fromAddress(c.GetProposedFrom())
	case *eventsv1.DirectoryChangeApproved:
		c = ev.GetChange()
		p.Actor, p.ActorRole = c.GetDecidedBy(), roleOr(c.GetDecidedByRole())
		p.Decision = "directory change " + c.GetId() + " for " + c.GetAgencyId() + " approved (proposed by " + c.GetProposedBy() + "): " +
			fieldChanges(c) + fromAddress(c.GetDecidedFrom())
	case *eventsv1.DirectoryChangeRejected:
		c = ev.GetChange()
		p.Actor, p.ActorRole = c.GetDecidedBy(), roleOr(c.GetDecidedByRole())
		p.Decision = "directory change " + c.GetId() + " for " + c.GetAgencyId() + " rejected (proposed by " + c.GetProposedBy() + ")" +
			fromAddress(c.GetDecidedFrom())
	case *eventsv1.DirectoryChangeExpired:
		c = ev.GetChange()
		p.Actor, p.ActorRole = "notify", RoleSystem
		p.Decision = "directory change " + c.GetId() + " for " + c.GetAgencyId() + " expired undecided (proposed by " + c.GetProposedBy() + ")"
	case *eventsv1.AgencySecretRotated:
		p.Agency = ev.GetAgency()
		p.Actor, p.ActorRole = ev.GetApprovedBy(), roleOr(ev.GetApprovedByRole())
		p.Decision = "webhook secret of " + ev.GetAgency() + " rotated by change " + ev.GetChangeId() + fromAddress(ev.GetApprovedFrom())
	case *eventsv1.DirectoryContactNotified:
		p.Agency = ev.GetAgency()
		p.Actor, p.ActorRole = "notify", RoleSystem
		what := "told"
		if env.GetType() == "mash.directory.contact_notice_failed" {
			what = "could not be told"
		}
		p.Decision = "previous contact of " + ev.GetAgency() + " (" + ev.GetChannel() + " " + ev.GetEndpoint() + ") " + what +
			" of directory change " + ev.GetChangeId()
	}
	if c != nil {
		p.Agency = c.GetAgencyId()
	}
	if len(p.Decision) > auditlog.MaxFieldSize {
		p.Decision = strings.ToValidUTF8(p.Decision[:auditlog.MaxFieldSize-3], "") + "..."
	}
}

// fieldChanges is a change's fields as the trail shows them: "url https://a -> https://b; secret rotated".
func fieldChanges(c *notifyv1.DirectoryChange) string {
	var parts []string
	if c.GetNewAgency() {
		parts = append(parts, "new agency")
	}
	for _, f := range c.GetChanges() {
		if f.GetField() == "secret" {
			parts = append(parts, "secret rotated")
			continue
		}
		parts = append(parts, f.GetField()+" "+quoteOrNone(f.GetBefore())+" -> "+quoteOrNone(f.GetAfter()))
	}
	return strings.Join(parts, "; ")
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func fromAddress(addr string) string {
	if addr == "" {
		return ""
	}
	return " from " + addr
}

// staffActor names who acted on a case, and in what role: a signed-in person ("user:..."),
// a client, or the triage service itself when a deadline acted. role is the one the event
// carries.
func staffActor(actor, role string) (string, string) {
	if actor == "" || actor == "triage" {
		return "triage", RoleSystem
	}
	return actor, roleOr(role)
}

// roleOr is role, or practitioner for events written before they carried the actor's role:
// only hub staff could act on casework then.
func roleOr(role string) string {
	if role == "" {
		return RolePractitioner
	}
	return role
}

func decisionFields(p *store.Pending, d *rulesv1.Decision) {
	p.PackVersion = d.GetPackVersion()
	p.ChildID = d.GetChildId()
	p.Decision = outcomeSummary(d.GetCurrent())
}

// outcomeSummary is the decision as the trail shows it, e.g. "LEVEL_3A/RAG_RED".
func outcomeSummary(o *rulesv1.Outcome) string {
	return o.GetLevel().String() + "/" + o.GetRag().String()
}
