package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London on hosts without a zoneinfo database

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
)

//go:embed templates/*.html static/*
var assets embed.FS

// london is the hub's wall-clock time zone: every time on a page is shown in it.
var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		return time.UTC
	}
	return l
}()

// pageNames are the screens; each is templates/<name>.html inside templates/layout.html.
var pageNames = []string{"signin", "error", "queue", "case", "notifications", "packs", "pack", "packdiff", "replay", "dashboard", "audit", "disagreements", "directory", "partner", "partnerreferral", "contact", "search", "child", "quality"}

// renderer holds each page parsed once per language, so the helpers that write dates in
// words (dts, date) write them in the page's language.
type renderer struct{ pages map[string]*template.Template }

func newRenderer() (*renderer, error) {
	r := &renderer{pages: map[string]*template.Template{}}
	for lang := range messages {
		for _, name := range pageNames {
			t, err := template.New("layout.html").Funcs(funcs).Funcs(langFuncs(lang)).
				ParseFS(assets, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
			if err != nil {
				return nil, fmt.Errorf("parse template %s: %w", name, err)
			}
			r.pages[lang+"/"+name] = t
		}
	}
	return r, nil
}

// langFuncs are the template helpers that write in a language: en-GB and Welsh forms, in
// Europe/London.
func langFuncs(lang string) template.FuncMap {
	return template.FuncMap{
		// dts is an instant as a person reads it: "Mon 7 Dec 2026, 14:05" ("Llun 7 Rhag 2026, 14:05").
		"dts": func(t *timestamppb.Timestamp) string {
			if t == nil || !t.IsValid() || t.AsTime().IsZero() {
				return ""
			}
			return formatWhen(lang, t.AsTime())
		},
		// date is a calendar date (YYYY-MM-DD) in words: "7 May 2019" ("7 Mai 2019"); a
		// value that is not a date is shown as it is.
		"date": func(s string) string {
			d, err := time.Parse(time.DateOnly, s)
			if err != nil {
				return s
			}
			return formatDate(lang, d)
		},
	}
}

// funcs are the template helpers that need no language.
var funcs = template.FuncMap{
	"ts": func(t *timestamppb.Timestamp) string {
		if t == nil || !t.IsValid() || t.AsTime().IsZero() {
			return ""
		}
		return t.AsTime().In(london).Format("02/01/2006 15:04")
	},
	"isoTS": func(t *timestamppb.Timestamp) string {
		if t == nil || !t.IsValid() {
			return ""
		}
		return t.AsTime().UTC().Format(time.RFC3339)
	},
	"join": strings.Join,
	// yesno is a flag in the page's language.
	"yesno": func(p *page, b bool) string {
		if b {
			return p.T("case.yes")
		}
		return p.T("case.no")
	},
	// fld describes one form field for the "input" and "check" partials: its name, the
	// message key of its label, and optionally its input type and the key of a hint.
	"fld": func(p *page, name, labelKey string, opts ...string) fieldView {
		v := fieldView{Name: name, Label: p.T(labelKey), Type: "text", Value: p.V(name), Error: p.FieldError(name)}
		if len(opts) > 0 && opts[0] != "" {
			v.Type = opts[0]
		}
		if len(opts) > 1 {
			v.Hint = p.T(opts[1])
		}
		return v
	},
	// nhs writes an NHS number in its usual 3 3 4 grouping.
	"nhs": func(s string) string {
		if len(s) != 10 {
			return s
		}
		return s[:3] + " " + s[3:6] + " " + s[6:]
	},
	"list":  func(s ...string) []string { return s },
	"list2": func(v ...any) []any { return v },
	"lower": func(v fmt.Stringer) string {
		return strings.ToLower(v.String())
	},
	"str": func(v fmt.Stringer) string { return v.String() },
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
	"num": func(f float64) string { return fmt.Sprintf("%.0f", f) },
	// tail is the distinctive end of an id (UUIDv7s share their leading time bits).
	"tail": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[len(s)-n:]
	},
	"add": func(a, b int) int { return a + b },
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode())
	},
}

// fieldView is one form field as the "input" and "check" partials draw it.
type fieldView struct {
	Name, Label, Type, Hint, Value, Error string
}

// page is what every template sees.
type page struct {
	Lang      string
	TitleKey  string
	User      *auth.Identity // the signed-in person; nil on pages seen signed out
	CSRF      string
	Path      string
	Nav       []navItem
	FlashKey  string
	ErrorText string // a message from a service, shown as given
	ErrorKey  string // a console message key
	Errors    []fieldErr
	Form      url.Values
	Data      any
	OIDC      bool
	msgs      map[string]string
}

type navItem struct {
	Href, Key string
	Current   bool
}

// fieldErr is one field's error, shown in the summary (linked) and by the field.
type fieldErr struct {
	Field string
	Text  string
}

// T translates key into the page's language; args fill %s/%d verbs.
func (p *page) T(key string, args ...any) string {
	msg, ok := p.msgs[key]
	if !ok {
		msg, ok = messages["en"][key]
	}
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...)
	}
	return msg
}

// E translates an enum value: E "level" LEVEL_3A is T "level.LEVEL_3A".
func (p *page) E(prefix string, v any) string {
	var name string
	switch x := v.(type) {
	case fmt.Stringer:
		name = x.String()
	default:
		name = fmt.Sprint(x)
	}
	if name == "" {
		return ""
	}
	if msg, ok := p.msgs[prefix+"."+name]; ok {
		return msg
	}
	if msg, ok := messages["en"][prefix+"."+name]; ok {
		return msg
	}
	return strings.ReplaceAll(strings.ToLower(name), "_", " ")
}

// langText is a text for people and the language it is in.
type langText struct{ Text, Lang string }

// Loc picks a rule pack's text in the page's language: the Welsh on a Welsh page where the
// pack gave it, the English otherwise. Lang says which, so a Welsh page marks English shown
// for want of Welsh (lang="en", and a note), rather than passing it off as Welsh.
func (p *page) Loc(en, cy string) langText {
	if p.Lang == "cy" && strings.TrimSpace(cy) != "" {
		return langText{Text: cy, Lang: "cy"}
	}
	return langText{Text: en, Lang: "en"}
}

// LocText picks from texts an agency message carries in several languages (each with its
// language) the one in the page's language, or else the first; fallback when there are none.
func (p *page) LocText(texts []*notifyv1.LocalisedText, fallback string) langText {
	for _, t := range texts {
		if t.GetLanguage() == p.Lang {
			return langText{Text: t.GetText(), Lang: p.Lang}
		}
	}
	if len(texts) > 0 {
		return langText{Text: texts[0].GetText(), Lang: texts[0].GetLanguage()}
	}
	return langText{Text: fallback, Lang: p.Lang}
}

// FieldError is the error of one field, if any.
func (p *page) FieldError(field string) string {
	for _, e := range p.Errors {
		if e.Field == field {
			return e.Text
		}
	}
	return ""
}

// V is a submitted form value, to refill a form shown again.
func (p *page) V(field string) string { return p.Form.Get(field) }

// Can reports whether the signed-in person holds a capability, by name.
func (p *page) Can(name string) bool {
	c, ok := capNames[name]
	return ok && p.User != nil && can(*p.User, c)
}

// OtherLang is the language the switch link offers.
func (p *page) OtherLang() string {
	if p.Lang == "cy" {
		return "en"
	}
	return "cy"
}

var capNames = map[string]capability{
	"queue": capQueue, "caseRead": capCaseRead, "claim": capClaim, "caseWork": capCaseWork, "research": capResearch,
	"answer": capAnswer, "assign": capAssign, "notifications": capNotifications, "retry": capRetry, "packs": capPacks,
	"packManage": capPackManage, "dashboard": capDashboard, "audit": capAudit, "disagreements": capDisagreements,
	"disagreementEscalate": capDisagreementEscalate, "disagreementManage": capDisagreementManage,
	"directory": capDirectory, "directoryDecide": capDirectoryDecide,
	"shareAuthorise": capShareAuthorise,
	"partner":        capPartner,
	"contact":        capContact,
	"search":         capSearch, "correct": capCorrect,
	"quality": capQuality,
}

var navItems = []struct {
	href, key string
	cap       capability
}{
	{"/console/queue", "nav.queue", capQueue},
	{"/console/contacts/new", "nav.contact", capContact},
	{"/console/search", "nav.search", capSearch},
	{"/console/notifications", "nav.notifications", capNotifications},
	{"/console/disagreements", "nav.disagreements", capDisagreements},
	{"/console/packs", "nav.packs", capPacks},
	{"/console/directory", "nav.directory", capDirectory},
	{"/console/dashboard", "nav.dashboard", capDashboard},
	{"/console/quality", "nav.quality", capQuality},
	{"/console/audit", "nav.audit", capAudit},
	{"/console/partner", "nav.partner", capPartner},
}

func (s *Service) newPage(r *http.Request, rs *reqState, titleKey string) *page {
	lang := langOf(r)
	p := &page{Lang: lang, TitleKey: titleKey, Path: r.URL.RequestURI(), msgs: messages[lang], Form: url.Values{}}
	if rs != nil {
		id := rs.ident
		p.User = &id
		p.CSRF = s.csrfToken(rs.sessionID)
		for _, n := range navItems {
			if can(rs.ident, n.cap) {
				p.Nav = append(p.Nav, navItem{Href: n.href, Key: n.key, Current: strings.HasPrefix(r.URL.Path, n.href)})
			}
		}
	}
	if k := r.URL.Query().Get("done"); k != "" {
		if _, ok := messages["en"]["done."+k]; ok {
			p.FlashKey = "done." + k
		}
	}
	return p
}

// render writes a page; a template error is logged and becomes a plain 500, never half a
// page.
func (s *Service) render(w http.ResponseWriter, code int, name string, p *page) {
	t, ok := s.pages.pages[p.Lang+"/"+name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		s.log.Error("console: render " + name + ": " + err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", p.Lang)
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
