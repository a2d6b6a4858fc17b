package triage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// deadlinePassed is the outcome the service records when it escalates an overdue stage.
const deadlinePassed = "deadline passed"

// systemActor is the service acting on its own (sweeps); sweep is it as an event's actor.
const systemActor = "triage"

var sweep = auth.Actor{ID: systemActor, Role: auth.ActorRoleSystem}

// staff is the caller as an event's actor: their client id, in the role they acted with.
func staff(id auth.Identity) auth.Actor {
	return auth.Actor{ID: id.ClientID, Role: string(id.Role), Agency: id.Agency}
}

// stageDue is when a stage that starts at from must conclude.
func (s *Service) stageDue(stage int16, from time.Time) time.Time {
	return s.calendar.AddWorkingDays(from, s.stageDays[stage-1]).UTC()
}

func disagreementNotFound(id string) error {
	return apierr.NotFound("no disagreement " + id)
}

// checkRaise is RaiseDisagreement's check of its request.
func checkRaise(req *triagev1.RaiseDisagreementRequest) []apierr.Violation {
	if req.GetReferralId() == "" {
		return []apierr.Violation{{Field: "referralId", Reason: "is required"}}
	}
	if strings.TrimSpace(req.GetReason()) == "" {
		return []apierr.Violation{{Field: "reason", Reason: "is required: what your agency disagrees with, and why"}}
	}
	return nil
}

func (a *grpcAPI) RaiseDisagreement(ctx context.Context, req *triagev1.RaiseDisagreementRequest) (*triagev1.RaiseDisagreementResponse, error) {
	id, err := server.Require(ctx, auth.RaiseDisagreements)
	if err != nil {
		return nil, err
	}
	if vs := checkRaise(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	now := s.now().UTC()
	d := store.Disagreement{ID: uuid.Must(uuid.NewV7()).String(), ReferralID: req.GetReferralId(), RaisedByAgency: id.Agency,
		RaisedBy: id.Actor(), Reason: req.GetReason(), Stage: store.StagePractitioner, StageDue: s.stageDue(store.StagePractitioner, now),
		RaisedAt: now, Version: 1}
	d.Steps = []store.Step{{Stage: d.Stage, StartedAt: now, Due: d.StageDue}}
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		// The case is read without a lock: a disagreement never blocks, nor waits for, work
		// on the case itself.
		c, err := store.GetCase(ctx, tx, req.GetReferralId())
		if err == nil && !id.Serves(c.Partnership) {
			err = store.ErrNotFound
		}
		if err != nil {
			return notFoundAs(err, caseNotFound(req.GetReferralId()))
		}
		if !hubStaff(id) {
			ok := c.SourceAgency == id.Agency
			if !ok {
				if ok, err = store.AgencyNotified(ctx, tx, c.ReferralID, id.Agency); err != nil {
					return err
				}
			}
			if !ok { // an agency sees only referrals it made or was told about
				return caseNotFound(req.GetReferralId())
			}
		}
		if c.State != store.StateDecided && c.State != store.StateClosed {
			return apierr.FailedPrecondition(fmt.Sprintf("case %s has not been decided yet (%s); a disagreement is about a decision",
				c.ReferralID, triagev1.CaseState(c.State)))
		}
		d.Partnership = c.Partnership
		if err := store.InsertDisagreement(ctx, tx, d); err != nil {
			return err
		}
		return s.emitDisagreement(ctx, tx, EventDisagreementRaised, d, staff(id))
	})
	if err != nil {
		return nil, err
	}
	s.relay.Wake()
	s.log.Info("disagreement raised", zap.String("referral_id", d.ReferralID), zap.String("disagreement_id", d.ID),
		zap.String("agency", d.RaisedByAgency))
	return &triagev1.RaiseDisagreementResponse{Disagreement: disagreementToProto(d)}, nil
}

func (s *Service) emitDisagreement(ctx context.Context, tx pgx.Tx, subject string, d store.Disagreement, by auth.Actor) error {
	return s.emit(ctx, tx, by, subject, d.Partnership, d.ReferralID, d.Version,
		&eventsv1.DisagreementChanged{Disagreement: disagreementToProto(d), Actor: by.ID, ActorRole: by.Role})
}

type disagreementToken struct {
	Resolved bool      `json:"r"`
	StageDue time.Time `json:"d"`
	ID       string    `json:"i"`
}

func (k *disagreementToken) rowID() string { return k.ID }

func (a *grpcAPI) ListDisagreements(ctx context.Context, req *triagev1.ListDisagreementsRequest) (*triagev1.ListDisagreementsResponse, error) {
	id, err := server.Require(ctx, auth.ReadDisagreements)
	if err != nil {
		return nil, err
	}
	f := store.DisagreementFilter{Partnership: req.GetPartnership(), Partnerships: servedPartnerships(id), ReferralID: req.GetReferralId(),
		OpenOnly: req.GetOpenOnly(), Limit: pageSize(req.GetPageSize())}
	if !hubStaff(id) {
		f.RaisedByAgency = id.Agency
	}
	if tok := req.GetPageToken(); tok != "" {
		var k disagreementToken
		if !decodeToken(tok, &k) {
			return nil, apierr.Invalid([]apierr.Violation{badToken})
		}
		f.After = &store.DisagreementKey{Resolved: k.Resolved, StageDue: k.StageDue, ID: k.ID}
	}
	pool := a.svc.store.Pool()
	ds, err := store.ListDisagreements(ctx, pool, f)
	if err != nil {
		return nil, err
	}
	if len(ds) > 0 {
		// A disagreement's reason is about the child: one access entry per page, naming the
		// referral and child of every disagreement it shows, as a queue page's does.
		refs := make([]string, len(ds))
		for i, d := range ds {
			refs[i] = d.ReferralID
		}
		listed, err := listedCases(ctx, pool, refs)
		if err != nil {
			return nil, err
		}
		if err := access.Record(ctx, pool, store.Schema, a.svc.relay.Wake, a.svc.cipher, id, access.Read{Type: eventsv1.SubjectAccessQueue,
			Action: "ListDisagreements", Partnership: f.Partnership, Listed: listed}, a.svc.now()); err != nil {
			return nil, err
		}
	}
	resp := &triagev1.ListDisagreementsResponse{}
	for _, d := range ds {
		resp.Disagreements = append(resp.Disagreements, disagreementToProto(d))
	}
	if len(ds) == f.Limit {
		last := ds[len(ds)-1]
		resp.NextPageToken = encodeToken(disagreementToken{Resolved: last.Resolved, StageDue: last.StageDue, ID: last.ID})
	}
	return resp, nil
}

// changeDisagreement runs fn on the locked disagreement, checking visibility, state and
// version first, and writes the event fn names in the same transaction.
func (s *Service) changeDisagreement(ctx context.Context, id auth.Identity, disagreementID string, expected int64,
	fn func(tx pgx.Tx, d store.Disagreement) (store.Disagreement, string, error)) (store.Disagreement, error) {
	var out store.Disagreement
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
		d, err := store.LockDisagreement(ctx, tx, disagreementID)
		if err != nil {
			return notFoundAs(err, disagreementNotFound(disagreementID))
		}
		if (!hubStaff(id) && d.RaisedByAgency != id.Agency) || !id.Serves(d.Partnership) {
			return disagreementNotFound(disagreementID)
		}
		if err := checkVersionOf("disagreement", d.ID, expected, d.Version); err != nil {
			return err
		}
		if d.Resolved {
			return apierr.FailedPrecondition(fmt.Sprintf("disagreement %s was resolved at %s", d.ID, d.ResolvedAt.UTC().Format(time.RFC3339)))
		}
		after, subject, err := fn(tx, d)
		if err != nil {
			return err
		}
		out = after
		return s.emitDisagreement(ctx, tx, subject, after, staff(id))
	})
	if err != nil {
		return store.Disagreement{}, err
	}
	s.relay.Wake()
	return out, nil
}

// checkEscalate is EscalateDisagreement's check of its request.
func checkEscalate(req *triagev1.EscalateDisagreementRequest) []apierr.Violation {
	if req.GetDisagreementId() == "" {
		return []apierr.Violation{{Field: "disagreementId", Reason: "is required"}}
	}
	if strings.TrimSpace(req.GetOutcome()) == "" {
		return []apierr.Violation{{Field: "outcome", Reason: "is required: what the current stage concluded, and why it goes further"}}
	}
	return nil
}

func (a *grpcAPI) EscalateDisagreement(ctx context.Context, req *triagev1.EscalateDisagreementRequest) (*triagev1.EscalateDisagreementResponse, error) {
	id, err := server.Require(ctx, auth.RaiseDisagreements)
	if err != nil {
		return nil, err
	}
	if vs := checkEscalate(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	now := s.now().UTC()
	d, err := s.changeDisagreement(ctx, id, req.GetDisagreementId(), req.GetExpectedVersion(), func(tx pgx.Tx, d store.Disagreement) (store.Disagreement, string, error) {
		if d.Stage >= store.StagePartnership {
			return d, "", apierr.FailedPrecondition(fmt.Sprintf("disagreement %s is at the partnership, the last stage; resolve it with the partnership's outcome", d.ID))
		}
		next := d.Stage + 1
		after, err := store.EndStage(ctx, tx, d, req.GetOutcome(), id.Actor(), now, next, s.stageDue(next, now), "")
		return after, EventDisagreementEscal, err
	})
	if err != nil {
		return nil, err
	}
	return &triagev1.EscalateDisagreementResponse{Disagreement: disagreementToProto(d)}, nil
}

// checkResolve is ResolveDisagreement's check of its request.
func checkResolve(req *triagev1.ResolveDisagreementRequest) []apierr.Violation {
	if req.GetDisagreementId() == "" {
		return []apierr.Violation{{Field: "disagreementId", Reason: "is required"}}
	}
	if strings.TrimSpace(req.GetResolution()) == "" {
		return []apierr.Violation{{Field: "resolution", Reason: "is required: what was agreed"}}
	}
	return nil
}

func (a *grpcAPI) ResolveDisagreement(ctx context.Context, req *triagev1.ResolveDisagreementRequest) (*triagev1.ResolveDisagreementResponse, error) {
	id, err := server.Require(ctx, auth.ResolveDisagreements)
	if err != nil {
		return nil, err
	}
	if vs := checkResolve(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	now := s.now().UTC()
	d, err := s.changeDisagreement(ctx, id, req.GetDisagreementId(), req.GetExpectedVersion(), func(tx pgx.Tx, d store.Disagreement) (store.Disagreement, string, error) {
		after, err := store.EndStage(ctx, tx, d, req.GetResolution(), id.Actor(), now, 0, time.Time{}, req.GetResolution())
		return after, EventDisagreementResolve, err
	})
	if err != nil {
		return nil, err
	}
	return &triagev1.ResolveDisagreementResponse{Disagreement: disagreementToProto(d)}, nil
}

// escalateOverdue moves every open disagreement past its stage deadline to the next stage,
// recording "deadline passed" as the outcome of the stage that lapsed. Each escalation is
// its own transaction with its event; a disagreement changed meanwhile is re-checked.
func (s *Service) escalateOverdue(ctx context.Context) (int, error) {
	now := s.now().UTC()
	ids, err := store.OverdueDisagreements(ctx, s.store.Pool(), now, sweepBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		escalated := false
		err := s.store.InTx(ctx, func(tx pgx.Tx) error {
			d, err := store.LockDisagreement(ctx, tx, id)
			if err != nil {
				return err
			}
			if d.Resolved || !d.StageDue.Before(now) || d.Stage >= store.StagePartnership {
				return nil // resolved or escalated by someone since
			}
			next := d.Stage + 1
			after, err := store.EndStage(ctx, tx, d, deadlinePassed, systemActor, now, next, s.stageDue(next, now), "")
			if err != nil {
				return err
			}
			escalated = true
			return s.emitDisagreement(ctx, tx, EventDisagreementEscal, after, sweep)
		})
		if err != nil {
			return n, fmt.Errorf("escalate disagreement %s: %w", id, err)
		}
		if escalated {
			n++
			s.log.Info("disagreement escalated: stage deadline passed", zap.String("disagreement_id", id))
		}
	}
	return n, nil
}

// releaseLapsedClaims frees one batch of lapsed claims with a mash.case.released event each.
func (s *Service) releaseLapsedClaims(ctx context.Context) (int, error) {
	now := s.now().UTC()
	var n int
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
		cases, holders, err := store.ReleaseLapsedClaims(ctx, tx, now, sweepBatch)
		if err != nil {
			return err
		}
		for i, c := range cases {
			if err := s.emitCase(ctx, tx, EventReleased, c, sweep, "claim by "+holders[i]+" lapsed"); err != nil {
				return err
			}
		}
		n = len(cases)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("release lapsed claims: %w", err)
	}
	return n, nil
}
