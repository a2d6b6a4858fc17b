package console

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/server"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// Filter choices offered on the queue.
var (
	rags   = []rulesv1.Rag{rulesv1.Rag_RAG_RED, rulesv1.Rag_RAG_AMBER, rulesv1.Rag_RAG_GREEN, rulesv1.Rag_RAG_NONE}
	levels = []rulesv1.Level{rulesv1.Level_LEVEL_4, rulesv1.Level_LEVEL_3B, rulesv1.Level_LEVEL_3A, rulesv1.Level_LEVEL_2, rulesv1.Level_LEVEL_1}
	states = []triagev1.CaseState{triagev1.CaseState_AWAITING_RULES, triagev1.CaseState_AWAITING_DECISION,
		triagev1.CaseState_DECIDED, triagev1.CaseState_CLOSED}
	outcomes = func() []triagev1.CaseOutcome {
		var out []triagev1.CaseOutcome
		for i := int32(1); i < int32(len(triagev1.CaseOutcome_name)); i++ {
			out = append(out, triagev1.CaseOutcome(i))
		}
		return out
	}()
	concerns = func() []string {
		var out []string
		for i := int32(1); i < int32(len(intakev1.ConcernCategory_name)); i++ {
			out = append(out, intakev1.ConcernCategory(i).String())
		}
		return out
	}()
)

// queueFilter is the queue's GET form.
type queueFilter struct {
	Partnership, State, Rag, Level, Concern, Source, Assignee, Page string
	Overdue                                                         bool
}

func readQueueFilter(q url.Values) queueFilter {
	return queueFilter{
		Partnership: strings.TrimSpace(q.Get("partnership")), State: q.Get("state"), Rag: q.Get("rag"), Level: q.Get("level"),
		Concern: q.Get("concern"), Source: strings.TrimSpace(q.Get("source")), Assignee: strings.TrimSpace(q.Get("assignee")),
		Page: q.Get("page"), Overdue: q.Get("overdue") == "on",
	}
}

// request turns the form into ListQueue's request; unknown values are ignored.
func (f queueFilter) request() *triagev1.ListQueueRequest {
	req := &triagev1.ListQueueRequest{Partnership: f.Partnership, SourceAgency: f.Source, Assignee: f.Assignee,
		OverdueOnly: f.Overdue, PageSize: 25, PageToken: f.Page}
	if v, ok := triagev1.CaseState_value[f.State]; ok && v != 0 {
		req.States = []triagev1.CaseState{triagev1.CaseState(v)}
	} else if f.State == "all" {
		req.States = states
	}
	if v, ok := rulesv1.Rag_value[f.Rag]; ok && v != 0 {
		req.Rags = []rulesv1.Rag{rulesv1.Rag(v)}
	}
	if v, ok := rulesv1.Level_value[f.Level]; ok && v != 0 {
		req.Levels = []rulesv1.Level{rulesv1.Level(v)}
	}
	if _, ok := intakev1.ConcernCategory_value[f.Concern]; ok && f.Concern != "CONCERN_CATEGORY_UNSPECIFIED" {
		req.Concern = f.Concern
	}
	return req
}

// query is the form as a query string, without the page, for links that keep the filters.
func (f queueFilter) query() string {
	v := url.Values{}
	for k, val := range map[string]string{"partnership": f.Partnership, "state": f.State, "rag": f.Rag, "level": f.Level,
		"concern": f.Concern, "source": f.Source, "assignee": f.Assignee} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if f.Overdue {
		v.Set("overdue", "on")
	}
	return v.Encode()
}

type queueData struct {
	Filter   queueFilter
	Cases    []*triagev1.Case
	Counts   []*triagev1.QueueCount
	Next     string
	Query    template.URL
	States   []triagev1.CaseState
	Rags     []rulesv1.Rag
	Levels   []rulesv1.Level
	Concerns []string
	Me       string
	// Reassigned is the outcome of a bulk reassignment just made (nil: none).
	Reassigned *reassignView
}

// reassignView is what a bulk reassignment did: how many cases moved, and why the others
// did not.
type reassignView struct {
	Assigned int32
	Refused  []*triagev1.ReassignmentResult
}

func (s *Service) queuePage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	s.showQueue(w, r, rs, s.newPage(r, rs, "queue.title"), http.StatusOK, nil)
}

// showQueue renders the queue under the filters of the request's query, with pg's errors
// and a reassignment's outcome, if any.
func (s *Service) showQueue(w http.ResponseWriter, r *http.Request, rs *reqState, pg *page, code int, done *reassignView) {
	f := readQueueFilter(r.URL.Query())
	resp, err := s.b.Triage.ListQueue(rs.call(r.Context()), f.request())
	if err != nil {
		s.pageError(w, r, rs, err)
		return
	}
	pg.Data = queueData{Filter: f, Cases: resp.GetCases(), Counts: resp.GetCounts(), Next: resp.GetNextPageToken(),
		Query: template.URL(f.query()), States: states, Rags: rags, Levels: levels, Concerns: concerns, Me: rs.ident.ClientID,
		Reassigned: done}
	s.render(w, code, "queue", pg)
}

// reassign gives the ticked cases to one practitioner (a manager's bulk reassignment). Each
// case is assigned on its own; those refused are listed with triage's reason, and the
// queue is shown again as it now stands.
func (s *Service) reassign(w http.ResponseWriter, r *http.Request, rs *reqState) {
	pg := s.newPage(r, rs, "queue.title")
	pg.Form = r.PostForm
	ids := r.PostForm["case"]
	assignee := strings.TrimSpace(r.PostFormValue("assignee"))
	if len(ids) == 0 {
		pg.Errors = append(pg.Errors, fieldErr{Field: "case", Text: pg.T("queue.reassign_none")})
	}
	if assignee == "" {
		pg.Errors = append(pg.Errors, fieldErr{Field: "assignee", Text: pg.T("queue.reassign_missing")})
	}
	if len(pg.Errors) > 0 {
		s.showQueue(w, r, rs, pg, http.StatusBadRequest, nil)
		return
	}
	resp, err := s.b.Triage.ReassignCases(rs.call(r.Context()), &triagev1.ReassignCasesRequest{ReferralIds: ids, Assignee: assigneeID(assignee)})
	if err != nil {
		p := problemOf(err)
		code, refused := refusalStatus(p.code)
		if !refused {
			s.pageError(w, r, rs, err)
			return
		}
		for f, d := range p.fields {
			if strings.HasPrefix(f, "referralIds") {
				f = "case"
			}
			pg.Errors = append(pg.Errors, fieldErr{Field: f, Text: d})
		}
		if len(pg.Errors) == 0 {
			pg.ErrorText = p.message
		}
		s.showQueue(w, r, rs, pg, code, nil)
		return
	}
	done := &reassignView{Assigned: resp.GetAssigned()}
	for _, res := range resp.GetResults() {
		if res.GetErrorCode() != "" {
			done.Refused = append(done.Refused, res)
		}
	}
	s.log.Info("console: cases reassigned", zap.Int("assigned", int(resp.GetAssigned())), zap.Int("refused", len(done.Refused)),
		zap.String("session", rs.sessionID), zap.String("request_id", server.RequestID(r.Context())))
	s.showQueue(w, r, rs, pg, http.StatusOK, done)
}

// queueCounts serves the counts per state under the same filters, for the page's
// progressive enhancement (polled every 15 seconds).
func (s *Service) queueCounts(w http.ResponseWriter, r *http.Request, rs *reqState) {
	f := readQueueFilter(r.URL.Query())
	req := f.request()
	req.PageSize, req.PageToken = 1, ""
	resp, err := s.b.Triage.ListQueue(rs.call(r.Context()), req)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"unavailable"}`))
		return
	}
	type count struct {
		State   string `json:"state"`
		Count   int64  `json:"count"`
		Overdue int64  `json:"overdue"`
	}
	out := struct {
		Counts []count `json:"counts"`
	}{Counts: []count{}}
	for _, c := range resp.GetCounts() {
		out.Counts = append(out.Counts, count{State: c.GetState().String(), Count: c.GetCount(), Overdue: c.GetOverdue()})
	}
	_ = json.NewEncoder(w).Encode(out)
}
