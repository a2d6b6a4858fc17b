package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// The four-eyes rule for the directory. A change to where an agency's notifications go (a
// new agency; its channel, URL, email, roles, schools or out-of-hours route; its webhook
// secret) is only proposed: deliveries keep using the current entry until a second manager,
// never the proposer, approves. Then the agency's previous contact is told over the old
// channel, and both acts are events on the audit trail. Other fields (name, hours,
// concurrency) decide nothing about who receives what, so they apply at once.

// Event subjects of directory changes. They sit outside mash.notify.*, the agencies' own
// subjects, so the audit log records them.
const (
	EventChangeProposed      = eventsv1.SubjectDirectoryChangeProposed
	EventChangeApproved      = eventsv1.SubjectDirectoryChangeApproved
	EventChangeRejected      = eventsv1.SubjectDirectoryChangeRejected
	EventChangeExpired       = eventsv1.SubjectDirectoryChangeExpired
	EventSecretRotated       = eventsv1.SubjectDirectorySecretRotated
	EventContactNotified     = eventsv1.SubjectDirectoryContactNotified
	EventContactNoticeFailed = eventsv1.SubjectDirectoryContactNoticeFailed
)

// DefaultChangeTTL is how long a proposed change waits for a decision.
const DefaultChangeTTL = 72 * time.Hour

// Who may act on proposed changes comes from auth's permission table: auth.ChangeDirectory
// proposes (managers and admins), auth.DecideDirectory approves or rejects (managers), and
// auth.ReadDirectory lists. On top of the table, never the proposer approves, anyone may
// withdraw their own proposal, and only within the partnerships the caller serves.

// proposer is who asks for a change, and from which client address.
type proposer struct {
	actor auth.Actor
	from  string
}

// Errors the API maps.
var (
	errOwnChange = errors.New("the proposer of a change cannot approve it: another manager must")
	errExpired   = errors.New("the change has expired")
)

// routingChanges lists the fields that decide where notifications go and differ between
// old (nil for a new agency) and next; newSecret says a new secret is part of the change.
func routingChanges(old *directory.Agency, next directory.Agency, newSecret bool) []store.FieldChange {
	var before directory.Agency
	if old != nil {
		before = *old
	}
	var out []store.FieldChange
	add := func(field, b, a string) {
		if b != a {
			out = append(out, store.FieldChange{Field: field, Before: b, After: a})
		}
	}
	add("channel", before.Channel, next.Channel)
	add("url", before.URL, next.URL)
	add("email", before.Email, next.Email)
	add("roles", strings.Join(before.Roles, ", "), strings.Join(next.Roles, ", "))
	add("schools", strings.Join(before.Schools, ", "), strings.Join(next.Schools, ", "))
	add("outOfHours", before.OutOfHours, next.OutOfHours)
	if newSecret {
		b := ""
		if old != nil && len(old.Secret) > 0 {
			b = "(current secret)"
		}
		out = append(out, store.FieldChange{Field: "secret", Before: b, After: "(new secret)"})
	}
	return out
}

// withRouting is current with next's routing fields: what an approved change makes.
func withRouting(current, next directory.Agency) directory.Agency {
	current.Channel, current.URL, current.Email = next.Channel, next.URL, next.Email
	current.Roles = slices.Clone(next.Roles)
	current.Schools = slices.Clone(next.Schools)
	current.OutOfHours = next.OutOfHours
	return current
}

// withoutRouting is current with next's other fields: what applies at once.
func withoutRouting(current, next directory.Agency) directory.Agency {
	current.Name, current.HoursStart, current.HoursEnd, current.Concurrency = next.Name, next.HoursStart, next.HoursEnd, next.Concurrency
	// The team's Welsh name and language change what its messages say, not where they go.
	current.NameCy, current.Language = next.NameCy, next.Language
	return current
}

// changeAgency applies the fields of ag that decide nothing about routing and proposes the
// rest, inside tx. newSecret, when set and different from the current secret, is proposed
// too. It returns the entry as it now stands (ok false for an agency not yet in the
// directory) and the proposal made, if any; store.ErrPendingExists (with the pending
// proposal) when the agency already has one.
func (s *Service) changeAgency(ctx context.Context, tx pgx.Tx, who proposer, ag directory.Agency, newSecret []byte, reason string) (store.StoredAgency, bool, *store.Proposal, error) {
	old, err := store.AgencyForUpdate(ctx, tx, s.box, ag.Partnership, ag.ID)
	existed := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.StoredAgency{}, false, nil, err
	}
	rotate := len(newSecret) > 0 && (!existed || string(newSecret) != string(old.Secret))
	current := old
	var changes []store.FieldChange
	if existed {
		direct := withoutRouting(old.Agency, ag)
		direct.Secret = old.Secret
		if current, err = store.PutAgency(ctx, tx, s.box, direct, who.actor.ID, reason); err != nil {
			return store.StoredAgency{}, false, nil, err
		}
		changes = routingChanges(&old.Agency, ag, rotate)
	} else {
		changes = routingChanges(nil, ag, rotate)
	}
	if len(changes) == 0 {
		return current, existed, nil, nil
	}
	if pending, err := store.PendingProposal(ctx, tx, ag.Partnership, ag.ID); err == nil {
		return current, existed, &pending, store.ErrPendingExists
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.StoredAgency{}, false, nil, err
	}
	now := s.now().UTC()
	p := store.Proposal{ID: uuid.Must(uuid.NewV7()).String(), Partnership: ag.Partnership, Agency: ag.ID, State: store.ProposalPending,
		Proposed: ag, Changes: changes, NewAgency: !existed, Reason: reason, ProposedBy: who.actor.ID, ProposedByRole: who.actor.Role,
		ProposedFrom: who.from, ProposedAt: now, ExpiresAt: now.Add(s.changeTTL)}
	if existed {
		p.Proposed = withRouting(current.Agency, ag)
	}
	p.Proposed.Secret = nil
	if rotate {
		if p.SealedSecret, err = s.box.Seal(newSecret, store.ProposalSecretAAD(p.ID)); err != nil {
			return store.StoredAgency{}, false, nil, err
		}
	}
	if err := store.InsertProposal(ctx, tx, p); errors.Is(err, store.ErrPendingExists) {
		// Another request proposed a change to the agency at the same moment.
		pending, rerr := store.PendingProposal(ctx, tx, ag.Partnership, ag.ID)
		if rerr != nil {
			return store.StoredAgency{}, false, nil, rerr
		}
		return current, existed, &pending, store.ErrPendingExists
	} else if err != nil {
		return store.StoredAgency{}, false, nil, err
	}
	if err := s.changeEvent(ctx, tx, EventChangeProposed, p); err != nil {
		return store.StoredAgency{}, false, nil, err
	}
	s.log.Info("directory change proposed", zap.String("change_id", p.ID), zap.String("partnership", p.Partnership),
		zap.String("agency", p.Agency), zap.String("by", who.actor.ID), zap.Int("fields", len(changes)))
	return current, existed, &p, nil
}

// changeEvent writes the event of a change's act to the outbox inside tx.
func (s *Service) changeEvent(ctx context.Context, tx pgx.Tx, subject string, p store.Proposal) error {
	c := changeToProto(p)
	var payload proto.Message
	// Who acted: the proposer, the one who decided, or notify when nobody decided in time.
	by := events.Actor(p.ProposedBy, roleOr(p.ProposedByRole), "")
	if subject == EventChangeApproved || subject == EventChangeRejected {
		by = events.Actor(p.DecidedBy, roleOr(p.DecidedByRole), "")
	}
	if subject == EventChangeExpired {
		by = events.System("notify")
	}
	switch subject {
	case EventChangeProposed:
		payload = &eventsv1.DirectoryChangeProposed{Change: c}
	case EventChangeApproved:
		payload = &eventsv1.DirectoryChangeApproved{Change: c}
	case EventChangeRejected:
		payload = &eventsv1.DirectoryChangeRejected{Change: c}
	case EventChangeExpired:
		payload = &eventsv1.DirectoryChangeExpired{Change: c}
	default:
		return fmt.Errorf("change %s: no event for %s", p.ID, subject)
	}
	return s.outbox(ctx, tx, by, subject, p.Partnership, payload)
}

// roleOr is a recorded role, or practitioner for proposals stored before they kept one.
func roleOr(role string) string {
	if role == "" {
		return string(auth.RolePractitioner)
	}
	return role
}

func (s *Service) outbox(ctx context.Context, tx pgx.Tx, by *eventsv1.Actor, subject, partnership string, payload proto.Message) error {
	env, raw, err := events.NewEnvelope(subject, partnership, "", 0, s.now(), by, payload)
	if err != nil {
		return err
	}
	return events.InsertOutbox(ctx, tx, store.Schema, env, raw)
}

// decider is who approves or rejects, from where, and why.
type decider struct {
	id     auth.Identity
	from   string
	reason string
}

// ApproveChange applies a pending change: the agency's entry takes the proposed routing
// (and secret), the previous contact is queued a notice, and the approval is an event.
func (s *Service) ApproveChange(ctx context.Context, changeID, agencyID string, d decider) (store.Proposal, store.StoredAgency, error) {
	var p store.Proposal
	var stored store.StoredAgency
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		var err error
		if p, err = s.pendingForDecision(ctx, tx, changeID, agencyID, d.id); err != nil {
			return err
		}
		if p.ProposedBy == d.id.Actor() {
			return errOwnChange
		}
		old, err := store.AgencyForUpdate(ctx, tx, s.box, p.Partnership, p.Agency)
		existed := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !existed && !p.NewAgency {
			return apierr.FailedPrecondition(fmt.Sprintf("agency %s was removed from partnership %s after change %s was proposed: reject the change", p.Agency, p.Partnership, p.ID))
		}
		next := p.Proposed
		if existed {
			next = withRouting(old.Agency, p.Proposed)
			next.Secret = old.Secret
		}
		rotated := p.RotatesSecret()
		if rotated {
			if next.Secret, err = s.box.Open(p.SealedSecret, store.ProposalSecretAAD(p.ID)); err != nil {
				return fmt.Errorf("change %s: %w", p.ID, err)
			}
		}
		next.Normalise()
		if vs := agencyViolations(ctx, tx, next); len(vs) > 0 {
			return apierr.FailedPrecondition(fmt.Sprintf("change %s no longer makes a valid entry (%s): reject it and propose again", p.ID, violationText(vs)))
		}
		by := d.id.Actor()
		if stored, err = store.PutAgency(ctx, tx, s.box, next, by, "approved change "+p.ID+": "+p.Reason); err != nil {
			return err
		}
		dec := store.Decision{State: store.ProposalApproved, By: by, Role: string(d.id.Role), From: d.from, Reason: d.reason, At: s.now().UTC()}
		if existed {
			if dec.NoticeID, err = s.queueNotice(ctx, tx, p, old, dec.At); err != nil {
				return err
			}
		}
		if err := store.DecideProposal(ctx, tx, p.ID, dec); err != nil {
			return err
		}
		if p, err = store.GetProposal(ctx, tx, p.ID); err != nil {
			return err
		}
		if err := s.changeEvent(ctx, tx, EventChangeApproved, p); err != nil {
			return err
		}
		if rotated {
			return s.outbox(ctx, tx, d.id.EventActor(), EventSecretRotated, p.Partnership, &eventsv1.AgencySecretRotated{Partnership: p.Partnership,
				Agency: p.Agency, ChangeId: p.ID, ApprovedBy: by, ApprovedByRole: string(d.id.Role), ApprovedFrom: d.from, ProposedBy: p.ProposedBy})
		}
		return nil
	})
	if err != nil {
		return store.Proposal{}, store.StoredAgency{}, err
	}
	s.directoryChanged()
	s.relay.Wake()
	s.Wake()
	s.log.Info("directory change approved", zap.String("change_id", p.ID), zap.String("agency", p.Agency), zap.String("by", d.id.Actor()),
		zap.String("notice_id", p.NoticeID))
	return p, stored, nil
}

// RejectChange refuses a pending change; nothing in the directory changes.
func (s *Service) RejectChange(ctx context.Context, changeID, agencyID string, d decider) (store.Proposal, error) {
	var p store.Proposal
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		var err error
		if p, err = s.pendingForDecision(ctx, tx, changeID, agencyID, d.id); err != nil {
			return err
		}
		// A manager may refuse any change; anyone may withdraw their own.
		if !d.id.Can(auth.DecideDirectory) && p.ProposedBy != d.id.Actor() {
			return apierr.PermissionDenied(fmt.Sprintf("role %s may withdraw only the changes it proposed; %s", d.id.Role, d.id.Denial(auth.DecideDirectory)))
		}
		dec := store.Decision{State: store.ProposalRejected, By: d.id.Actor(), Role: string(d.id.Role), From: d.from, Reason: d.reason, At: s.now().UTC()}
		if err := store.DecideProposal(ctx, tx, p.ID, dec); err != nil {
			return err
		}
		if p, err = store.GetProposal(ctx, tx, p.ID); err != nil {
			return err
		}
		return s.changeEvent(ctx, tx, EventChangeRejected, p)
	})
	if err != nil {
		return store.Proposal{}, err
	}
	s.relay.Wake()
	s.log.Info("directory change rejected", zap.String("change_id", p.ID), zap.String("agency", p.Agency), zap.String("by", d.id.Actor()))
	return p, nil
}

// pendingForDecision reads and locks a change that id may still decide: one of a
// partnership id serves.
func (s *Service) pendingForDecision(ctx context.Context, tx pgx.Tx, changeID, agencyID string, id auth.Identity) (store.Proposal, error) {
	p, err := store.ProposalForUpdate(ctx, tx, changeID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && agencyID != "" && agencyID != "-" && agencyID != p.Agency) {
		return store.Proposal{}, apierr.NotFound("directory change " + changeID + " not found")
	}
	if err != nil {
		return store.Proposal{}, err
	}
	if err := checkDirectoryScope(id, p.Partnership); err != nil {
		return store.Proposal{}, err
	}
	if p.State != store.ProposalPending {
		return store.Proposal{}, apierr.FailedPrecondition(fmt.Sprintf("directory change %s is %s already; only a pending change can be decided", p.ID, strings.ToLower(p.State)))
	}
	if !s.now().Before(p.ExpiresAt) {
		return store.Proposal{}, fmt.Errorf("directory change %s expired at %s: %w", p.ID, p.ExpiresAt.UTC().Format(time.RFC3339), errExpired)
	}
	return p, nil
}

// ExpireChanges marks every pending change past its expiry as expired, each with its
// event, and returns how many. The escalation sweep calls it; tests call it directly.
func (s *Service) ExpireChanges(ctx context.Context) (int, error) {
	var expired []store.Proposal
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		var err error
		if expired, err = store.ExpireProposals(ctx, tx, s.now().UTC()); err != nil {
			return err
		}
		for _, p := range expired {
			if err := s.changeEvent(ctx, tx, EventChangeExpired, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(expired) > 0 {
		s.relay.Wake()
		for _, p := range expired {
			s.log.Info("directory change expired", zap.String("change_id", p.ID), zap.String("agency", p.Agency))
		}
	}
	return len(expired), nil
}

// agencyViolations checks an entry as the API does: its own fields, and that its
// out-of-hours route is in the directory.
func agencyViolations(ctx context.Context, q store.Querier, a directory.Agency) []apierr.Violation {
	var vs []apierr.Violation
	for _, pr := range a.Check() {
		vs = append(vs, apierr.Violation{Field: "agency." + protoField(pr.Field), Reason: pr.Reason})
	}
	if a.OutOfHours != "" {
		var n int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM notify.agencies WHERE partnership = $1 AND id = $2`, a.Partnership, a.OutOfHours).Scan(&n); err != nil || n == 0 {
			vs = append(vs, apierr.Violation{Field: "agency.outOfHours", Reason: fmt.Sprintf("agency %q is not in partnership %q", a.OutOfHours, a.Partnership)})
		}
	}
	return vs
}

func violationText(vs []apierr.Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Field + ": " + v.Reason
	}
	return strings.Join(parts, "; ")
}
