package triage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/adminact"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/casekeys"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// EventCaseErased is published (unsealed, ids only) when a case is erased: every service
// blanks its copy of the case on hearing it.
const EventCaseErased = events.CaseErasedSubject

// EventAdminCase is the administrative act recording an erasure with who and why
// (action case.erase): the reason travels there, never on the case's own events.
const EventAdminCase = eventsv1.SubjectAdminCase

// RetentionActor is who erases the cases a retention run finds due.
const RetentionActor = "retention"

// Eraser is who erases a case, as the trail records it.
type Eraser struct {
	ID, Role, Agency, ClientAddress string
}

// Erasure is what erasing a case did.
type Erasure struct {
	ReferralID string
	By         string
	At         time.Time
	// Now is false when the case had been erased before (nothing more was done).
	Now bool
}

func checkEraseReason(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return invalid("reason", "is required: why the case is erased (its retention period ended, an erasure request upheld)")
	case utf8.RuneCountInString(reason) > maxHoldReason:
		return invalid("reason", fmt.Sprintf("is longer than %d characters", maxHoldReason))
	case !utf8.ValidString(reason) || strings.ContainsRune(reason, 0):
		return invalid("reason", "must be UTF-8 text without NUL characters")
	}
	return nil
}

func (a *grpcAPI) EraseCase(ctx context.Context, req *triagev1.EraseCaseRequest) (*triagev1.EraseCaseResponse, error) {
	id, err := server.Require(ctx, auth.EraseCases)
	if err != nil {
		return nil, err
	}
	if err := checkEraseReason(req.GetReason()); err != nil {
		return nil, err
	}
	by := Eraser{ID: id.ClientID, Role: string(id.Role), Agency: id.Agency, ClientAddress: auth.ClientAddress(ctx)}
	e, err := EraseCase(ctx, a.svc.store.Pool(), req.GetReferralId(), req.GetReason(), "", by, a.svc.now().UTC(), id.Serves)
	if err != nil {
		return nil, err
	}
	casekeys.ForgetIn(a.svc.cipher, e.ReferralID)
	a.svc.relay.Wake()
	if e.Now {
		a.svc.log.Info("case erased", zap.String("referral_id", e.ReferralID), zap.String("client", id.ClientID))
	}
	return &triagev1.EraseCaseResponse{ReferralId: e.ReferralID, ErasedBy: e.By, ErasedAt: timestamppb.New(e.At), ErasedNow: e.Now}, nil
}

// EraseCase erases the closed case referralID, in one transaction: its data key is
// destroyed (every sealed copy becomes unreadable), triage's personal data of it is blanked,
// triage's outbox rows and dead letters of it are deleted, and two events are written to
// the outbox: mash.case.erased (unsealed, ids only), on which every other service blanks
// its own copy, and the administrative act case.erase with who and why (rule, when a
// retention schedule made the case due, goes in its detail). A case under a standing legal
// hold, or still open, is refused (FAILED_PRECONDITION, naming the hold); serves says
// whether the caller serves the case's partnership (else NOT_FOUND). A case erased before
// answers that erasure and changes nothing.
//
// Other processes stop using the key within casekeys.DefaultCacheTTL, or as soon as they
// consume mash.case.erased; the caller forgets it in its own Store (casekeys.ForgetIn) and
// wakes its relay.
func EraseCase(ctx context.Context, pool *pgxpool.Pool, referralID, reason, rule string, by Eraser, at time.Time,
	serves func(partnership string) bool) (Erasure, error) {
	if by.ID == "" {
		return Erasure{}, errors.New("erase case: who erases it is required")
	}
	out := Erasure{ReferralID: referralID}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		c, err := store.LockCase(ctx, tx, referralID)
		if err == nil && serves != nil && !serves(c.Partnership) {
			err = store.ErrNotFound
		}
		if err != nil {
			return notFoundAs(err, caseNotFound(referralID))
		}
		prior, err := store.ErasureOf(ctx, tx, referralID)
		if err != nil {
			return err
		}
		if prior != nil {
			out.By, out.At = prior.By, prior.At
			return nil
		}
		if c.State != store.StateClosed {
			return apierr.FailedPrecondition(fmt.Sprintf("case %s is still open: close it with an outcome before erasing it", referralID))
		}
		hold, err := store.StandingHold(ctx, tx, referralID)
		if err != nil {
			return err
		}
		if hold != nil {
			return apierr.FailedPrecondition(fmt.Sprintf("case %s is under a legal hold placed by %s on %s: a manager must lift it before the case can be erased",
				referralID, hold.PlacedBy, hold.PlacedAt.UTC().Format(time.RFC3339)))
		}
		if _, err := casekeys.EraseIn(ctx, tx, referralID); err != nil {
			return err
		}
		if _, err := events.EraseCase(ctx, tx, store.Schema, referralID); err != nil {
			return err
		}
		if err := store.EraseCase(ctx, tx, referralID, by.ID, at); err != nil {
			return err
		}
		env, raw, err := events.ErasedEnvelope(&eventsv1.CaseErased{ReferralId: referralID, ChildId: c.ChildID, ErasedBy: by.ID,
			ErasedByRole: by.Role, ErasedAt: timestamppb.New(at)}, c.Partnership)
		if err != nil {
			return err
		}
		if err := events.InsertOutbox(ctx, tx, store.Schema, env, raw); err != nil {
			return err
		}
		out.By, out.At, out.Now = by.ID, at, true
		return adminact.Insert(ctx, tx, store.Schema, adminact.Act{Subject: EventAdminCase, Verb: "erase", Actor: by.ID, ActorRole: by.Role,
			Agency: by.Agency, Target: referralID, ClientAddress: by.ClientAddress, Reason: reason, Detail: rule, Partnership: c.Partnership}, at)
	})
	if err != nil {
		return Erasure{}, err
	}
	return out, nil
}

// RetentionRun is what one retention run did.
type RetentionRun struct {
	// Erased are the cases erased, each with the rule that made it due.
	Erased []store.DueCase
	// Held are cases found due whose erasure a legal hold, placed meanwhile, refused.
	Held []string
}

// RunRetention erases every closed case its retention schedule says is due at (as
// store.RetentionDue lists them: held and erased cases are never due), each as EraseCase
// does, by by, with the schedule's rule as the reason, so each leaves its own audit entry.
// A case a hold placed meanwhile protects is skipped and reported; any other failure stops
// the run (the cases erased so far stay erased, and the next run picks up the rest).
func RunRetention(ctx context.Context, pool *pgxpool.Pool, at time.Time, by Eraser, now func() time.Time) (RetentionRun, error) {
	var run RetentionRun
	due, err := store.RetentionDue(ctx, pool, at)
	if err != nil {
		return run, err
	}
	for _, d := range due {
		reason := "retention: " + d.Rule()
		e, err := EraseCase(ctx, pool, d.ReferralID, reason, d.Rule(), by, now().UTC(), nil)
		var ae *apierr.Error
		switch {
		case err == nil:
			if e.Now {
				run.Erased = append(run.Erased, d)
			}
		case errors.As(err, &ae) && ae.Code == codes.FailedPrecondition:
			run.Held = append(run.Held, d.ReferralID)
		default:
			return run, fmt.Errorf("retention run: erase case %s: %w", d.ReferralID, err)
		}
	}
	return run, nil
}

// runRetentionDaily runs the retention schedule once a day while ctx lasts, the first time
// an hour after start (so a restart loop cannot erase in a burst before anyone looks).
func (s *Service) runRetentionDaily(ctx context.Context) error {
	wait := time.Hour
	if s.retentionFirst > 0 {
		wait = s.retentionFirst
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = 24 * time.Hour
		run, err := RunRetention(ctx, s.store.Pool(), s.now().UTC(), Eraser{ID: RetentionActor, Role: auth.ActorRoleSystem}, s.now)
		for _, d := range run.Erased {
			casekeys.ForgetIn(s.cipher, d.ReferralID)
		}
		if len(run.Erased) > 0 {
			s.relay.Wake()
		}
		if err != nil && ctx.Err() == nil {
			s.log.Error("retention run", zap.Error(err), zap.Int("erased", len(run.Erased)))
			continue
		}
		s.log.Info("retention run", zap.Int("erased", len(run.Erased)), zap.Strings("held", run.Held))
	}
}
