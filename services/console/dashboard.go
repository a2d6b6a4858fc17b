package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/dashcsv"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

type dashFilter struct {
	From, To, Partnership string
}

func readDashFilter(q url.Values) (dashFilter, *triagev1.GetDashboardRequest, []fieldErr) {
	f := dashFilter{From: q.Get("from"), To: q.Get("to"), Partnership: strings.TrimSpace(q.Get("partnership"))}
	req := &triagev1.GetDashboardRequest{Partnership: f.Partnership}
	var errs []fieldErr
	if f.From != "" {
		t, err := time.ParseInLocation("2006-01-02", f.From, london)
		if err != nil {
			errs = append(errs, fieldErr{"from", "dashboard.date_invalid"})
		} else {
			req.From = timestamppb.New(t)
		}
	}
	if f.To != "" {
		t, err := time.ParseInLocation("2006-01-02", f.To, london)
		if err != nil {
			errs = append(errs, fieldErr{"to", "dashboard.date_invalid"})
		} else {
			req.To = timestamppb.New(t.AddDate(0, 0, 1)) // the form's "to" day is included
		}
	}
	if req.From != nil && req.To != nil && !req.From.AsTime().Before(req.To.AsTime()) {
		errs = append(errs, fieldErr{"to", "dashboard.range_invalid"})
	}
	return f, req, errs
}

// chart is a horizontal bar chart drawn as inline SVG on the server. Title is in the page's
// language.
type chart struct {
	ID, Title string
	Bars      []bar
	Height    int
}

type bar struct {
	Label        string
	Count        int64
	Y, Width     int
	TextX, TextY int
}

const chartBarWidth = 360

func newChart(id, title string, tallies []*triagev1.Tally) chart {
	c := chart{ID: id, Title: title}
	var top int64
	for _, t := range tallies {
		top = max(top, t.GetCount())
	}
	for i, t := range tallies {
		w := 0
		if top > 0 {
			w = int(t.GetCount() * chartBarWidth / top)
		}
		y := i * 28
		c.Bars = append(c.Bars, bar{Label: t.GetLabel(), Count: t.GetCount(), Y: y, Width: max(w, 1), TextX: 200 + max(w, 1) + 6, TextY: y + 17})
	}
	c.Height = max(len(c.Bars)*28, 28)
	return c
}

type dashboardData struct {
	Filter dashFilter
	D      *triagev1.GetDashboardResponse
	Charts []chart
	CSV    string
	// Agreement is the quality assurance reviews' agreement rate (nil: not reachable).
	Agreement *triagev1.GetQualityAgreementResponse
}

func (s *Service) dashboardPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	pg := s.newPage(r, rs, "dashboard.title")
	f, req, errs := readDashFilter(r.URL.Query())
	for _, e := range errs {
		pg.Errors = append(pg.Errors, fieldErr{e.Field, pg.T(e.Text)})
	}
	d := dashboardData{Filter: f, CSV: "/console/dashboard.csv?" + r.URL.RawQuery}
	if len(errs) > 0 {
		pg.Data = d
		s.render(w, http.StatusBadRequest, "dashboard", pg)
		return
	}
	resp, err := s.b.Triage.GetDashboard(rs.call(r.Context()), req)
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	d.D = resp
	if s.b.Quality != nil {
		// The reviews recorded in the dashboard's range, per partnership and month.
		a, err := s.b.Quality.GetQualityAgreement(rs.call(r.Context()), &triagev1.GetQualityAgreementRequest{Partnership: req.GetPartnership(),
			From: resp.GetFrom(), To: resp.GetTo()})
		if err != nil {
			// The rest of the figures stand without it: the section says it is missing.
			s.log.Warn("console: quality agreement for the dashboard", zap.Error(err))
		}
		d.Agreement = a
	}
	d.Charts = []chart{
		newChart("by-week", pg.T("dashboard.by_week"), resp.GetReferralsByWeek()),
		newChart("by-source", pg.T("dashboard.by_source"), resp.GetBySourceAgency()),
		newChart("rag", pg.T("dashboard.rag"), resp.GetRagDistribution()),
		newChart("lead-agencies", pg.T("dashboard.lead_by_agency"), resp.GetLeadProfessionalAgencies()),
	}
	for _, lo := range resp.GetOutcomesByLevel() {
		level := lo.GetLevel().String()
		d.Charts = append(d.Charts, newChart("outcomes-"+strings.ToLower(level),
			pg.T("dashboard.outcomes_for", pg.T("level."+level)), lo.GetOutcomes()))
	}
	pg.Data = d
	s.render(w, http.StatusOK, "dashboard", pg)
}

// dashboardCSV serves the same figures as the page, one row per figure.
func (s *Service) dashboardCSV(w http.ResponseWriter, r *http.Request, rs *reqState) {
	_, req, errs := readDashFilter(r.URL.Query())
	if len(errs) > 0 {
		http.Error(w, "bad date range", http.StatusBadRequest)
		return
	}
	d, err := s.b.Triage.GetDashboard(rs.call(r.Context()), req)
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="mash-dashboard.csv"`)
	if err := dashcsv.Write(w, d); err != nil {
		s.log.Warn("console: write dashboard CSV", zap.Error(err))
	}
}

type auditData struct {
	Referral, Child string
	Trail           []*auditv1.AuditEntry
	Accesses        []*auditv1.AccessRecord
	TrailNext       string
	AccessNext      string
}

// auditPage shows a referral's (or child's) audit trail and who accessed the record.
func (s *Service) auditPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	q := r.URL.Query()
	d := auditData{Referral: strings.TrimSpace(q.Get("referral")), Child: strings.TrimSpace(q.Get("child"))}
	pg := s.newPage(r, rs, "audit.title")
	if d.Referral != "" && d.Child != "" {
		pg.Errors = append(pg.Errors, fieldErr{"referral", pg.T("audit.one_of")})
	}
	if len(pg.Errors) == 0 && (d.Referral != "" || d.Child != "") {
		ctx := rs.call(r.Context())
		trail, err := s.b.Audit.GetTrail(ctx, &auditv1.GetTrailRequest{ReferralId: d.Referral, ChildId: d.Child, PageSize: 500, PageToken: q.Get("trail_page")})
		if err != nil {
			s.pageError(w, r, rs, err)
			return
		}
		acc, err := s.b.Audit.WhoAccessed(ctx, &auditv1.WhoAccessedRequest{ReferralId: d.Referral, ChildId: d.Child, PageSize: 200, PageToken: q.Get("access_page")})
		if err != nil {
			s.pageError(w, r, rs, err)
			return
		}
		d.Trail, d.TrailNext = trail.GetEntries(), trail.GetNextPageToken()
		d.Accesses, d.AccessNext = acc.GetAccesses(), acc.GetNextPageToken()
	}
	pg.Data = d
	code := http.StatusOK
	if len(pg.Errors) > 0 {
		code = http.StatusBadRequest
	}
	s.render(w, code, "audit", pg)
}
