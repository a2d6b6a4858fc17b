package triage

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// Events of what a case may share; notify shares, holds back or withdraws by them.
const (
	EventSharingAuthorised = eventsv1.SubjectSharingAuthorised
	EventSharingRevoked    = eventsv1.SubjectSharingRevoked
	EventConsentChanged    = eventsv1.SubjectConsentChanged
)

// Consent positions. Only GIVEN lets a decision be shared without a manager's authorisation.
const (
	ConsentGiven     = "GIVEN"
	ConsentRefused   = "REFUSED"
	ConsentNotSought = "NOT_SOUGHT"
	ConsentWithdrawn = "WITHDRAWN"
)

// Grounds for sharing without consent.
const (
	GroundSignificantHarm  = "SIGNIFICANT_HARM"
	GroundManagerJudgement = "MANAGER_JUDGEMENT"
)

// consentAllows reports whether the family's consent lets the hub share as decided. A case
// projected before consent was kept (empty) shares as it always did.
func consentAllows(status string) bool { return status == ConsentGiven || status == "" }

// sharingHeld says why a decided case's agencies are not being told, or "" when they are
// (consent given, or a manager's authorisation stands).
func sharingHeld(c store.Case) string {
	if consentAllows(c.ConsentStatus) || c.Sharing.At != nil || c.DecisionStatus == int16(rulesv1.DecisionStatus_RECOMMENDED) ||
		c.DecisionVersion == 0 || len(c.Agencies) == 0 {
		return ""
	}
	return fmt.Sprintf("consent %s: nothing is shared with %s until a manager authorises sharing without consent, with the reason and the lawful basis",
		strings.ToLower(strings.ReplaceAll(c.ConsentStatus, "_", " ")), strings.Join(c.Agencies, ", "))
}

// AuthoriseSharing is the one door for sharing without consent: a manager's recorded
// judgement, with the reason and lawful basis, on a decided case whose family has not given
// consent.
// checkAuthoriseSharing is AuthoriseSharing's check of its request.
func checkAuthoriseSharing(req *triagev1.AuthoriseSharingRequest) []apierr.Violation {
	var vs []apierr.Violation
	if strings.TrimSpace(req.GetLawfulBasis()) == "" {
		vs = append(vs, apierr.Violation{Field: "lawfulBasis", Reason: "is required: the lawful basis for sharing without consent (e.g. UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 18)"})
	}
	if strings.TrimSpace(req.GetReason()) == "" {
		vs = append(vs, apierr.Violation{Field: "reason", Reason: "is required: why sharing without the family's consent is necessary and proportionate"})
	}
	if req.GetReferralId() == "" {
		vs = append(vs, apierr.Violation{Field: "referralId", Reason: "is required"})
	}
	return vs
}

func (a *grpcAPI) AuthoriseSharing(ctx context.Context, req *triagev1.AuthoriseSharingRequest) (*triagev1.AuthoriseSharingResponse, error) {
	id, err := server.Require(ctx, auth.AuthoriseSharing)
	if err != nil {
		return nil, err
	}
	if vs := checkAuthoriseSharing(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	now := s.now().UTC()
	c, err := s.changeSharing(ctx, req.GetReferralId(), req.GetExpectedVersion(), id, EventSharingAuthorised, req.GetReason(),
		func(tx pgx.Tx, c store.Case) (store.Case, error) {
			switch {
			case c.State == store.StateClosed:
				return c, caseClosed(c)
			case c.DecisionVersion == 0 || c.DecisionStatus == int16(rulesv1.DecisionStatus_RECOMMENDED):
				return c, apierr.FailedPrecondition(fmt.Sprintf("case %s is not decided yet: sharing is authorised for a practitioner's decision", c.ReferralID))
			case consentAllows(c.ConsentStatus):
				return c, apierr.FailedPrecondition(fmt.Sprintf("case %s has the family's consent: it is shared as decided, with no authorisation needed", c.ReferralID))
			}
			ground := GroundManagerJudgement
			if c.Level >= int16(rulesv1.Level_LEVEL_3B) {
				ground = GroundSignificantHarm
			}
			return store.SetSharing(ctx, tx, c.ReferralID, store.Sharing{Basis: strings.TrimSpace(req.GetLawfulBasis()),
				Reason: strings.TrimSpace(req.GetReason()), Ground: ground, By: id.Actor(), At: &now})
		})
	if err != nil {
		return nil, err
	}
	s.log.Info("sharing without consent authorised", zap.String("referral_id", c.ReferralID), zap.String("ground", c.Sharing.Ground),
		zap.String("client", id.ClientID))
	return &triagev1.AuthoriseSharingResponse{Case: caseToProto(c, now)}, nil
}

// checkRevoke is RevokeSharing's check of its request.
func checkRevoke(req *triagev1.RevokeSharingRequest) []apierr.Violation {
	if strings.TrimSpace(req.GetReason()) == "" {
		return []apierr.Violation{{Field: "reason", Reason: "is required: why the authorisation no longer stands"}}
	}
	return nil
}

// RevokeSharing withdraws a manager's authorisation; notify withdraws what was shared under
// it.
func (a *grpcAPI) RevokeSharing(ctx context.Context, req *triagev1.RevokeSharingRequest) (*triagev1.RevokeSharingResponse, error) {
	id, err := server.Require(ctx, auth.AuthoriseSharing)
	if err != nil {
		return nil, err
	}
	if vs := checkRevoke(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	now := s.now().UTC()
	c, err := s.changeSharing(ctx, req.GetReferralId(), req.GetExpectedVersion(), id, EventSharingRevoked, req.GetReason(),
		func(tx pgx.Tx, c store.Case) (store.Case, error) {
			if c.Sharing.At == nil {
				return c, apierr.FailedPrecondition(fmt.Sprintf("case %s has no authorisation to share without consent to revoke", c.ReferralID))
			}
			return store.SetSharing(ctx, tx, c.ReferralID, store.Sharing{})
		})
	if err != nil {
		return nil, err
	}
	return &triagev1.RevokeSharingResponse{Case: caseToProto(c, now)}, nil
}

// RecordConsent records a change in the family's consent; withdrawn or refused consent stops
// what has not been sent and withdraws what was shared on consent.
// checkConsent is RecordConsent's check of its request.
func checkConsent(req *triagev1.RecordConsentRequest) []apierr.Violation {
	status := strings.ToUpper(strings.TrimSpace(req.GetStatus()))
	switch status {
	case ConsentGiven, ConsentRefused, ConsentWithdrawn:
	default:
		return []apierr.Violation{{Field: "status", Reason: "must be GIVEN, REFUSED or WITHDRAWN"}}
	}
	if status != ConsentGiven && strings.TrimSpace(req.GetNote()) == "" {
		return []apierr.Violation{{Field: "note", Reason: "is required when consent is refused or withdrawn: who told the hub, and when"}}
	}
	return nil
}

func (a *grpcAPI) RecordConsent(ctx context.Context, req *triagev1.RecordConsentRequest) (*triagev1.RecordConsentResponse, error) {
	id, err := server.Require(ctx, auth.RecordConsent)
	if err != nil {
		return nil, err
	}
	if vs := checkConsent(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	status := strings.ToUpper(strings.TrimSpace(req.GetStatus()))
	s := a.svc
	now := s.now().UTC()
	c, err := s.changeSharing(ctx, req.GetReferralId(), req.GetExpectedVersion(), id, EventConsentChanged, req.GetNote(),
		func(tx pgx.Tx, c store.Case) (store.Case, error) {
			if c.ConsentStatus == status {
				return c, apierr.FailedPrecondition(fmt.Sprintf("consent on case %s is already %s", c.ReferralID, status))
			}
			return store.SetConsent(ctx, tx, c.ReferralID, status)
		})
	if err != nil {
		return nil, err
	}
	s.log.Info("consent recorded", zap.String("referral_id", c.ReferralID), zap.String("consent", status), zap.String("client", id.ClientID))
	return &triagev1.RecordConsentResponse{Case: caseToProto(c, now)}, nil
}

// changeSharing runs fn on the locked case at the expected version and writes the sharing
// event with the position after it, in one transaction.
func (s *Service) changeSharing(ctx context.Context, referralID string, expected int64, id auth.Identity, subject, reason string,
	fn func(tx pgx.Tx, c store.Case) (store.Case, error)) (store.Case, error) {
	var out store.Case
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
		c, err := store.LockCase(ctx, tx, referralID)
		if err == nil && !id.Serves(c.Partnership) {
			err = store.ErrNotFound // another partnership's case is as unknown as a missing one
		}
		if err != nil {
			return notFoundAs(err, caseNotFound(referralID))
		}
		if err := checkVersion(c, expected); err != nil {
			return err
		}
		after, err := fn(tx, c)
		if err != nil {
			return err
		}
		out = after
		ev := &eventsv1.SharingChanged{ReferralId: after.ReferralID, ConsentStatus: after.ConsentStatus, Actor: id.Actor(),
			ActorRole: string(id.Role), Reason: reason}
		if after.Sharing.At != nil {
			ev.Authorisation = caseToProto(after, s.now()).GetSharingAuthorisation()
		}
		return s.emit(ctx, tx, staff(id), subject, after.Partnership, after.ReferralID, after.Version, ev)
	})
	if err != nil {
		return store.Case{}, err
	}
	s.relay.Wake()
	return out, nil
}
