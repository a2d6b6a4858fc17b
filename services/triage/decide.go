package triage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// DecideCase is the one door for a human decision. In one transaction it checks the case
// version and that the caller holds the claim, builds the confirmed or overridden decision
// from the recommendation the case holds, and writes mash.decision.made (which rules records
// and notify shares on) with the case's own change: the decision and its check commit
// together or not at all.
// isOverride reports whether a decision changes the recommendation rather than confirming it.
func isOverride(req *triagev1.DecideCaseRequest) bool {
	return req.GetLevel() != rulesv1.Level_LEVEL_UNSPECIFIED || req.GetRag() != rulesv1.Rag_RAG_UNSPECIFIED ||
		req.GetPathway() != "" || len(req.GetAgencies()) > 0
}

// checkDecide is DecideCase's check of its request.
func checkDecide(req *triagev1.DecideCaseRequest) []apierr.Violation {
	override := isOverride(req)
	switch {
	case req.GetReferralId() == "":
		return []apierr.Violation{{Field: "referralId", Reason: "is required"}}
	case req.GetConfirm() && override:
		return []apierr.Violation{{Field: "confirm", Reason: "confirm accepts the recommendation as it stands; to change level, RAG, pathway or agencies, leave confirm false"}}
	case !req.GetConfirm() && !override:
		return []apierr.Violation{{Field: "confirm", Reason: "set confirm to accept the recommendation, or give the level, RAG, pathway or agencies you decide instead"}}
	case override && strings.TrimSpace(req.GetReason()) == "":
		return []apierr.Violation{{Field: "reason", Reason: "is required for an override: say why the recommendation does not fit this child"}}
	}
	return nil
}

func (a *grpcAPI) DecideCase(ctx context.Context, req *triagev1.DecideCaseRequest) (*triagev1.DecideCaseResponse, error) {
	id, err := server.Require(ctx, auth.DecideCases)
	if err != nil {
		return nil, err
	}
	if vs := checkDecide(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	now := s.now()
	var decided *rulesv1.Decision
	var after store.Case
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		c, err := store.LockCase(ctx, tx, req.GetReferralId())
		if err == nil && !id.Serves(c.Partnership) {
			err = store.ErrNotFound // another partnership's case is as unknown as a missing one
		}
		if err != nil {
			return notFoundAs(err, caseNotFound(req.GetReferralId()))
		}
		if err := checkVersion(c, req.GetExpectedVersion()); err != nil {
			return err
		}
		switch {
		case c.State == store.StateClosed:
			return caseClosed(c)
		case c.DecisionVersion == 0:
			return apierr.FailedPrecondition(fmt.Sprintf("case %s has no recommendation from the rules yet; decide it once it is AWAITING_DECISION", c.ReferralID))
		case c.ClaimLive(now) && c.Assignee != id.ClientID:
			return claimedByOther(c)
		case !c.ClaimLive(now):
			return apierr.FailedPrecondition(fmt.Sprintf("claim case %s before deciding it (nobody holds it now)", c.ReferralID))
		}
		rec, err := store.GetDecisionRecord(ctx, tx, c.ReferralID)
		if err != nil {
			return err
		}
		before, err := s.heldDecision(ctx, rec, c)
		if err != nil {
			return err
		}
		next, err := review(before, req, rec, id, now)
		if err != nil {
			return err
		}
		applied, changed, err := store.ApplyDecision(ctx, tx, decisionOf(next))
		if err != nil {
			return err
		}
		if !changed { // cannot happen while the row is locked at the version read; refuse rather than guess
			return apierr.Conflict(fmt.Sprintf("the decision on case %s changed while you decided; reload it and decide again", c.ReferralID))
		}
		raw, err := proto.Marshal(next)
		if err != nil {
			return fmt.Errorf("case %s: encode decision: %w", c.ReferralID, err)
		}
		if err := store.SetDecisionRecord(ctx, tx, c.ReferralID, store.DecisionRecord{Decision: raw}); err != nil {
			return err
		}
		if err := s.emitCase(ctx, tx, EventDecided, applied, staff(id), req.GetReason()); err != nil {
			return err
		}
		if applied, err = s.followGroupLead(ctx, tx, applied, staff(id)); err != nil {
			return err
		}
		// The referral moves on by one version with each decision (the recommendation is 2).
		if err := s.emit(ctx, tx, staff(id), EventDecisionMade, c.Partnership, c.ReferralID, next.GetVersion()+1,
			&eventsv1.DecisionMade{Decision: next, Previous: before.GetCurrent(), DecidedByAgency: id.Agency}); err != nil {
			return err
		}
		decided, after = next, applied
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.relay.Wake()
	s.log.Info("case decided", zap.String("referral_id", after.ReferralID), zap.String("status", decided.GetStatus().String()),
		zap.Int64("decision_version", decided.GetVersion()), zap.String("client", id.ClientID))
	return &triagev1.DecideCaseResponse{Case: caseToProto(after, now), Decision: decided}, nil
}

// heldDecision is the decision the case holds at its current decision version: the copy
// triage keeps, or for a case projected before triage kept one, the rules service's.
func (s *Service) heldDecision(ctx context.Context, rec store.DecisionRecord, c store.Case) (*rulesv1.Decision, error) {
	if rec.Decision != nil {
		var d rulesv1.Decision
		if err := proto.Unmarshal(rec.Decision, &d); err != nil {
			return nil, fmt.Errorf("case %s: decode decision: %w", c.ReferralID, err)
		}
		if d.GetVersion() == c.DecisionVersion {
			return &d, nil
		}
	}
	client, err := s.rulesClient()
	if err != nil {
		return nil, apierr.Unavailable("the rules service cannot be reached; nothing was changed, retry shortly")
	}
	resp, err := client.GetDecision(peers.AsCaller(ctx), &rulesv1.GetDecisionRequest{ReferralId: c.ReferralID})
	if err != nil {
		return nil, fromPeer("rules", err)
	}
	if resp.GetDecision().GetVersion() != c.DecisionVersion {
		return nil, apierr.Conflict(fmt.Sprintf("the decision on case %s is at version %d but the case shows %d; reload it shortly and decide again",
			c.ReferralID, resp.GetDecision().GetVersion(), c.DecisionVersion))
	}
	return resp.GetDecision(), nil
}

// review builds the decision after the practitioner's confirmation or override of before.
func review(before *rulesv1.Decision, req *triagev1.DecideCaseRequest, rec store.DecisionRecord, id auth.Identity, now time.Time) (*rulesv1.Decision, error) {
	next := proto.Clone(before).(*rulesv1.Decision)
	next.Version = before.GetVersion() + 1
	next.ReviewedBy, next.ReviewedByRole, next.ReviewReason = id.Actor(), string(id.Role), req.GetReason()
	next.ReviewedAt = timestamppb.New(now.UTC())
	if req.GetConfirm() {
		next.Status = rulesv1.DecisionStatus_CONFIRMED
		return next, nil
	}
	cur := proto.Clone(before.GetCurrent()).(*rulesv1.Outcome)
	if cur == nil {
		cur = &rulesv1.Outcome{}
	}
	changed, vs := applyOverride(cur, req, rec)
	if len(vs) == 0 && !changed {
		vs = append(vs, apierr.Violation{Field: "level", Reason: "an override must change the level, RAG, pathway or agencies; set confirm to accept the decision as it stands"})
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	next.Status, next.Current = rulesv1.DecisionStatus_OVERRIDDEN, cur
	return next, nil
}

// applyOverride changes o as the request asks and reports whether anything changed. An
// override may name only the pathways and agency roles of the pack that recommended (when
// the case knows them).
func applyOverride(o *rulesv1.Outcome, req *triagev1.DecideCaseRequest, rec store.DecisionRecord) (bool, []apierr.Violation) {
	var vs []apierr.Violation
	changed := false
	if l := req.GetLevel(); l != rulesv1.Level_LEVEL_UNSPECIFIED {
		if _, ok := rulesv1.Level_name[int32(l)]; !ok {
			vs = append(vs, apierr.Violation{Field: "level", Reason: "is not a level"})
		} else if l != o.GetLevel() {
			o.Level, changed = l, true
		}
	}
	if r := req.GetRag(); r != rulesv1.Rag_RAG_UNSPECIFIED {
		if _, ok := rulesv1.Rag_name[int32(r)]; !ok {
			vs = append(vs, apierr.Violation{Field: "rag", Reason: "is not a RAG rating"})
		} else if r != o.GetRag() {
			o.Rag, changed = r, true
		}
	}
	if p := req.GetPathway(); p != "" {
		if rec.Pathways != nil && !slices.Contains(rec.Pathways, p) {
			vs = append(vs, apierr.Violation{Field: "pathway", Reason: fmt.Sprintf("%q is not a pathway of the pack that recommended (%s)", p, o.GetPackVersion())})
		} else if p != o.GetPathway() {
			o.Pathway, changed = p, true
			o.Pathways = append([]string{p}, slices.DeleteFunc(slices.Clone(o.GetPathways()), func(x string) bool { return x == p })...)
		}
	}
	if len(req.GetAgencies()) > 0 {
		agencies := slices.Compact(slices.Sorted(slices.Values(req.GetAgencies())))
		for i, a := range agencies {
			if rec.Agencies != nil && !slices.Contains(rec.Agencies, a) {
				vs = append(vs, apierr.Violation{Field: fmt.Sprintf("agencies[%d]", i), Reason: fmt.Sprintf("%q is not an agency role of the pack that recommended (%s)", a, o.GetPackVersion())})
			}
		}
		if !slices.Equal(agencies, o.GetAgencies()) {
			o.Agencies, changed = agencies, true
		}
	}
	return changed, vs
}
