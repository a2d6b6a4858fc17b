package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
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
// the entry keeps only SHA-256 of the ciphertext. describe, when the payload's type has a
// summary (see entries), adds it to the entry.
//
// In a consumer batch (inOneRoundTrip) record only queues the entry, sealed, and the batch
// writes every entry at once before its commit. Otherwise it writes at once, and may run
// several times in one transaction: each call switches the transaction to the writer role again (harmless),
// and a case key it inserts is visible to the later calls, which find it as the
// referral's live key. Most events cost one round trip: the role, the case key (inserted
// if the referral has none), the payload and the pending entry are one batch, sealed with
// the key cached for the referral (see keyCache).
func (s *Service) record(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, describe func(*store.Pending)) error {
	if ownEvent(env.GetType()) {
		// The service's own events (checkpoints) are already in its tables; recording them
		// would add an entry per checkpoint and a checkpoint per entry, forever.
		return nil
	}
	p := s.entryFields(env)
	if describe != nil {
		describe(&p)
	}
	if err := (auditlog.Entry{EventID: p.EventID, EventType: p.EventType, OccurredAt: p.OccurredAt, RecordedAt: p.ReceivedAt,
		Partnership: p.Partnership, ReferralID: p.ReferralID, ChildID: p.ChildID, Actor: p.Actor, ActorRole: p.ActorRole,
		Agency: p.Agency, PackVersion: p.PackVersion, Decision: p.Decision}).Validate(); err != nil {
		return fmt.Errorf("event %s cannot be an audit entry: %w", env.GetEventId(), err)
	}
	if b, ok := ctx.Value(pendingBatchKey{}).(*pendingBatch); ok && env.GetType() != events.CaseErasedSubject {
		var plain []byte
		if env.GetPayload() != nil {
			var err error
			plain, err = proto.MarshalOptions{Deterministic: true}.Marshal(env.GetPayload())
			if err != nil {
				return fmt.Errorf("event %s: encode payload: %w", env.GetEventId(), err)
			}
		}
		return s.queue(b, p, plain)
	}
	if env.GetPayload() == nil {
		if err := store.InsertPendingAsWriter(ctx, tx, p); err != nil {
			return err
		}
	} else {
		plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(env.GetPayload())
		if err != nil {
			return fmt.Errorf("event %s: encode payload: %w", env.GetEventId(), err)
		}
		if err := s.insertSealed(ctx, tx, p, plain); err != nil {
			return fmt.Errorf("event %s: %w", env.GetEventId(), err)
		}
	}
	if env.GetType() == events.CaseErasedSubject {
		return s.applyErasure(ctx, tx, env)
	}
	return nil
}

// ErasedPayloadDecision marks the entry of an event whose payload the audit log never read
// because its case was erased first (the event was still in an outbox, or on its way, when
// the case key was destroyed): the entry lists the event from its clear envelope (ids, type,
// times, actor) and commits to no payload.
const ErasedPayloadDecision = "payload erased: the case was erased before the audit log recorded this event"

// recordErased records an event of an erased case from its envelope alone (the consumer
// gives it without payload): the trail lists every event of a case, and an event pending
// in an outbox when the case key was destroyed is neither lost nor dead-lettered.
func (s *Service) recordErased(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
	return s.record(ctx, tx, env, func(p *store.Pending) { p.Decision = ErasedPayloadDecision })
}

// redactedSum is the payload digest of an event that arrived after its case was shredded:
// a fixed marker that a payload existed (a hash of nothing sealed would be a lie), never a
// hash of the personal data.
var redactedSum = sha256.Sum256([]byte("redacted: case key destroyed before the event arrived"))

// insertSealed switches tx to the writer role and stores p with plain sealed under the
// case key of its referral. It first seals with the key cached for the referral (or a new
// one) and stores everything in one round trip; only when the database holds another key
// for the referral does it read that key and seal again.
func (s *Service) insertSealed(ctx context.Context, tx pgx.Tx, p store.Pending, plain []byte) error {
	k, ok := s.keys.get(p.ReferralID)
	if !ok {
		var err error
		if k, err = s.newCaseKey(p.ReferralID); err != nil {
			return err
		}
	}
	nonce, ct, err := seal(k.key, plain, p.EventID)
	if err != nil {
		return err
	}
	p.PayloadSHA256 = sha256.Sum256(ct)
	out, err := store.SealedPending(ctx, tx, p, k.id, k.wrapped, nonce, ct, redactedSum)
	if err != nil {
		return err
	}
	switch out {
	case store.Sealed:
		s.keys.put(p.ReferralID, k)
		return nil
	case store.Redacted:
		s.keys.forget(p.ReferralID)
		return nil
	}
	return s.sealWithLiveKey(ctx, tx, p, plain)
}

// sealWithLiveKey stores p with plain sealed under the referral's key as the database holds
// it, when the key guessed for it was not that one (made by another process, or by a
// transaction that committed while the guess was written). tx already runs as the writer
// role.
func (s *Service) sealWithLiveKey(ctx context.Context, tx pgx.Tx, p store.Pending, plain []byte) error {
	s.keys.forget(p.ReferralID)
	sum, live, err := s.sealPayload(ctx, tx, p.EventID, p.ReferralID, plain)
	if err != nil {
		return fmt.Errorf("event %s: %w", p.EventID, err)
	}
	p.PayloadSHA256 = sum
	if err := store.InsertPending(ctx, tx, p); err != nil {
		return err
	}
	if live.id != "" {
		s.keys.put(p.ReferralID, live)
	}
	return nil
}

// newCaseKey makes a fresh case key for referralID, wrapped with the master key.
func (s *Service) newCaseKey(referralID string) (caseKey, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return caseKey{}, err
	}
	wrapped, err := wrapKey(s.cfg.MasterKey, fresh, referralID)
	if err != nil {
		return caseKey{}, err
	}
	return caseKey{id: uuid.Must(uuid.NewV7()).String(), wrapped: wrapped, key: fresh}, nil
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

// ownEvent reports whether the audit log itself publishes subject. The answer is
// remembered per subject: matching against the whole catalogue took a twentieth of the
// consumer's CPU, for an answer that never changes.
func ownEvent(subject string) bool {
	ownSubjects.Lock()
	defer ownSubjects.Unlock()
	if own, ok := ownSubjects.m[subject]; ok {
		return own
	}
	own := false
	for _, e := range events.Entries(subject) {
		if e.Producer == "audit" {
			own = true
		}
	}
	// Subjects reaching the consumer are the catalogue's; the bound only guards against a
	// publisher inventing subjects without end.
	if len(ownSubjects.m) < 1024 {
		ownSubjects.m[subject] = own
	}
	return own
}

// ownSubjects caches ownEvent's answers by subject.
var ownSubjects = struct {
	sync.Mutex
	m map[string]bool
}{m: make(map[string]bool)}

// sealPayload encrypts plain under the case key of referralID (made on first use) and
// stores it, returning SHA-256 of the ciphertext and the live key it used (zero when the
// key is destroyed). A case already shredded stores nothing: its later events are
// recorded as redacted from the start.
func (s *Service) sealPayload(ctx context.Context, tx pgx.Tx, eventID, referralID string, plain []byte) ([32]byte, caseKey, error) {
	fresh, err := s.newCaseKey(referralID)
	if err != nil {
		return [32]byte{}, caseKey{}, err
	}
	k, err := store.CaseKeyFor(ctx, tx, referralID, fresh.id, fresh.wrapped)
	if err != nil {
		return [32]byte{}, caseKey{}, err
	}
	if k.DestroyedAt != nil {
		return redactedSum, caseKey{}, nil
	}
	key, err := unwrapKey(s.cfg.MasterKey, k.Wrapped, referralID)
	if err != nil {
		return [32]byte{}, caseKey{}, err
	}
	nonce, ct, err := seal(key, plain, eventID)
	if err != nil {
		return [32]byte{}, caseKey{}, err
	}
	if err := store.InsertPayload(ctx, tx, eventID, k.ID, nonce, ct); err != nil {
		return [32]byte{}, caseKey{}, err
	}
	return sha256.Sum256(ct), caseKey{id: k.ID, wrapped: k.Wrapped, key: key}, nil
}

// entryFields is an entry of the envelope's fields alone: ids, type, times and who acted,
// as the envelope names them. Events made before envelopes carried the actor get theirs
// from the payload (legacyActor in entries).
func (s *Service) entryFields(env *eventsv1.Envelope) store.Pending {
	now := s.now().UTC()
	p := store.Pending{
		EventID: env.GetEventId(), EventType: env.GetType(), OccurredAt: now, ReceivedAt: now,
		Partnership: env.GetPartnership(), ReferralID: env.GetReferralId(),
		Actor: env.GetActor().GetId(), ActorRole: env.GetActor().GetRole(), Agency: env.GetActor().GetAgency(),
	}
	if env.GetOccurredAt() != nil {
		p.OccurredAt = env.GetOccurredAt().AsTime().UTC()
	}
	return p
}

// handler is the audit log's handler of every event: each payload type with a summary has
// a typed entry; any other event is recorded with its envelope's fields alone.
func (s *Service) handler() (*events.Router, error) {
	r := events.NewRouter()
	r.Default = func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error { return s.record(ctx, tx, env, nil) }
	entry(r, s, describeReferralReceived, func(_ *eventsv1.Envelope, ev *eventsv1.ReferralReceived) (string, string) {
		return ev.GetReferral().GetAgency(), RoleAgency
	})
	entry(r, s, describeRecommendation, func(*eventsv1.Envelope, *eventsv1.RecommendationMade) (string, string) { return "rules", RoleSystem })
	entry(r, s, describeDecisionMade, func(_ *eventsv1.Envelope, ev *eventsv1.DecisionMade) (string, string) {
		return ev.GetDecision().GetReviewedBy(), roleOr(ev.GetDecision().GetReviewedByRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.TriageDecided) {
		decisionFields(p, ev.GetDecision())
	},
		func(*eventsv1.Envelope, *eventsv1.TriageDecided) (string, string) { return "rules", RoleSystem })
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.TriageConfirmed) {
		decisionFields(p, ev.GetDecision())
	},
		func(_ *eventsv1.Envelope, ev *eventsv1.TriageConfirmed) (string, string) {
			return ev.GetDecision().GetReviewedBy(), roleOr(ev.GetDecision().GetReviewedByRole())
		})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.TriageOverridden) {
		decisionFields(p, ev.GetDecision())
		p.Decision += " from " + outcomeSummary(ev.GetPrevious())
	}, func(_ *eventsv1.Envelope, ev *eventsv1.TriageOverridden) (string, string) {
		return ev.GetDecision().GetReviewedBy(), roleOr(ev.GetDecision().GetReviewedByRole())
	})
	entry(r, s, describeAccess, func(_ *eventsv1.Envelope, ev *eventsv1.RecordAccessed) (string, string) {
		return ev.GetClientId(), ev.GetRole()
	})
	entry(r, s, describeNotification, legacyNotificationActor)
	entry(r, s, describeCase, func(_ *eventsv1.Envelope, ev *eventsv1.CaseChanged) (string, string) {
		return staffActor(ev.GetActor(), ev.GetActorRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.StrategyDiscussionRecorded) {
		p.Decision = fmt.Sprintf("strategy discussion recorded (%d taking part, section 47: %t)",
			len(ev.GetDiscussion().GetParticipants()), ev.GetDiscussion().GetSection_47())
	}, func(_ *eventsv1.Envelope, ev *eventsv1.StrategyDiscussionRecorded) (string, string) {
		return staffActor(ev.GetDiscussion().GetRecordedBy(), ev.GetRecordedByRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.InformationRequestChanged) {
		r := ev.GetRequest()
		p.Agency = r.GetAgency()
		p.Decision = "information request " + r.GetId() + " " + strings.ToLower(r.GetState().String()) + " (" + r.GetAgency() + ")"
	}, func(_ *eventsv1.Envelope, ev *eventsv1.InformationRequestChanged) (string, string) {
		return staffActor(ev.GetActor(), ev.GetActorRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.InformationAnswerReceived) {
		p.Agency = ev.GetAgency()
		p.Decision = "information request " + ev.GetRequestId() + " answered on " + ev.GetChannel()
	}, func(_ *eventsv1.Envelope, ev *eventsv1.InformationAnswerReceived) (string, string) {
		return ev.GetAgency(), RoleAgency
	})
	entry(r, s, func(p *store.Pending, env *eventsv1.Envelope, ev *eventsv1.DisagreementChanged) {
		d := ev.GetDisagreement()
		p.Agency = d.GetRaisedByAgency()
		p.Decision = "disagreement " + d.GetId() + " " + lastToken(env.GetType()) + " at " + d.GetStage().String()
	}, func(_ *eventsv1.Envelope, ev *eventsv1.DisagreementChanged) (string, string) {
		return staffActor(ev.GetActor(), ev.GetActorRole())
	})
	entry(r, s, func(p *store.Pending, env *eventsv1.Envelope, ev *eventsv1.SharingChanged) {
		p.Decision = strings.TrimPrefix(env.GetType(), "mash.") + ": consent " + ev.GetConsentStatus()
		if a := ev.GetAuthorisation(); a != nil {
			p.Decision += ", shared without consent on " + a.GetGround() + " (" + a.GetLawfulBasis() + ")"
		}
	}, func(_ *eventsv1.Envelope, ev *eventsv1.SharingChanged) (string, string) {
		return staffActor(ev.GetActor(), ev.GetActorRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.QualityReviewRecorded) {
		// The verdict and whose decision it was go in the leaf; the reason and the learning
		// point stay in the sealed payload (free text about the case).
		rv := ev.GetReview()
		p.Decision = "quality review " + rv.GetId() + ": " + strings.ToLower(rv.GetVerdict().String()) + " with the decision of " + rv.GetDecidedBy()
	}, func(_ *eventsv1.Envelope, ev *eventsv1.QualityReviewRecorded) (string, string) {
		return staffActor(ev.GetActor(), ev.GetActorRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.LeadProfessionalNamed) {
		// The agency and for whom go in the leaf; the team and the person stay in the sealed
		// payload (a person's name identifies them).
		l := ev.GetLeadProfessional()
		p.Agency = l.GetAgency()
		p.Decision = "lead professional named: " + l.GetAgency() + " for " + strings.ToLower(strings.TrimPrefix(l.GetScope().String(), "LEAD_FOR_"))
		if prev := ev.GetPrevious(); prev != nil {
			p.Decision += " (was " + prev.GetAgency() + ")"
		}
	}, func(_ *eventsv1.Envelope, ev *eventsv1.LeadProfessionalNamed) (string, string) {
		return staffActor(ev.GetLeadProfessional().GetNamedBy(), ev.GetLeadProfessional().GetNamedByRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.CaseErased) {
		p.ChildID = ev.GetChildId()
		p.Decision = "case erased: key destroyed, personal data blanked in every service"
	}, func(_ *eventsv1.Envelope, ev *eventsv1.CaseErased) (string, string) {
		return staffActor(ev.GetErasedBy(), ev.GetErasedByRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.AdminActRecorded) {
		// Who, what, to what and the outcome go in the leaf; the client address, reason and
		// detail stay in the sealed payload (they may identify people).
		p.Agency = ev.GetAgency()
		p.Decision = ev.GetAction() + " " + ev.GetTarget() + ": " + ev.GetOutcome()
	}, func(_ *eventsv1.Envelope, ev *eventsv1.AdminActRecorded) (string, string) {
		return ev.GetActor(), ev.GetActorRole()
	})
	directoryEntries(r, s)
	return r, r.Err()
}

// entry registers the audit entry of payload type M: describe adds its summary (decision,
// child, agency, pack version) to the envelope's fields; legacyActor says who acted in an
// event recorded before envelopes carried the actor, from its payload, and is used for
// those alone.
func entry[M proto.Message](r *events.Router, s *Service, describe func(*store.Pending, *eventsv1.Envelope, M),
	legacyActor func(*eventsv1.Envelope, M) (string, string)) {
	events.OnType(r, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, m M) error {
		return s.record(ctx, tx, env, func(p *store.Pending) {
			if env.GetActor() == nil {
				p.Actor, p.ActorRole = legacyActor(env, m)
			}
			describe(p, env, m)
			if len(p.Decision) > auditlog.MaxFieldSize {
				p.Decision = strings.ToValidUTF8(p.Decision[:auditlog.MaxFieldSize-3], "") + "..."
			}
		})
	})
}

func describeReferralReceived(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.ReferralReceived) {
	p.Agency = ev.GetReferral().GetAgency()
	p.Decision = "received"
}

func describeRecommendation(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.RecommendationMade) {
	decisionFields(p, ev.GetDecision())
	p.Decision = "recommended " + p.Decision
}

func describeDecisionMade(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.DecisionMade) {
	d := ev.GetDecision()
	decisionFields(p, d)
	p.Agency = ev.GetDecidedByAgency()
	p.Decision = strings.ToLower(d.GetStatus().String()) + " " + p.Decision
	if d.GetStatus() == rulesv1.DecisionStatus_OVERRIDDEN {
		p.Decision += " from " + outcomeSummary(ev.GetPrevious())
	}
}

func describeAccess(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.RecordAccessed) {
	p.Agency = ev.GetAgency()
	p.ChildID = ev.GetChildId()
	p.Decision = "read: " + ev.GetAction()
	if n := len(ev.GetListed()); n > 0 {
		// A page of a list: which records it showed are in the sealed payload.
		p.Decision += fmt.Sprintf(" (%d listed)", n)
	}
}

func describeNotification(p *store.Pending, env *eventsv1.Envelope, ev *eventsv1.NotificationEvent) {
	p.Agency = ev.GetAgency()
	p.Decision = lastToken(env.GetType()) + " " + ev.GetKind() + " to " + ev.GetAgency()
	if ev.GetPayloadSha256() != "" {
		p.Decision += " sha256:" + ev.GetPayloadSha256()[:min(16, len(ev.GetPayloadSha256()))]
	}
}

// legacyNotificationActor is who acted in a notification event made before envelopes named
// the actor: notify itself, unless someone acknowledged or retried.
func legacyNotificationActor(_ *eventsv1.Envelope, ev *eventsv1.NotificationEvent) (string, string) {
	switch {
	case ev.GetActor() == "" || ev.GetActor() == "notify":
		return "notify", RoleSystem
	case ev.GetActorRole() != "":
		return ev.GetActor(), ev.GetActorRole()
	default:
		// Written before events carried the actor's role: only agencies acted then.
		return ev.GetActor(), RoleAgency
	}
}

func describeCase(p *store.Pending, env *eventsv1.Envelope, ev *eventsv1.CaseChanged) {
	c := ev.GetCase()
	p.ChildID = c.GetChildId()
	p.Decision = lastToken(env.GetType()) + ": " + c.GetState().String()
	switch env.GetType() {
	case eventsv1.SubjectCaseClosed:
		p.Decision += " " + c.GetOutcome().String()
	case eventsv1.SubjectCaseClaimed, eventsv1.SubjectCaseAssigned:
		p.Decision += " to " + c.GetAssignee()
	case eventsv1.SubjectCaseDecided:
		p.Decision += " " + c.GetLevel().String() + "/" + c.GetRag().String()
	}
}

// lastToken is a subject's last token: "sent" for mash.notification.sent.
func lastToken(subject string) string { return subject[strings.LastIndexByte(subject, '.')+1:] }

// directoryEntries describe acts on the agency directory's four-eyes rule: who proposed or
// decided, in what role, from which client address, and what changed (URLs and fields,
// never a secret: the events carry none).
func directoryEntries(r *events.Router, s *Service) {
	notify := func(*eventsv1.Envelope, proto.Message) (string, string) { return "notify", RoleSystem }
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.DirectoryChangeProposed) {
		c := ev.GetChange()
		p.Agency = c.GetAgencyId()
		p.Decision = "directory change " + c.GetId() + " proposed for " + c.GetAgencyId() + ": " + fieldChanges(c) + fromAddress(c.GetProposedFrom())
	}, func(_ *eventsv1.Envelope, ev *eventsv1.DirectoryChangeProposed) (string, string) {
		return ev.GetChange().GetProposedBy(), roleOr(ev.GetChange().GetProposedByRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.DirectoryChangeApproved) {
		c := ev.GetChange()
		p.Agency = c.GetAgencyId()
		p.Decision = "directory change " + c.GetId() + " for " + c.GetAgencyId() + " approved (proposed by " + c.GetProposedBy() + "): " +
			fieldChanges(c) + fromAddress(c.GetDecidedFrom())
	}, func(_ *eventsv1.Envelope, ev *eventsv1.DirectoryChangeApproved) (string, string) {
		return ev.GetChange().GetDecidedBy(), roleOr(ev.GetChange().GetDecidedByRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.DirectoryChangeRejected) {
		c := ev.GetChange()
		p.Agency = c.GetAgencyId()
		p.Decision = "directory change " + c.GetId() + " for " + c.GetAgencyId() + " rejected (proposed by " + c.GetProposedBy() + ")" +
			fromAddress(c.GetDecidedFrom())
	}, func(_ *eventsv1.Envelope, ev *eventsv1.DirectoryChangeRejected) (string, string) {
		return ev.GetChange().GetDecidedBy(), roleOr(ev.GetChange().GetDecidedByRole())
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.DirectoryChangeExpired) {
		c := ev.GetChange()
		p.Agency = c.GetAgencyId()
		p.Decision = "directory change " + c.GetId() + " for " + c.GetAgencyId() + " expired undecided (proposed by " + c.GetProposedBy() + ")"
	}, func(env *eventsv1.Envelope, ev *eventsv1.DirectoryChangeExpired) (string, string) {
		return notify(env, ev)
	})
	entry(r, s, func(p *store.Pending, _ *eventsv1.Envelope, ev *eventsv1.AgencySecretRotated) {
		p.Agency = ev.GetAgency()
		p.Decision = "webhook secret of " + ev.GetAgency() + " rotated by change " + ev.GetChangeId() + fromAddress(ev.GetApprovedFrom())
	}, func(_ *eventsv1.Envelope, ev *eventsv1.AgencySecretRotated) (string, string) {
		return ev.GetApprovedBy(), roleOr(ev.GetApprovedByRole())
	})
	entry(r, s, func(p *store.Pending, env *eventsv1.Envelope, ev *eventsv1.DirectoryContactNotified) {
		p.Agency = ev.GetAgency()
		what := "told"
		if env.GetType() == eventsv1.SubjectDirectoryContactNoticeFailed {
			what = "could not be told"
		}
		p.Decision = "previous contact of " + ev.GetAgency() + " (" + ev.GetChannel() + " " + ev.GetEndpoint() + ") " + what +
			" of directory change " + ev.GetChangeId()
	}, func(env *eventsv1.Envelope, ev *eventsv1.DirectoryContactNotified) (string, string) {
		return notify(env, ev)
	})
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
