package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/pkg/text"
)

// Cookie names.
const (
	SessionCookie = "mash_session"
	LangCookie    = "mash_lang"
	// preCSRFCookie carries the double-submit secret of forms shown before sign-in.
	preCSRFCookie = "mash_csrf"
	// oidcCookie carries the state, nonce and PKCE verifier of a sign-in in progress.
	oidcCookie = "mash_oidc"
)

// capability is something a screen or button lets a person do: the permission the service
// behind it checks, read from auth's one table, so a menu or a button appears exactly when
// the call it makes would be allowed. anyStaff (the empty permission) is any signed-in person.
type capability = auth.Permission

const (
	anyStaff         capability = ""
	capQueue                    = auth.ReadQueue
	capCaseRead                 = auth.ReadCases
	capClaim                    = auth.ClaimCases
	capCaseWork                 = auth.DecideCases // decide (confirm or override), strategy, close
	capResearch                 = auth.RequestInformation
	capAnswer                   = auth.AnswerInformation
	capAssign                   = auth.AssignCases
	capNotifications            = auth.ReadNotifications
	capRetry                    = auth.RetryNotifications
	capPacks                    = auth.ReadPacks
	capPackManage               = auth.ManagePacks // replay and activate
	capDashboard                = auth.ReadDashboard
	// Quality assurance reviews of decided cases: managers only, never of their own.
	capQuality = auth.ReviewQuality
	capAudit   = auth.ReadAuditTrails
	// Agencies raise disagreements in the partner view or through the API with their own
	// credential; hub staff who may raise one do so on the case.
	capDisagreements        = auth.ReadDisagreements
	capDisagreementEscalate = auth.RaiseDisagreements
	capDisagreementManage   = auth.ResolveDisagreements
	// The agency directory and its proposed changes; a change to where an agency's
	// notifications go needs a second manager to approve it.
	capDirectory       = auth.ReadDirectory
	capDirectoryDecide = auth.DecideDirectory
	// Sharing a case without the family's consent is a manager's recorded judgement.
	capShareAuthorise = auth.AuthoriseSharing
	// The partner view: what was sent to a partner's own agency.
	capPartner = auth.UsePartnerView
	// Contacts taken by telephone or email, recorded as referrals through intake.
	capContact = auth.SubmitReferrals
)

// can reports whether id may use capability c in the console. The hub's screens are the
// hub's: a partner, whose permissions reach only its own agency's records, works them in
// the partner view alone.
func can(id auth.Identity, c capability) bool {
	if id.Role == auth.RolePartner && c != anyStaff && c != capPartner {
		return false
	}
	return c == anyStaff || id.Can(c)
}

// reqState is what a request of a signed-in person carries.
type reqState struct {
	ident     auth.Identity
	token     string
	sessionID string
}

// call returns a context for a gRPC call made as the signed-in person.
func (rs *reqState) call(ctx context.Context) context.Context {
	return peers.AsCaller(peers.WithCredential(ctx, rs.token))
}

type pageHandler func(w http.ResponseWriter, r *http.Request, rs *reqState)

// Handler returns the console's routes, behind its security headers.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	s.routes = nil
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		s.routes = append(s.routes, pattern)
	}
	handleFunc := func(pattern string, h http.HandlerFunc) { handle(pattern, h) }
	staticFS, _ := fs.Sub(assets, "static")
	handle("GET /console/static/", http.StripPrefix("/console/static/", cacheStatic(http.FileServerFS(staticFS))))
	handleFunc("GET /console/{$}", s.home)
	handleFunc("GET /console/sign-in", s.signInPage)
	handleFunc("POST /console/sign-in", s.signIn)
	handleFunc("GET /console/oidc/start", s.oidcStart)
	handleFunc("GET /console/oidc/callback", s.oidcCallback)
	handleFunc("GET /console/lang", s.setLang)
	handle("POST /console/sign-out", s.need(anyStaff, s.signOut))

	handle("GET /console/queue", s.need(capQueue, s.queuePage))
	handle("GET /console/queue/counts.json", s.need(capQueue, s.queueCounts))
	handle("GET /console/cases/{id}", s.need(capCaseRead, s.casePage))
	handle("POST /console/cases/{id}/claim", s.need(capClaim, s.claim))
	handle("POST /console/cases/{id}/release", s.need(capClaim, s.release))
	handle("POST /console/cases/{id}/assign", s.need(capAssign, s.assign))
	handle("POST /console/queue/reassign", s.need(capAssign, s.reassign))
	handle("POST /console/cases/{id}/lead-professional", s.need(capCaseWork, s.nameLead))
	handle("POST /console/cases/{id}/decide", s.need(capCaseWork, s.decide))
	handle("POST /console/cases/{id}/strategy", s.need(capCaseWork, s.strategy))
	handle("POST /console/cases/{id}/close", s.need(capCaseWork, s.closeCase))
	handle("POST /console/cases/{id}/information-requests", s.need(capResearch, s.requestInformation))
	handle("POST /console/cases/{id}/information-requests/{rid}/answer", s.need(capAnswer, s.answerInformation))
	handle("POST /console/cases/{id}/disagreements", s.need(capDisagreementEscalate, s.raiseDisagreement))
	handle("POST /console/cases/{id}/disagreements/{did}/escalate", s.need(capDisagreementEscalate, s.escalateDisagreement))
	handle("POST /console/cases/{id}/disagreements/{did}/resolve", s.need(capDisagreementManage, s.resolveDisagreement))
	handle("POST /console/cases/{id}/sharing-authorisation", s.need(capShareAuthorise, s.authoriseSharing))
	handle("POST /console/cases/{id}/sharing-authorisation/revoke", s.need(capShareAuthorise, s.revokeSharing))
	handle("GET /console/disagreements", s.need(capDisagreements, s.disagreementsPage))
	handle("GET /console/contacts/new", s.need(capContact, s.contactForm))
	handle("POST /console/contacts", s.need(capContact, s.recordContact))

	handle("GET /console/notifications", s.need(capNotifications, s.notificationsPage))
	handle("POST /console/notifications/{id}/retry", s.need(capRetry, s.retryNotification))

	handle("GET /console/directory", s.need(capDirectory, s.directoryPage))
	handle("POST /console/directory/changes/{id}/approve", s.need(capDirectoryDecide, s.decideChange(true)))
	handle("POST /console/directory/changes/{id}/reject", s.need(capDirectoryDecide, s.decideChange(false)))

	handle("GET /console/packs", s.need(capPacks, s.packsPage))
	handle("GET /console/packs/diff", s.need(capPacks, s.packDiffPage))
	handle("GET /console/packs/{id}", s.need(capPacks, s.packPage))
	handle("POST /console/packs/replay", s.need(capPackManage, s.replay))
	handle("POST /console/packs/{id}/activate", s.need(capPackManage, s.activate))

	handle("GET /console/dashboard", s.need(capDashboard, s.dashboardPage))
	handle("GET /console/dashboard.csv", s.need(capDashboard, s.dashboardCSV))
	handle("GET /console/quality", s.need(capQuality, s.qualityPage))
	handle("POST /console/quality/reviews", s.need(capQuality, s.recordReview))
	handle("GET /console/audit", s.need(capAudit, s.auditPage))
	s.registerRecords(handle)

	// The secure link in notify's emails is <consoleUrl>/referrals/<id>: it opens the
	// referral in the console, after sign-in.
	handleFunc("GET /referrals/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/referrals/"+url.PathEscape(r.PathValue("id")), http.StatusSeeOther)
	})
	handle("GET /console/referrals/{id}", s.need(anyStaff, s.openReferral))
	handle("GET /console/partner", s.need(capPartner, s.partnerInbox))
	handle("GET /console/partner/referrals/{id}", s.need(capPartner, s.partnerReferralPage))
	handle("POST /console/partner/referrals/{id}/notifications/{nid}/acknowledge", s.need(capPartner, s.partnerAcknowledge))
	handle("POST /console/partner/referrals/{id}/information-requests/{rid}/answer", s.need(capPartner, s.partnerAnswer))
	handle("POST /console/partner/referrals/{id}/disagreements", s.need(capPartner, s.partnerRaise))
	handle("POST /console/partner/referrals/{id}/disagreements/{did}/escalate", s.need(capPartner, s.partnerEscalate))

	handleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, nil, http.StatusNotFound, "error.notfound")
	})
	return http.NewCrossOriginProtection().Handler(securityHeaders(mux))
}

// Routes lists the console's route patterns, as Handler registered them: the authorisation
// matrix test opens every one in every role.
func (s *Service) Routes() []string { return append([]string(nil), s.routes...) }

// securityHeaders sets what every console response carries: a strict CSP (no inline
// script or style at all), no framing, no referrer beyond the origin, and no caching of
// pages that show personal data.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if !strings.HasPrefix(r.URL.Path, "/console/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// need wraps a page that needs a signed-in person holding capability c (anyStaff: anyone
// signed in, hub staff or partner). POSTs must carry the session's CSRF token.
func (s *Service) need(c capability, h pageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs, ok := s.session(r)
		if !ok {
			next := "/console/"
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, ".json") && !strings.HasSuffix(r.URL.Path, ".csv") {
				next = r.URL.RequestURI()
			}
			if strings.HasSuffix(r.URL.Path, ".json") {
				http.Error(w, `{"error":"signed out"}`, http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/console/sign-in?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrfToken(rs.sessionID))) {
				s.log.Info("console: CSRF token refused", zap.String("session", rs.sessionID), zap.String("path", r.URL.Path),
					zap.String("request_id", server.RequestID(r.Context())))
				s.errorPage(w, r, rs, http.StatusForbidden, "error.csrf")
				return
			}
			// Every form field is free text to the services behind: one that is not
			// (a NUL, a control character) is refused here, naming it, whatever the page.
			if field, problem := badFormText(r.PostForm); field != "" {
				s.log.Info("console: form text refused", zap.String("field", field), zap.String("problem", problem),
					zap.String("path", r.URL.Path), zap.String("request_id", server.RequestID(r.Context())))
				s.fieldErrorPage(w, r, rs, http.StatusBadRequest, "error.badtext", field)
				return
			}
		}
		if !can(rs.ident, c) {
			s.errorPage(w, r, rs, http.StatusForbidden, "error.forbidden")
			return
		}
		h(w, r, rs)
	})
}

// session reads and checks the session cookie.
func (s *Service) session(r *http.Request) (*reqState, bool) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil, false
	}
	sid, ok := auth.SessionID(ck.Value)
	if !ok {
		return nil, false
	}
	id, err := s.sessions.Authenticate(r.Context(), ck.Value)
	if err != nil {
		if !errors.Is(err, auth.ErrUnauthenticated) {
			s.log.Error("console: check session", zap.String("session", sid), zap.Error(err))
		}
		return nil, false
	}
	if !id.IsPerson() || (!slices.Contains(staffRoles, id.Role) && id.Role != auth.RolePartner) {
		return nil, false
	}
	return &reqState{ident: id, token: ck.Value, sessionID: sid}, true
}

// csrfToken binds forms to the session: an attacker's page can neither read it nor
// compute it without the server key.
func (s *Service) csrfToken(sessionID string) string {
	return s.mac("csrf\x00" + sessionID)
}

func (s *Service) mac(msg string) string {
	m := hmac.New(sha256.New, s.cfg.Key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// preCSRF returns the token for forms shown before sign-in (double submit: a random cookie,
// and its MAC in the form), setting the cookie when the browser has none.
func (s *Service) preCSRF(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if ck, err := r.Cookie(preCSRFCookie); err == nil && len(ck.Value) == 43 {
		v = ck.Value
	} else {
		v = randomToken()
		http.SetCookie(w, s.cookie(r, preCSRFCookie, v, 0))
	}
	return s.mac("pre\x00" + v)
}

func (s *Service) checkPreCSRF(r *http.Request) bool {
	ck, err := r.Cookie(preCSRFCookie)
	if err != nil || ck.Value == "" {
		return false
	}
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.mac("pre\x00"+ck.Value)))
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cookie builds a console cookie: HttpOnly, SameSite=Lax, Path=/, Secure unless the
// console is configured for plain-HTTP localhost and r came over plain HTTP to a loopback
// address (so a listener that is not loopback-only never hands out an insecure cookie,
// whatever the configuration says). maxAge 0 is a browser-session cookie, negative
// deletes.
func (s *Service) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: !s.cfg.InsecureCookies || !servedOnLoopback(r)}
	switch {
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	case maxAge < 0:
		c.MaxAge = -1
	}
	return c
}

// servedOnLoopback reports whether r reached this server over plain HTTP on a loopback
// address.
func servedOnLoopback(r *http.Request) bool {
	if r.TLS != nil {
		return false
	}
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	return isLoopbackAddr(addr.String())
}

// langOf picks the language: the mash_lang cookie, else the browser's preference.
func langOf(r *http.Request) string {
	if ck, err := r.Cookie(LangCookie); err == nil && (ck.Value == "cy" || ck.Value == "en") {
		return ck.Value
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.Header.Get("Accept-Language"))), "cy") {
		return "cy"
	}
	return "en"
}

// localPath accepts only a path on this console, so redirects cannot leave the site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/console/") || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") {
		return "/console/"
	}
	return p
}

func (s *Service) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.URL.Query().Get("to")
	if lang != "cy" {
		lang = "en"
	}
	ck := s.cookie(r, LangCookie, lang, 365*24*time.Hour)
	ck.HttpOnly = false // not a secret; harmless for scripts to read
	http.SetCookie(w, ck)
	http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
}

func (s *Service) home(w http.ResponseWriter, r *http.Request) {
	rs, ok := s.session(r)
	switch {
	case !ok:
		http.Redirect(w, r, "/console/sign-in", http.StatusSeeOther)
	case can(rs.ident, capPartner):
		http.Redirect(w, r, "/console/partner", http.StatusSeeOther)
	default:
		// The first page of the menu the person may open: an administrator, who sees no
		// queue or dashboard, lands where their work is.
		for _, n := range navItems {
			if can(rs.ident, n.cap) {
				http.Redirect(w, r, n.href, http.StatusSeeOther)
				return
			}
		}
		s.errorPage(w, r, rs, http.StatusForbidden, "error.forbidden")
	}
}

// apiProblem is a failed call, sorted for showing.
type apiProblem struct {
	code    codes.Code
	message string            // the service's own message (English, names the fix)
	fields  map[string]string // form field -> the service's description
}

func problemOf(err error) apiProblem {
	st, _ := status.FromError(err)
	p := apiProblem{code: st.Code(), message: st.Message(), fields: map[string]string{}}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				p.fields[formField(fv.GetField())] = fv.GetDescription()
			}
		}
	}
	return p
}

// formField maps an API field path ("decision.reason", "expectedVersion") to the name of
// the console's form field.
func formField(f string) string {
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		f = f[i+1:]
	}
	var b strings.Builder
	for i, r := range f {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// refusal reads a service's refusal of a change: the page shows the message under key with
// the service's reason, with 400 when the request was invalid and 409 when the record's
// state or version did not allow it. ok is false for any other failure, which pageError
// shows.
func refusal(err error, pg *page, key string) (code int, ok bool) {
	p := problemOf(err)
	if code, ok = refusalStatus(p.code); ok {
		pg.ErrorKey, pg.ErrorText = key, p.message
	}
	return code, ok
}

// refusalStatus is the status a form answers when a service refused the change it sent:
// 400 for an invalid request, 409 when the record's state or version did not allow it. ok
// is false for a code that is not a refusal.
func refusalStatus(c codes.Code) (status int, ok bool) {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest, true
	case codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists:
		return http.StatusConflict, true
	}
	return 0, false
}

// pageError shows a failed read as a whole page: not found, forbidden, or unavailable.
func (s *Service) pageError(w http.ResponseWriter, r *http.Request, rs *reqState, err error) {
	p := problemOf(err)
	switch p.code {
	case codes.NotFound:
		s.errorPage(w, r, rs, http.StatusNotFound, "error.notfound")
	case codes.PermissionDenied:
		s.errorPage(w, r, rs, http.StatusForbidden, "error.forbidden")
	case codes.Unauthenticated:
		http.SetCookie(w, s.cookie(r, SessionCookie, "", -1))
		http.Redirect(w, r, "/console/sign-in", http.StatusSeeOther)
	case codes.Unimplemented, codes.Unavailable, codes.DeadlineExceeded:
		s.log.Warn("console: service unavailable", zap.String("path", r.URL.Path), zap.String("code", p.code.String()),
			zap.String("request_id", server.RequestID(r.Context())))
		s.errorPage(w, r, rs, http.StatusServiceUnavailable, "error.unavailable")
	default:
		s.log.Error("console: call failed", zap.String("path", r.URL.Path), zap.String("code", p.code.String()),
			zap.String("request_id", server.RequestID(r.Context())), zap.Error(err))
		s.errorPage(w, r, rs, http.StatusInternalServerError, "error.internal")
	}
}

func (s *Service) errorPage(w http.ResponseWriter, r *http.Request, rs *reqState, code int, key string) {
	s.fieldErrorPage(w, r, rs, code, key, "")
}

// fieldErrorPage is errorPage naming the form field at fault.
func (s *Service) fieldErrorPage(w http.ResponseWriter, r *http.Request, rs *reqState, code int, key, field string) {
	pg := s.newPage(r, rs, "error.title")
	pg.Data = struct {
		Code    int
		Message string
		Field   string
	}{code, key, field}
	s.render(w, code, "error", pg)
}

// badFormText returns the first form field (by name, in name order) whose value is not
// acceptable free text, and what is wrong with it.
func badFormText(form url.Values) (field, problem string) {
	for _, name := range slices.Sorted(maps.Keys(form)) {
		if p := text.Problem(name, false); p != "" {
			return "(name)", p
		}
		for _, v := range form[name] {
			if p := text.Problem(v, true); p != "" {
				return name, p
			}
		}
	}
	return "", ""
}
