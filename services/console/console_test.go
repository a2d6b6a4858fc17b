package console

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/services/console/store"
)

// testArgon2 keeps tests quick; production uses DefaultArgon2.
var testArgon2 = Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const testPassword = "correct horse battery staple"

type env struct {
	pool   *pgxpool.Pool
	svc    *Service
	srv    *httptest.Server
	auth   *auth.Store
	triage *fakeTriage
	rules  *fakeRules
	notify *fakeNotify
	intake *fakeIntake
	qa     *fakeQuality
	recs   *fakeRecords
}

func newEnv(t *testing.T) *env {
	t.Helper()
	am, err := auth.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	cm, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	pool := dbtest.NewPool(t, "console_"+db.Checksum(append(am, cm...)), func(ctx context.Context, u string) error {
		p, err := pgxpool.New(ctx, u)
		if err != nil {
			return err
		}
		defer p.Close()
		if err := auth.Migrate(ctx, p); err != nil {
			return err
		}
		return Migrate(ctx, p)
	})
	as := auth.NewStore(pool)
	e := &env{pool: pool, auth: as, triage: newFakeTriage(), rules: &fakeRules{}, notify: &fakeNotify{}, intake: &fakeIntake{}, qa: &fakeQuality{},
		recs: newFakeRecords()}
	e.triage.whoami = func(ctx context.Context) string {
		tok := strings.TrimPrefix(callerOf(ctx), "Bearer ")
		id, err := as.Authenticate(ctx, tok)
		if err != nil {
			return "?"
		}
		return id.ClientID
	}
	// The hub's working day ends at 16:30 here, not at the default 17:00, so a due date
	// shows whose hours it follows.
	cal, err := calendar.New(calendar.Config{DayEnd: calendar.ClockTime{Hour: 16, Minute: 30}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Deps{Pool: pool, Log: zap.NewNop(), Auth: as, Peers: peers.NewBook("127.0.0.1:1", nil), Calendar: cal,
		SignIns:  NewTrailSignIns(pool, zap.NewNop()),
		Config:   Config{InsecureCookies: true, Argon2: testArgon2, Key: []byte("0123456789abcdef0123456789abcdef")},
		Backends: Backends{Triage: e.triage, Rules: e.rules, Notify: e.notify, Audit: fakeAudit{}, Intake: e.intake, Quality: e.qa, Records: e.recs}})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.srv = httptest.NewServer(svc.Handler())
	t.Cleanup(e.srv.Close)
	for _, r := range staffRoles {
		if err := svc.CreateAccount(context.Background(), string(r)+"1", "Test "+string(r), r, testPassword, auth.AllPartnerships); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// client is a browser: a cookie jar, no automatic redirects.
func (e *env) client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string, http.Header) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field in page")
	}
	return m[1]
}

// signIn signs in through the form and returns the signed-in client.
func (e *env) signIn(t *testing.T, username string) *http.Client {
	t.Helper()
	c := e.client(t)
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	code, _, h := post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrfOf(t, body)}, "username": {username}, "password": {testPassword}, "next": {"/console/queue"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/queue" {
		t.Fatalf("sign in %s: %d to %q", username, code, h.Get("Location"))
	}
	return c
}

func TestSignInAndOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	code, _, h := get(t, c, e.srv.URL+"/console/queue")
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/sign-in?next=") {
		t.Fatalf("signed out queue: %d %s", code, h.Get("Location"))
	}
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	csrf := csrfOf(t, body)

	// Wrong password, unknown user: the same answer.
	for _, u := range []string{"practitioner1", "nobody"} {
		code, body, _ := post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrf}, "username": {u}, "password": {"wrong password!!"}})
		if code != http.StatusUnauthorized || !strings.Contains(body, "The username or password is not right.") {
			t.Fatalf("bad sign-in of %s: %d", u, code)
		}
	}
	// Without the CSRF token: refused.
	if code, _, _ := post(t, c, e.srv.URL+"/console/sign-in", url.Values{"username": {"practitioner1"}, "password": {testPassword}}); code != http.StatusForbidden {
		t.Fatalf("sign-in without CSRF: %d", code)
	}

	c = e.signIn(t, "practitioner1")
	u, _ := url.Parse(e.srv.URL)
	var token string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == SessionCookie {
			token = ck.Value
		}
	}
	id, err := e.auth.Authenticate(context.Background(), token)
	if err != nil || id.ClientID != "user:practitioner1" || id.Role != auth.RolePractitioner || id.Name != "Test practitioner" {
		t.Fatalf("session identity %+v, %v", id, err)
	}
	code, body, _ = get(t, c, e.srv.URL+"/console/queue")
	if code != http.StatusOK || !strings.Contains(body, "Ffion Test") {
		t.Fatalf("queue: %d", code)
	}
	// The console called triage as the person.
	if got := e.triage.callers[len(e.triage.callers)-1]; got != "Bearer "+token {
		t.Fatalf("triage was called with %q, not the session", got)
	}
	code, _, h = post(t, c, e.srv.URL+"/console/sign-out", url.Values{"csrf": {csrfOf(t, body)}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", code)
	}
	if _, err := e.auth.Authenticate(context.Background(), token); err == nil {
		t.Fatal("the session is still live after sign-out")
	}
	if code, _, _ := get(t, c, e.srv.URL+"/console/queue"); code != http.StatusSeeOther {
		t.Fatalf("queue after sign-out: %d", code)
	}
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	csrf := csrfOf(t, body)
	for i := 0; i < 5; i++ {
		post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrf}, "username": {"manager1"}, "password": {"not the password"}})
	}
	code, body, _ := post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrf}, "username": {"manager1"}, "password": {testPassword}})
	if code != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("sixth attempt with the right password: %d", code)
	}
}

func TestDisabledAccountCannotSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "auditor1")
	if err := e.svc.DisableAccount(context.Background(), "auditor1", e.auth); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, c, e.srv.URL+"/console/dashboard"); code != http.StatusSeeOther {
		t.Fatalf("disabled account's session still works: %d", code)
	}
	c2 := e.client(t)
	_, body, _ := get(t, c2, e.srv.URL+"/console/sign-in")
	if code, _, _ := post(t, c2, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrfOf(t, body)}, "username": {"auditor1"}, "password": {testPassword}}); code != http.StatusUnauthorized {
		t.Fatalf("disabled account signed in: %d", code)
	}
}

func TestCookieFlags(t *testing.T) {
	t.Parallel()
	for _, insecure := range []bool{false, true} {
		s := &Service{cfg: Config{InsecureCookies: insecure}}
		ck := s.cookie(requestAt("127.0.0.1:8080"), SessionCookie, "x", time.Hour)
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure == insecure || ck.MaxAge != 3600 {
			t.Errorf("insecure=%v: cookie %+v", insecure, ck)
		}
	}
	e := newEnv(t)
	c := e.client(t)
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	resp, err := c.PostForm(e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrfOf(t, body)}, "username": {"admin1"}, "password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found bool
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookie {
			found = true
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || !strings.HasPrefix(ck.Value, "mashs_") {
				t.Fatalf("session cookie %+v", ck)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie set")
	}
}

func TestCSRFRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	id := "0192a3b4-0000-7000-8000-000000000001"
	before := len(e.triage.callers)
	for name, form := range map[string]url.Values{
		"missing":         {},
		"wrong":           {"csrf": {"forged"}},
		"other session's": {"csrf": {e.svc.csrfToken("0000000000000000")}},
	} {
		code, body, _ := post(t, c, e.srv.URL+"/console/cases/"+id+"/claim", form)
		if code != http.StatusForbidden || !strings.Contains(body, "This form has expired") {
			t.Errorf("%s token: %d", name, code)
		}
	}
	if len(e.triage.callers) != before {
		t.Fatal("a request without a good CSRF token reached triage")
	}
	// A cross-site POST is refused by the browser-header check too.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/sign-out", strings.NewReader(""))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d", resp.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "manager1")
	_, _, h := get(t, c, e.srv.URL+"/console/queue")
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff"} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestRoleGating(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := amberCaseID
	pages := map[string]map[auth.Role]int{
		"/console/queue":                {practitioner: 200, manager: 200, auditor: 403, admin: 403},
		"/console/cases/" + id:          {practitioner: 200, manager: 200, auditor: 403, admin: 403},
		"/console/dashboard":            {practitioner: 403, manager: 200, auditor: 200, admin: 403},
		"/console/audit?referral=" + id: {practitioner: 403, manager: 403, auditor: 200, admin: 403},
		"/console/packs":                {practitioner: 200, manager: 200, auditor: 200, admin: 200},
		"/console/notifications":        {practitioner: 200, manager: 200, auditor: 200, admin: 200},
		"/console/dashboard.csv":        {practitioner: 403, manager: 200, auditor: 200, admin: 403},
		"/console/disagreements":        {practitioner: 200, manager: 200, auditor: 200, admin: 403},
	}
	clients := map[auth.Role]*http.Client{}
	for _, r := range staffRoles {
		clients[r] = e.signIn(t, string(r)+"1")
	}
	for path, want := range pages {
		for role, code := range want {
			if got, _, _ := get(t, clients[role], e.srv.URL+path); got != code {
				t.Errorf("%s as %s: %d, want %d", path, role, got, code)
			}
		}
	}
	// An auditor does not work cases: no claim or decision form, and posting is refused.
	_, body, _ := get(t, clients[auditor], e.srv.URL+"/console/cases/"+id)
	if strings.Contains(body, `id="claim"`) || strings.Contains(body, `id="decide-form"`) {
		t.Error("auditor is offered casework buttons")
	}
	if code, _, _ := post(t, clients[auditor], e.srv.URL+"/console/cases/"+id+"/claim", url.Values{"csrf": {csrfOf(t, body)}}); code != http.StatusForbidden {
		t.Errorf("auditor claim: %d", code)
	}
	// A practitioner gets no retry button nor activation; posting them is refused.
	_, body, _ = get(t, clients[practitioner], e.srv.URL+"/console/notifications?view=failed")
	if strings.Contains(body, "Retry delivery") {
		t.Error("practitioner is offered retry")
	}
	if code, _, _ := post(t, clients[practitioner], e.srv.URL+"/console/notifications/n-failed/retry", url.Values{"csrf": {csrfOf(t, body)}, "reason": {"x"}}); code != http.StatusForbidden {
		t.Errorf("practitioner retry: %d", code)
	}
	if len(e.notify.retried) != 0 {
		t.Error("retry reached notify")
	}
	// The manager's retry and activation go through.
	_, body, _ = get(t, clients[manager], e.srv.URL+"/console/notifications?view=failed")
	if !strings.Contains(body, "Retry delivery") {
		t.Error("manager is not offered retry")
	}
	// A retry needs a reason; without one the failed list comes back with the error.
	code, page, _ := post(t, clients[manager], e.srv.URL+"/console/notifications/n-failed/retry", url.Values{"csrf": {csrfOf(t, body)}})
	if code != http.StatusBadRequest || !strings.Contains(page, `<caption>`+messages["en"]["notifications.view_failed"]+`</caption>`) || len(e.notify.retried) != 0 {
		t.Errorf("retry without a reason: %d, retried %v", code, e.notify.retried)
	}
	if code, _, h := post(t, clients[manager], e.srv.URL+"/console/notifications/n-failed/retry", url.Values{"csrf": {csrfOf(t, body)}, "reason": {"endpoint fixed"}}); code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=retried") {
		t.Errorf("manager retry: %d", code)
	}
	if code, _, _ := post(t, clients[manager], e.srv.URL+"/console/packs/p2/activate", url.Values{"csrf": {csrfOf(t, body)}, "reason": {"agreed by the partnership board"}}); code != http.StatusSeeOther || len(e.rules.activated) != 1 {
		t.Errorf("manager activate: %d", code)
	}
}

// TestScreensRender renders every screen with fixture data in both languages and checks
// the accessibility basics each must have.
func TestScreensRender(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "manager1")
	id := "0192a3b4-0000-7000-8000-000000000001"
	screens := map[string][]string{
		"/console/queue":                                     {"Triage queue", "Ffion Test", "Overdue", `<th scope="col">`, "Awaiting decision"},
		"/console/queue?rag=RAG_RED&overdue=on":              {"Ffion Test"},
		"/console/cases/" + id:                               {"High-risk domestic abuse", "DASH grade high", "What each agency was told", "No agency for the role Child and adolescent mental health services", "Is the child known to health visiting?", "Section 47 enquiry agreed", "We think level 3a is too low", `id="decide-form"`, "Claim this case"},
		"/console/notifications?view=failed":                 {"HTTP 503", "Retry delivery", "MASH-2026-000001"},
		"/console/packs":                                     {"2026.11.2", "Active", "Compare two versions", "Check the impact of a pack"},
		"/console/packs/p2":                                  {"dash-medium", "Make this pack active"},
		"/console/packs/diff?a=p1&b=p2":                      {"Removed", "Added", "rag: AMBER"},
		"/console/dashboard":                                 {"Management information", "<svg", "93.5%", "south-wales-police", "Download as CSV", `id="kpi-lead-named">37 (42.5%)<`},
		"/console/disagreements":                             {"Professional disagreements", "We think level 3a is too low", "Health visiting should have been told", `id="disagreements-table"`},
		"/console/disagreements?open=on&partnership=cardiff": {"south-wales-police"},
		"/console/directory":                                 {"Changes waiting for approval", "https://new-csc.example/hook", "203.0.113.5 via 127.0.0.1", "Set (never shown)", "Approve change"},
		"/console/sign-in":                                   {},
		"/console/nowhere":                                   {"Page not found"},
	}
	for _, lang := range []string{"en", "cy"} {
		setLang(t, e, c, lang)
		for path, wants := range screens {
			code, body, _ := get(t, c, e.srv.URL+path)
			if path == "/console/sign-in" {
				if code != http.StatusSeeOther {
					t.Errorf("sign-in page when signed in: %d", code)
				}
				continue
			}
			if code != http.StatusOK && path != "/console/nowhere" {
				t.Errorf("%s (%s): %d", path, lang, code)
				continue
			}
			checkPage(t, path, lang, body)
			if lang == "en" {
				for _, w := range wants {
					if !strings.Contains(body, w) {
						t.Errorf("%s: missing %q", path, w)
					}
				}
			}
		}
	}
	// A level's outcomes chart is titled with the level's name, in the page's language, as
	// its heading and as its table's caption.
	for _, lang := range []string{"en", "cy"} {
		setLang(t, e, c, lang)
		_, body, _ := get(t, c, e.srv.URL+"/console/dashboard")
		title := html.EscapeString(fmt.Sprintf(messages[lang]["dashboard.outcomes_for"], messages[lang]["level.LEVEL_4"]))
		if !strings.Contains(body, `<h2 id="chart-outcomes-level_4">`+title+`</h2>`) || !strings.Contains(body, `<caption class="visually-hidden">`+title+`</caption>`) {
			t.Errorf("dashboard (%s): the level 4 outcomes chart is not titled %q", lang, title)
		}
	}
	setLang(t, e, c, "cy")
	// Welsh strings reach the page.
	_, body, _ := get(t, c, e.srv.URL+"/console/queue")
	for _, w := range []string{"Ciw", "Allgofnodi", "Neidio i'r prif gynnwys", "Coch"} {
		if !strings.Contains(body, w) && !strings.Contains(body, strings.ReplaceAll(w, "'", "&#39;")) {
			t.Errorf("Welsh queue lacks %q", w)
		}
	}
	// The trail is an auditor's screen.
	a := e.signIn(t, "auditor1")
	for _, lang := range []string{"en", "cy"} {
		setLang(t, e, a, lang)
		code, body, _ := get(t, a, e.srv.URL+"/console/audit?referral="+id)
		if code != http.StatusOK || !strings.Contains(body, "mash.triage.overridden") || !strings.Contains(body, "read: GetCase") {
			t.Errorf("audit screen (%s): %d", lang, code)
		}
		// The reason a reader gave, and an entry that does not match its leaf shown as an
		// integrity error rather than with its values.
		for _, w := range []string{"Strategy meeting prep", "entry 9: stored decision differ", `class="integrity-error"`} {
			if !strings.Contains(body, w) {
				t.Errorf("audit screen (%s) lacks %q", lang, w)
			}
		}
	}
}

var (
	inputWithID = regexp.MustCompile(`<(?:input|select|textarea)[^>]*\bid="([^"]+)"`)
	inputType   = regexp.MustCompile(`type="hidden"`)
)

// checkPage checks the basics every page needs: lang, one h1, a skip link to main, a label
// for every visible field, and no inline script or style.
func checkPage(t *testing.T, path, lang, body string) {
	t.Helper()
	if !strings.Contains(body, `<html lang="`+lang+`">`) {
		t.Errorf("%s: no lang=%s", path, lang)
	}
	if n := strings.Count(body, "<h1"); n != 1 {
		t.Errorf("%s: %d h1 elements", path, n)
	}
	if !strings.Contains(body, `href="#main" class="skip-link"`) || !strings.Contains(body, `<main id="main"`) {
		t.Errorf("%s: no skip link", path)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "<style") {
		t.Errorf("%s: inline script or style", path)
	}
	for _, m := range inputWithID.FindAllStringSubmatch(body, -1) {
		if inputType.MatchString(m[0]) {
			continue
		}
		if !strings.Contains(body, `for="`+m[1]+`"`) {
			t.Errorf("%s: field %s has no label", path, m[1])
		}
	}
}

func TestDecisionErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	id := amberCaseID
	_, body, _ := get(t, c, e.srv.URL+"/console/cases/"+id)
	csrf := csrfOf(t, body)

	// Override without a reason: caught before the call, shown by the field and in the summary.
	code, body, _ := post(t, c, e.srv.URL+"/console/cases/"+id+"/decide", url.Values{"csrf": {csrf}, "version": {"1"}, "action": {"override"}, "level": {"LEVEL_4"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `href="#f-reason"`) || !strings.Contains(body, `id="e-reason"`) || !strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("override without reason: %d", code)
	}
	if !strings.Contains(body, `<option value="LEVEL_4" selected>`) {
		t.Error("the form was not refilled")
	}
	// Deciding without the claim: the service's refusal is shown on the case page.
	code, body, _ = post(t, c, e.srv.URL+"/console/cases/"+id+"/decide", url.Values{"csrf": {csrf}, "version": {"1"}, "action": {"confirm"}})
	if code != http.StatusConflict || !strings.Contains(body, "claim the case before deciding it") {
		t.Fatalf("decide without claim: %d", code)
	}
	// Field violations from the API land by their fields.
	e.triage.decideErr = invalid("pathway", "unknown pathway; use one of the pack's")
	code, body, _ = post(t, c, e.srv.URL+"/console/cases/"+id+"/decide", url.Values{"csrf": {csrf}, "version": {"1"}, "action": {"override"}, "pathway": {"moon"}, "reason": {"x"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="e-pathway"`) || !strings.Contains(body, "unknown pathway") {
		t.Fatalf("API field violation: %d", code)
	}
	e.triage.decideErr = status.Error(codes.PermissionDenied, "no")
	if code, _, _ := post(t, c, e.srv.URL+"/console/cases/"+id+"/decide", url.Values{"csrf": {csrf}, "action": {"confirm"}}); code != http.StatusForbidden {
		t.Fatalf("PermissionDenied: %d", code)
	}
	e.triage.decideErr = nil
	if code, _, _ := get(t, c, e.srv.URL+"/console/cases/no-such-case"); code != http.StatusNotFound {
		t.Fatalf("unknown case: %d", code)
	}

	// Claim, then override: the case leaves the awaiting queue.
	if code, _, h := post(t, c, e.srv.URL+"/console/cases/"+id+"/claim", url.Values{"csrf": {csrf}, "version": {"1"}}); code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=claimed") {
		t.Fatalf("claim: %d", code)
	}
	_, body, _ = get(t, c, e.srv.URL+"/console/cases/"+id+"?done=claimed")
	if !strings.Contains(body, "You are working this case.") || !strings.Contains(body, "You have claimed the case.") {
		t.Fatal("claim not shown")
	}
	code, _, _ = post(t, c, e.srv.URL+"/console/cases/"+id+"/decide", url.Values{"csrf": {csrf}, "version": {"2"}, "action": {"override"}, "level": {"LEVEL_4"}, "reason": {"Disclosure to teacher today"}})
	if code != http.StatusSeeOther {
		t.Fatalf("override: %d", code)
	}
	_, body, _ = get(t, c, e.srv.URL+"/console/queue")
	if strings.Contains(body, "Dylan Test") {
		t.Fatal("the decided case is still in the awaiting queue")
	}
}

// An information request due on a date is due when the hub's working day ends that day
// (MASH_WORKDAY_END), London time.
func TestInformationRequestDueAtTheHubsDayEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	id := amberCaseID
	_, body, _ := get(t, c, e.srv.URL+"/console/cases/"+id)
	code, _, _ := post(t, c, e.srv.URL+"/console/cases/"+id+"/information-requests", url.Values{"csrf": {csrfOf(t, body)},
		"agency": {"cardiff-schools"}, "question": {"Attendance this term?"}, "due": {"2026-12-01"}})
	if code != http.StatusSeeOther {
		t.Fatalf("request information: %d", code)
	}
	e.triage.mu.Lock()
	req := e.triage.infoRequested
	e.triage.mu.Unlock()
	if got, want := req.GetDue().AsTime().UTC().Format(time.RFC3339), "2026-12-01T16:30:00Z"; got != want {
		t.Errorf("due %s, want %s (16:30 London)", got, want)
	}
}

// A retry or an activation the service refuses shows its page again with the service's
// reason: 409 when the record's state does not allow it, 400 when the request was invalid.
// Anything else is an error page.
func TestRefusedRetryAndActivationShowTheServicesReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "manager1")
	_, body, _ := get(t, c, e.srv.URL+"/console/notifications?view=failed")
	csrf := csrfOf(t, body)
	retry := func() (int, string) {
		code, page, _ := post(t, c, e.srv.URL+"/console/notifications/n-failed/retry", url.Values{"csrf": {csrf}, "reason": {"endpoint fixed"}})
		return code, page
	}
	activate := func() (int, string) {
		code, page, _ := post(t, c, e.srv.URL+"/console/packs/p2/activate", url.Values{"csrf": {csrf}, "reason": {"agreed by the board"}})
		return code, page
	}
	for _, tc := range []struct {
		name     string
		set      func(error)
		call     func() (int, string)
		err      error
		code     int
		headline string
	}{
		{"retry of a delivered notification", func(err error) { e.notify.retryErr = err }, retry,
			status.Error(codes.FailedPrecondition, "notification n-failed was delivered"), http.StatusConflict, messages["en"]["retry.refused"]},
		{"retry with a reason too long", func(err error) { e.notify.retryErr = err }, retry,
			status.Error(codes.InvalidArgument, "reason is too long"), http.StatusBadRequest, messages["en"]["retry.refused"]},
		{"activation of a retired pack", func(err error) { e.rules.activateErr = err }, activate,
			status.Error(codes.Aborted, "pack p2 was retired"), http.StatusConflict, messages["en"]["activate.refused"]},
		{"activation with rules down", func(err error) { e.rules.activateErr = err }, activate,
			status.Error(codes.Unavailable, "connection refused"), http.StatusServiceUnavailable, ""},
	} {
		tc.set(tc.err)
		code, page := tc.call()
		tc.set(nil)
		if code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.code)
		}
		if tc.headline != "" && (!strings.Contains(page, tc.headline) || !strings.Contains(page, status.Convert(tc.err).Message())) {
			t.Errorf("%s: the page does not say %q with the service's reason", tc.name, tc.headline)
		}
	}
	if len(e.notify.retried) != 0 || len(e.rules.activated) != 0 {
		t.Errorf("refused changes reached the fakes: retried %v, activated %v", e.notify.retried, e.rules.activated)
	}
}

func TestDashboardCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "manager1")
	code, body, h := get(t, c, e.srv.URL+"/console/dashboard.csv?from=2026-09-01&to=2026-11-26")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", code, h.Get("Content-Type"))
	}
	for _, w := range []string{"section,label,value", "summary,referrals,412", "by_source_agency,south-wales-police,250", "rag_distribution,RED,40", "'=cmd"} {
		if !strings.Contains(body, w) {
			t.Errorf("csv lacks %q", w)
		}
	}
	if code, _, _ := get(t, c, e.srv.URL+"/console/dashboard?from=2026-13-01"); code != http.StatusBadRequest {
		t.Errorf("bad date: %d", code)
	}
}

func TestQueueCountsJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	code, body, h := get(t, c, e.srv.URL+"/console/queue/counts.json")
	if code != http.StatusOK || h.Get("Content-Type") != "application/json" || !strings.Contains(body, `"state":"AWAITING_DECISION","count":3,"overdue":1`) {
		t.Fatalf("counts: %d %s", code, body)
	}
	if code, _, _ := get(t, e.client(t), e.srv.URL+"/console/queue/counts.json"); code != http.StatusUnauthorized {
		t.Fatalf("signed-out counts: %d", code)
	}
}

// mash users password: the new password works, the old one does not, and the account's
// sessions are ended (any process that has not cached them refuses them at once).
func TestResetLocalPasswordEndsSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "manager1")
	var token string
	for _, ck := range c.Jar.Cookies(mustURL(t, e.srv.URL)) {
		if ck.Name == SessionCookie {
			token = ck.Value
		}
	}
	const fresh = "a new passphrase for the manager"
	if err := ResetLocalPassword(context.Background(), e.pool, Config{Argon2: testArgon2}, "manager1", fresh, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewStore(e.pool).Authenticate(context.Background(), token); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("session after a password reset: %v", err)
	}
	signInWith := func(password string) int {
		c := e.client(t)
		_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
		code, _, _ := post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrfOf(t, body)}, "username": {"manager1"}, "password": {password}})
		return code
	}
	if code := signInWith(testPassword); code != http.StatusUnauthorized {
		t.Fatalf("old password after a reset: %d", code)
	}
	if code := signInWith(fresh); code != http.StatusSeeOther {
		t.Fatalf("new password: %d", code)
	}
	if err := ResetLocalPassword(context.Background(), e.pool, Config{Argon2: testArgon2}, "manager1", "short", nil); err == nil {
		t.Fatal("a too-short password was accepted")
	}
}

// A form field holding a NUL or another control character is refused with a 400 naming
// the field, before any service is called; line breaks in free text are text.
func TestFormTextWithAControlCharacterIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signIn(t, "practitioner1")
	id := amberCaseID
	_, body, _ := get(t, c, e.srv.URL+"/console/cases/"+id)
	csrf := csrfOf(t, body)
	before := len(e.triage.callers)
	for field, value := range map[string]string{"reason": "Seen\x00today", "pathway": "\x1b[2J"} {
		form := url.Values{"csrf": {csrf}, "version": {"1"}, "action": {"override"}, "level": {"LEVEL_4"}, "reason": {"Seen today"}}
		form.Set(field, value)
		code, body, _ := post(t, c, e.srv.URL+"/console/cases/"+id+"/decide", form)
		if code != http.StatusBadRequest || !strings.Contains(body, "Field: "+field+".") {
			t.Errorf("%s with a control character: %d; want 400 naming the field", field, code)
		}
	}
	if len(e.triage.callers) != before {
		t.Fatal("a form with a control character reached triage")
	}
	if code, _, _ := post(t, c, e.srv.URL+"/console/cases/"+id+"/claim", url.Values{"csrf": {csrf}, "version": {"1"}, "note": {"line one\r\nline two"}}); code != http.StatusSeeOther {
		t.Fatalf("a form with line breaks: %d", code)
	}
}
