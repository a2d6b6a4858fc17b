package triage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/access"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/pkg/text"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// EventQualityReviewed is a manager's quality assurance review of a decided case.
const EventQualityReviewed = eventsv1.SubjectQualityReviewed

// DefaultQualitySamplePercent is the share of decided cases offered for review when the
// deployment sets none: one in ten.
const DefaultQualitySamplePercent = 10

// Limits of a review's free text.
const (
	maxReviewReason   = 2000
	maxLearningPoint  = 2000
	defaultSampleDays = 7
)

type qualityAPI struct {
	triagev1.UnimplementedQualityServiceServer
	svc *Service
}

// period reads an optional [from, to) range, defaulting to the back days up to now (and
// what was recorded this very second).
func period(from, to *timestamppb.Timestamp, now time.Time, back time.Duration) (time.Time, time.Time, []apierr.Violation) {
	f, t := now.Add(-back), now.Add(time.Second)
	if to != nil {
		t = to.AsTime()
		if from == nil {
			f = t.Add(-back)
		}
	}
	if from != nil {
		f = from.AsTime()
	}
	if !f.Before(t) {
		return f, t, []apierr.Violation{{Field: "to", Reason: "must be after from"}}
	}
	return f.UTC(), t.UTC(), nil
}

func (s *Service) servesOrAll(id auth.Identity, partnership string) []apierr.Violation {
	if partnership != "" && !id.Serves(partnership) {
		return []apierr.Violation{{Field: "partnership", Reason: "is not a partnership you serve"}}
	}
	return nil
}

func (a *qualityAPI) ListQualitySample(ctx context.Context, req *triagev1.ListQualitySampleRequest) (*triagev1.ListQualitySampleResponse, error) {
	id, err := server.Require(ctx, auth.ReviewQuality)
	if err != nil {
		return nil, err
	}
	s := a.svc
	now := s.now().UTC()
	from, to, vs := period(req.GetFrom(), req.GetTo(), now, defaultSampleDays*24*time.Hour)
	vs = append(vs, s.servesOrAll(id, req.GetPartnership())...)
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	f := store.SampleFilter{Partnership: req.GetPartnership(), Partnerships: servedPartnerships(id), From: from, To: to,
		Percent: s.qaPercent, Seed: from.Format(time.RFC3339), Caller: id.Actor(), Limit: pageSize(req.GetPageSize()) + 1}
	pool := s.store.Pool()
	cases, decided, err := store.QualitySample(ctx, pool, f)
	if err != nil {
		return nil, err
	}
	resp := &triagev1.ListQualitySampleResponse{SamplePercent: int32(s.qaPercent), From: timestamppb.New(from), To: timestamppb.New(to),
		Decided: int32(decided)}
	if len(cases) == f.Limit {
		cases, resp.Truncated = cases[:f.Limit-1], true
	}
	// The list shows children's names: a look at their records, kept like the queue's,
	// naming the referral and child of each case shown.
	if len(cases) > 0 {
		refs := make([]string, len(cases))
		for i, c := range cases {
			refs[i] = c.ReferralID
		}
		listed, err := listedCases(ctx, pool, refs)
		if err != nil {
			return nil, err
		}
		if err := access.Record(ctx, pool, store.Schema, s.relay.Wake, s.cipher, id, access.Read{Type: eventsv1.SubjectAccessQueue,
			Action: "ListQualitySample", Partnership: f.Partnership, Listed: listed}, now); err != nil {
			return nil, err
		}
	}
	for _, c := range cases {
		resp.Cases = append(resp.Cases, &triagev1.QualitySampleCase{ReferralId: c.ReferralID, Reference: c.Reference,
			Partnership: c.Partnership, ChildName: c.ChildName, Level: rulesv1.Level(c.Level), RecommendedLevel: rulesv1.Level(c.RecommendedLevel),
			Pathway: c.Pathway, DecidedBy: c.DecidedBy, DecidedAt: timestamppb.New(c.DecidedAt), Reviews: c.Reviews,
			ReviewedByMe: c.ReviewedByCaller, DecidedByMe: c.DecidedBy == id.Actor()})
	}
	return resp, nil
}

// reviewText checks an optional free-text field of a review.
func reviewText(field, v string, limit int) (string, *apierr.Violation) {
	v = strings.TrimSpace(v)
	if p := text.Problem(v, true); p != "" {
		return "", &apierr.Violation{Field: field, Reason: p}
	}
	if len(v) > limit {
		return "", &apierr.Violation{Field: field, Reason: fmt.Sprintf("is longer than %d characters", limit)}
	}
	return v, nil
}

// reviewOf reads a quality review's request: its texts, trimmed, its verdict as stored, and
// what is wrong with it.
func reviewOf(req *triagev1.RecordQualityReviewRequest) (reason, learning, verdict string, vs []apierr.Violation) {
	if !isUUIDString(req.GetReferralId()) {
		vs = append(vs, apierr.Violation{Field: "referralId", Reason: "is required: the decided case's referral id (a UUID)"})
	}
	var v *apierr.Violation
	reason, v = reviewText("reason", req.GetReason(), maxReviewReason)
	if v != nil {
		vs = append(vs, *v)
	}
	learning, v = reviewText("learningPoint", req.GetLearningPoint(), maxLearningPoint)
	if v != nil {
		vs = append(vs, *v)
	}
	switch req.GetVerdict() {
	case triagev1.QualityVerdict_AGREE:
		verdict = store.VerdictAgree
	case triagev1.QualityVerdict_DISAGREE:
		verdict = store.VerdictDisagree
		if reason == "" && v == nil {
			vs = append(vs, apierr.Violation{Field: "reason", Reason: "is required when you disagree: what you would have decided, and why"})
		}
	default:
		vs = append(vs, apierr.Violation{Field: "verdict", Reason: "is required: AGREE or DISAGREE"})
	}
	return reason, learning, verdict, vs
}

// checkQualityReview is RecordQualityReview's check of its request.
func checkQualityReview(req *triagev1.RecordQualityReviewRequest) []apierr.Violation {
	_, _, _, vs := reviewOf(req)
	return vs
}

func (a *qualityAPI) RecordQualityReview(ctx context.Context, req *triagev1.RecordQualityReviewRequest) (*triagev1.RecordQualityReviewResponse, error) {
	id, err := server.Require(ctx, auth.ReviewQuality)
	if err != nil {
		return nil, err
	}
	reason, learning, verdict, vs := reviewOf(req)
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	s := a.svc
	now := s.now().UTC()
	r := store.QualityReview{ID: uuid.Must(uuid.NewV7()).String(), ReferralID: req.GetReferralId(), Verdict: verdict, Reason: reason,
		LearningPoint: learning, Reviewer: id.Actor(), ReviewerRole: string(id.Role), ReviewedAt: now}
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		c, err := store.GetCase(ctx, tx, r.ReferralID)
		if err == nil && !id.Serves(c.Partnership) {
			err = store.ErrNotFound
		}
		if err != nil {
			return notFoundAs(err, caseNotFound(r.ReferralID))
		}
		switch {
		case c.DecidedAt == nil || c.DecidedBy == "":
			return apierr.FailedPrecondition(fmt.Sprintf("case %s has not been decided by a practitioner yet: quality reviews are of decisions", c.ReferralID))
		case c.DecidedBy == id.Actor():
			return apierr.FailedPrecondition(fmt.Sprintf("case %s was decided by you: ask another manager to review your decision", c.ReferralID))
		}
		r.Partnership, r.DecidedBy, r.Level = c.Partnership, c.DecidedBy, c.Level
		if err := store.InsertQualityReview(ctx, tx, r); err != nil {
			if errors.Is(err, store.ErrAlreadyReviewed) {
				return apierr.AlreadyExists(fmt.Sprintf("you have already reviewed case %s: one review per case per reviewer", c.ReferralID))
			}
			return err
		}
		by := staff(id)
		return s.emit(ctx, tx, by, EventQualityReviewed, c.Partnership, c.ReferralID, c.Version,
			&eventsv1.QualityReviewRecorded{Review: reviewToProto(r), Actor: by.ID, ActorRole: by.Role})
	})
	if err != nil {
		return nil, err
	}
	s.relay.Wake()
	s.log.Info("quality review recorded", zap.String("referral_id", r.ReferralID), zap.String("review_id", r.ID),
		zap.String("verdict", r.Verdict), zap.String("client", id.ClientID))
	return &triagev1.RecordQualityReviewResponse{Review: reviewToProto(r)}, nil
}

func reviewToProto(r store.QualityReview) *triagev1.QualityReview {
	v := triagev1.QualityVerdict_AGREE
	if r.Verdict == store.VerdictDisagree {
		v = triagev1.QualityVerdict_DISAGREE
	}
	return &triagev1.QualityReview{Id: r.ID, ReferralId: r.ReferralID, Partnership: r.Partnership, Verdict: v, Reason: r.Reason,
		LearningPoint: r.LearningPoint, Reviewer: r.Reviewer, ReviewerRole: r.ReviewerRole, ReviewedAt: timestamppb.New(r.ReviewedAt),
		DecidedBy: r.DecidedBy, Level: rulesv1.Level(r.Level)}
}

func (a *qualityAPI) ListQualityReviews(ctx context.Context, req *triagev1.ListQualityReviewsRequest) (*triagev1.ListQualityReviewsResponse, error) {
	id, err := server.Require(ctx, auth.ReadDashboard)
	if err != nil {
		return nil, err
	}
	s := a.svc
	from, to, vs := period(req.GetFrom(), req.GetTo(), s.now().UTC(), 90*24*time.Hour)
	vs = append(vs, s.servesOrAll(id, req.GetPartnership())...)
	if r := req.GetReferralId(); r != "" && !isUUIDString(r) {
		vs = append(vs, apierr.Violation{Field: "referralId", Reason: "is not a referral id (a UUID)"})
	}
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	pool := s.store.Pool()
	rs, err := store.QualityReviews(ctx, pool, store.ReviewFilter{ReferralID: req.GetReferralId(), Partnership: req.GetPartnership(),
		Partnerships: servedPartnerships(id), From: from, To: to, Limit: pageSize(req.GetPageSize())})
	if err != nil {
		return nil, err
	}
	if len(rs) > 0 {
		// A review's reason and learning point are about the case: one access entry per
		// page, naming the referral and child of every review it shows.
		refs := make([]string, len(rs))
		for i, r := range rs {
			refs[i] = r.ReferralID
		}
		listed, err := listedCases(ctx, pool, refs)
		if err != nil {
			return nil, err
		}
		if err := access.Record(ctx, pool, store.Schema, s.relay.Wake, s.cipher, id, access.Read{Type: eventsv1.SubjectAccessQueue,
			Action: "ListQualityReviews", Partnership: req.GetPartnership(), Listed: listed}, s.now()); err != nil {
			return nil, err
		}
	}
	resp := &triagev1.ListQualityReviewsResponse{}
	for _, r := range rs {
		resp.Reviews = append(resp.Reviews, reviewToProto(r))
	}
	return resp, nil
}

func (a *qualityAPI) GetQualityAgreement(ctx context.Context, req *triagev1.GetQualityAgreementRequest) (*triagev1.GetQualityAgreementResponse, error) {
	id, err := server.Require(ctx, auth.ReadDashboard)
	if err != nil {
		return nil, err
	}
	s := a.svc
	from, to, vs := period(req.GetFrom(), req.GetTo(), s.now().UTC(), 365*24*time.Hour)
	vs = append(vs, s.servesOrAll(id, req.GetPartnership())...)
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	rows, err := store.QualityAgreement(ctx, s.store.Pool(), req.GetPartnership(), servedPartnerships(id), from, to)
	if err != nil {
		return nil, err
	}
	resp := &triagev1.GetQualityAgreementResponse{}
	totals := map[string]*triagev1.QualityAgreement{}
	for _, r := range rows {
		resp.Periods = append(resp.Periods, agreement(r.Partnership, r.Period, r.Reviewed, r.Agreed))
		t := totals[r.Partnership]
		if t == nil {
			t = &triagev1.QualityAgreement{Partnership: r.Partnership, Period: from.Format("2006-01") + "/" + to.Add(-time.Nanosecond).Format("2006-01")}
			totals[r.Partnership] = t
			resp.Totals = append(resp.Totals, t)
		}
		t.Reviewed += r.Reviewed
		t.Agreed += r.Agreed
	}
	for _, t := range resp.Totals {
		t.AgreementPercent = percent(t.Agreed, t.Reviewed)
	}
	return resp, nil
}

func agreement(partnership, period string, reviewed, agreed int64) *triagev1.QualityAgreement {
	return &triagev1.QualityAgreement{Partnership: partnership, Period: period, Reviewed: reviewed, Agreed: agreed,
		AgreementPercent: percent(agreed, reviewed)}
}

func percent(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) * 100 / float64(of)
}

// caseReviews is every quality-assurance review of one case, newest first, for the case
// page and the subject access export.
func caseReviews(ctx context.Context, q store.Querier, referralID string, limit int) ([]*triagev1.QualityReview, error) {
	rs, err := store.QualityReviews(ctx, q, store.ReviewFilter{ReferralID: referralID, Limit: limit})
	if err != nil {
		return nil, err
	}
	var out []*triagev1.QualityReview
	for _, r := range rs {
		out = append(out, reviewToProto(r))
	}
	return out, nil
}
