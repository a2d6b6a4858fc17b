package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/server"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// Quality assurance: a manager opens the period's sample of decided cases (triage chooses
// it, reproducibly), reviews a decision (agree, or disagree with a reason, and a learning
// point), and sees the agreement rate here and on the dashboard.

// errQualityUnavailable is what a console built without the quality service answers.
var errQualityUnavailable = status.Error(codes.Unavailable, "the quality assurance service is not reachable")

type qualityData struct {
	From, To, Partnership string
	Sample                *triagev1.ListQualitySampleResponse
	Reviews               []*triagev1.QualityReview
	Agreement             *triagev1.GetQualityAgreementResponse
	// Query is the filter, to come back to it after a review.
	Query string
}

// qualityFilter reads the page's period: a week ending today unless given (dates in
// London, "to" included).
func (s *Service) qualityFilter(q url.Values) (qualityData, *timestamppb.Timestamp, *timestamppb.Timestamp, []fieldErr) {
	d := qualityData{From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")), Partnership: strings.TrimSpace(q.Get("partnership"))}
	today := s.now().In(london)
	if d.To == "" {
		d.To = today.Format(time.DateOnly)
	}
	if d.From == "" {
		d.From = today.AddDate(0, 0, -6).Format(time.DateOnly)
	}
	var errs []fieldErr
	from, err := time.ParseInLocation(time.DateOnly, d.From, london)
	if err != nil {
		errs = append(errs, fieldErr{"from", "dashboard.date_invalid"})
	}
	to, err := time.ParseInLocation(time.DateOnly, d.To, london)
	if err != nil {
		errs = append(errs, fieldErr{"to", "dashboard.date_invalid"})
	}
	to = to.AddDate(0, 0, 1) // the form's "to" day is included
	if len(errs) == 0 && !from.Before(to) {
		errs = append(errs, fieldErr{"to", "dashboard.range_invalid"})
	}
	d.Query = url.Values{"from": {d.From}, "to": {d.To}, "partnership": {d.Partnership}}.Encode()
	return d, timestamppb.New(from), timestamppb.New(to), errs
}

func (s *Service) qualityPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	s.showQuality(w, r, rs, s.newPage(r, rs, "quality.title"), r.URL.Query(), http.StatusOK)
}

// showQuality renders the QA page for the filter in q, with pg's errors (a refused review).
func (s *Service) showQuality(w http.ResponseWriter, r *http.Request, rs *reqState, pg *page, q url.Values, code int) {
	d, from, to, errs := s.qualityFilter(q)
	for _, e := range errs {
		pg.Errors = append(pg.Errors, fieldErr{e.Field, pg.T(e.Text)})
	}
	pg.Form.Set("from", d.From)
	pg.Form.Set("to", d.To)
	pg.Form.Set("partnership", d.Partnership)
	pg.Data = &d
	if len(errs) > 0 {
		s.render(w, http.StatusBadRequest, "quality", pg)
		return
	}
	if s.b.Quality == nil {
		s.pageError(w, r, rs, errQualityUnavailable)
		return
	}
	ctx := rs.call(r.Context())
	var err error
	if d.Sample, err = s.b.Quality.ListQualitySample(ctx, &triagev1.ListQualitySampleRequest{Partnership: d.Partnership, From: from, To: to}); err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	reviews, err := s.b.Quality.ListQualityReviews(ctx, &triagev1.ListQualityReviewsRequest{Partnership: d.Partnership, From: from, To: to})
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	d.Reviews = reviews.GetReviews()
	if d.Agreement, err = s.b.Quality.GetQualityAgreement(ctx, &triagev1.GetQualityAgreementRequest{Partnership: d.Partnership}); err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	s.render(w, code, "quality", pg)
}

// reviewFields are the review form's fields by the API's names (as formField writes them);
// each sampled case has its own form, so "reason" of case X is shown as "review-X-reason".
var reviewFields = map[string]string{"verdict": "verdict", "reason": "reason", "learning_point": "learning_point", "referral_id": "verdict"}

func reviewField(referralID, field string) string { return "review-" + referralID + "-" + field }

// recordReview sends a manager's review; a refusal shows the page again with each fault
// beside the field of that case's form.
func (s *Service) recordReview(w http.ResponseWriter, r *http.Request, rs *reqState) {
	f := r.PostForm
	id := strings.TrimSpace(f.Get("referral_id"))
	req := &triagev1.RecordQualityReviewRequest{ReferralId: id, Reason: strings.TrimSpace(f.Get("reason")),
		LearningPoint: strings.TrimSpace(f.Get("learning_point"))}
	if v, ok := triagev1.QualityVerdict_value[f.Get("verdict")]; ok {
		req.Verdict = triagev1.QualityVerdict(v)
	}
	back := url.Values{"from": {f.Get("from")}, "to": {f.Get("to")}, "partnership": {f.Get("partnership")}}
	pg := s.newPage(r, rs, "quality.title")
	for _, k := range []string{"verdict", "reason", "learning_point"} {
		pg.Form.Set(reviewField(id, k), f.Get(k))
	}
	var pre []check
	if req.Verdict == triagev1.QualityVerdict_QUALITY_VERDICT_UNSPECIFIED {
		pre = append(pre, check{reviewField(id, "verdict"), "quality.verdict_missing"})
	}
	if req.Verdict == triagev1.QualityVerdict_DISAGREE && req.Reason == "" {
		pre = append(pre, check{reviewField(id, "reason"), "quality.reason_missing"})
	}
	if len(pre) > 0 {
		for _, c := range pre {
			pg.Errors = append(pg.Errors, fieldErr{Field: c.field, Text: pg.T(c.key)})
		}
		s.showQuality(w, r, rs, pg, back, http.StatusBadRequest)
		return
	}
	if s.b.Quality == nil {
		s.pageError(w, r, rs, errQualityUnavailable)
		return
	}
	_, err := s.b.Quality.RecordQualityReview(rs.call(r.Context()), req)
	if err == nil {
		s.log.Info("console: quality review recorded", zap.String("referral_id", id), zap.String("session", rs.sessionID),
			zap.String("request_id", server.RequestID(r.Context())))
		back.Set("done", "reviewed")
		http.Redirect(w, r, "/console/quality?"+back.Encode(), http.StatusSeeOther)
		return
	}
	p := problemOf(err)
	code, refused := refusalStatus(p.code)
	if !refused {
		s.pageError(w, r, rs, err)
		return
	}
	if code == http.StatusBadRequest {
		for field, text := range p.fields {
			name, ok := reviewFields[field]
			if !ok {
				name = "verdict"
			}
			pg.Errors = append(pg.Errors, fieldErr{Field: reviewField(id, name), Text: text})
		}
		slices.SortFunc(pg.Errors, func(a, b fieldErr) int { return strings.Compare(a.Field, b.Field) })
	}
	if len(pg.Errors) == 0 {
		pg.ErrorText = p.message
	}
	s.showQuality(w, r, rs, pg, back, code)
}
