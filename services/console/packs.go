package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/mash-hub/mash/pkg/server"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
)

type packsData struct {
	Partnership string
	Packs       []*rulesv1.Pack
	Pack        *rulesv1.Pack
	A, B        *rulesv1.Pack
	Diff        []diffLine
	Replay      *rulesv1.ReplayPackResponse
	Source      string
	Last        string
}

func (s *Service) partnershipOf(r *http.Request) string {
	if p := strings.TrimSpace(r.URL.Query().Get("partnership")); p != "" {
		return p
	}
	if p := strings.TrimSpace(r.PostFormValue("partnership")); p != "" {
		return p
	}
	return s.cfg.Partnership
}

// listPacks reads the partnership's packs; withSource asks for their YAML too, which only
// the pack and diff pages show.
func (s *Service) listPacks(w http.ResponseWriter, r *http.Request, rs *reqState, withSource bool) (packsData, bool) {
	d := packsData{Partnership: s.partnershipOf(r)}
	resp, err := s.b.Rules.ListPacks(rs.call(r.Context()), &rulesv1.ListPacksRequest{Partnership: d.Partnership, IncludeSource: withSource})
	if err != nil {
		s.pageError(w, r, rs, err)
		return d, false
	}
	d.Packs = resp.GetPacks()
	return d, true
}

func findPack(ps []*rulesv1.Pack, id string) *rulesv1.Pack {
	for _, p := range ps {
		if p.GetId() == id {
			return p
		}
	}
	return nil
}

func (s *Service) packsPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	d, ok := s.listPacks(w, r, rs, false)
	if !ok {
		return
	}
	pg := s.newPage(r, rs, "packs.title")
	pg.Data = d
	s.render(w, http.StatusOK, "packs", pg)
}

func (s *Service) packPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	s.showPack(w, r, rs, s.newPage(r, rs, "pack.title"), http.StatusOK)
}

func (s *Service) showPack(w http.ResponseWriter, r *http.Request, rs *reqState, pg *page, code int) {
	d, ok := s.listPacks(w, r, rs, true)
	if !ok {
		return
	}
	if d.Pack = findPack(d.Packs, r.PathValue("id")); d.Pack == nil {
		s.errorPage(w, r, rs, http.StatusNotFound, "error.notfound")
		return
	}
	d.Source, d.Last = d.Pack.GetSource(), "1000"
	pg.Data = d
	s.render(w, code, "pack", pg)
}

func (s *Service) packDiffPage(w http.ResponseWriter, r *http.Request, rs *reqState) {
	d, ok := s.listPacks(w, r, rs, true)
	if !ok {
		return
	}
	d.A, d.B = findPack(d.Packs, r.URL.Query().Get("a")), findPack(d.Packs, r.URL.Query().Get("b"))
	if d.A == nil || d.B == nil {
		s.errorPage(w, r, rs, http.StatusNotFound, "error.notfound")
		return
	}
	if d.A.GetSource() != "" && d.B.GetSource() != "" {
		d.Diff = diffLines(d.A.GetSource(), d.B.GetSource())
	}
	pg := s.newPage(r, rs, "packdiff.title")
	pg.Data = d
	s.render(w, http.StatusOK, "packdiff", pg)
}

func (s *Service) replay(w http.ResponseWriter, r *http.Request, rs *reqState) {
	pg := s.newPage(r, rs, "replay.title")
	pg.Form = r.PostForm
	d := packsData{Partnership: s.partnershipOf(r), Source: r.PostFormValue("source"), Last: strings.TrimSpace(r.PostFormValue("last"))}
	last := 1000
	if d.Last != "" {
		n, err := strconv.Atoi(d.Last)
		if err != nil || n < 1 || n > 100000 {
			pg.Errors = append(pg.Errors, fieldErr{"last", pg.T("replay.last_invalid")})
		}
		last = n
	}
	if strings.TrimSpace(d.Source) == "" {
		pg.Errors = append(pg.Errors, fieldErr{"source", pg.T("replay.source_missing")})
	}
	if len(pg.Errors) == 0 {
		resp, err := s.b.Rules.ReplayPack(rs.call(r.Context()), &rulesv1.ReplayPackRequest{Source: d.Source, Last: int32(last), Examples: 20})
		if err != nil {
			p := problemOf(err)
			if p.code != codes.InvalidArgument && p.code != codes.FailedPrecondition {
				s.pageError(w, r, rs, err)
				return
			}
			for f, desc := range p.fields {
				pg.Errors = append(pg.Errors, fieldErr{Field: "source", Text: f + ": " + desc})
			}
			if len(pg.Errors) == 0 {
				pg.Errors = append(pg.Errors, fieldErr{Field: "source", Text: p.message})
			}
		}
		d.Replay = resp
	}
	pg.Data = d
	code := http.StatusOK
	if len(pg.Errors) > 0 {
		code = http.StatusBadRequest
	}
	s.render(w, code, "replay", pg)
}

func (s *Service) activate(w http.ResponseWriter, r *http.Request, rs *reqState) {
	pg := s.newPage(r, rs, "pack.title")
	pg.Form = r.PostForm
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		pg.Errors = []fieldErr{{"reason", pg.T("activate.reason_missing")}}
		s.showPack(w, r, rs, pg, http.StatusBadRequest)
		return
	}
	_, err := s.b.Rules.ActivatePack(rs.call(r.Context()), &rulesv1.ActivatePackRequest{PackId: id, Reason: reason})
	if err == nil {
		s.log.Info("console: pack activated", zap.String("pack_id", id), zap.String("session", rs.sessionID),
			zap.String("request_id", server.RequestID(r.Context())))
		http.Redirect(w, r, "/console/packs?partnership="+url.QueryEscape(s.partnershipOf(r))+"&done=activated", http.StatusSeeOther)
		return
	}
	if code, ok := refusal(err, pg, "activate.refused"); ok {
		s.showPack(w, r, rs, pg, code)
		return
	}
	s.pageError(w, r, rs, err)
}

// diffLine is one line of a unified view of two sources.
type diffLine struct {
	Op   string // "=", "-", "+"
	Text string
	A, B int // line numbers, 0 where the line is absent on that side
}

// diffLines is a longest-common-subsequence line diff; packs are a few hundred lines, so
// the quadratic table is small. Larger inputs fall back to listing both sides.
func diffLines(a, b string) []diffLine {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(al)*len(bl) > 4_000_000 {
		var out []diffLine
		for i, l := range al {
			out = append(out, diffLine{"-", l, i + 1, 0})
		}
		for i, l := range bl {
			out = append(out, diffLine{"+", l, 0, i + 1})
		}
		return out
	}
	n, m := len(al), len(bl)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case al[i] == bl[j]:
			out = append(out, diffLine{"=", al[i], i + 1, j + 1})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, diffLine{"-", al[i], i + 1, 0})
			i++
		default:
			out = append(out, diffLine{"+", bl[j], 0, j + 1})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, diffLine{"-", al[i], i + 1, 0})
	}
	for ; j < m; j++ {
		out = append(out, diffLine{"+", bl[j], 0, j + 1})
	}
	return out
}
