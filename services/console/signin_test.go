package console

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/peers"
)

// requestAt is a request that reached a listener at local address addr, as net/http
// marks it.
func requestAt(addr string) *http.Request {
	a, _ := net.ResolveTCPAddr("tcp", addr)
	r := httptest.NewRequest(http.MethodGet, "/console/sign-in", nil)
	return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(a)))
}

// newSignInEnv is newEnv (its database and accounts) with a console built from cfg.
func newSignInEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	base := newEnv(t)
	cfg.InsecureCookies = true
	cfg.Key = []byte("0123456789abcdef0123456789abcdef")
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = testArgon2
	}
	svc, err := New(Deps{Pool: base.pool, Log: zap.NewNop(), Auth: base.auth, Peers: peers.NewBook("127.0.0.1:1", nil), Config: cfg,
		Backends: Backends{Triage: base.triage, Rules: base.rules, Notify: base.notify, Audit: fakeAudit{}, Intake: &fakeIntake{}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return &env{pool: base.pool, svc: svc, srv: srv, auth: base.auth, triage: base.triage, rules: base.rules, notify: base.notify}
}

// signInAttempts posts each password for username at once from one browser (one CSRF
// cookie, many connections) and returns the status of each, in order.
func signInAttempts(t *testing.T, e *env, usernames, passwords []string) []int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: len(passwords)},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(c.CloseIdleConnections)
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	csrf := csrfOf(t, body)
	codes := make([]int, len(passwords))
	var wg sync.WaitGroup
	for i := range passwords {
		wg.Go(func() {
			resp, err := c.PostForm(e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrf}, "username": {usernames[i]}, "password": {passwords[i]}})
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	return codes
}

// TestParallelSignInsStayWithinMemoryBound sends 200 sign-ins for unknown users at once.
// Each check costs an 8 MiB argon2id hash (the dummy hash that keeps unknown users as slow
// as known ones). Without a bound the hashes run side by side: with no pool this test
// measured 495 MiB of heap growth (200 × 8 MiB = 1.6 GiB at worst), and 349 MiB with 64
// slots. Through a pool of 2, at most 16 MiB of hash memory is live at once; the
// collector's default pacing lets garbage grow to the size of the live heap before it
// runs, and 200 connections' buffers and pages add a few MiB, so the measured growth was
// 64 to 72 MiB. The bound, 128 MiB, leaves room for a loaded machine's scheduling and is
// under a third of the smallest unbounded figure. Not parallel, so other tests'
// allocations do not count.
func TestParallelSignInsStayWithinMemoryBound(t *testing.T) {
	const n = 200
	hashMem := Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	e := newSignInEnv(t, Config{Argon2: hashMem,
		Hashing:  HashingConfig{Concurrency: 2, Queue: 16, MaxWait: 30 * time.Second},
		Throttle: ThrottleConfig{PerUser: 5, PerIP: 10000, Window: time.Hour}})
	usernames, passwords := make([]string, n), make([]string, n)
	for i := range n {
		usernames[i], passwords[i] = fmt.Sprintf("nobody%03d", i), "not anybody's password"
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var top uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			top = max(top, m.HeapInuse)
			select {
			case <-done:
				peak <- top
				return
			case <-tick.C:
			}
		}
	}()
	codes := signInAttempts(t, e, usernames, passwords)
	close(done)
	top := <-peak

	counts := map[int]int{}
	for _, c := range codes {
		counts[c]++
	}
	if counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != n {
		t.Errorf("answers %v: want only 401 and 429", counts)
	}
	if counts[http.StatusUnauthorized] == 0 {
		t.Errorf("answers %v: no sign-in was checked at all", counts)
	}
	const bound = 128 << 20
	growth := int64(top) - int64(base.HeapInuse)
	t.Logf("%d parallel sign-ins: answers %v, heap in use %d MiB before, peak %d MiB (growth %d MiB, bound %d MiB)",
		n, counts, base.HeapInuse>>20, top>>20, growth>>20, bound>>20)
	if growth > bound {
		t.Fatalf("heap grew by %d MiB during %d parallel sign-ins; bound %d MiB", growth>>20, n, bound>>20)
	}
}

// Thirty-nine wrong passwords and the right one, sent while the first attempts are still
// being checked, sign nobody in: each attempt is counted before its password is hashed, so
// the limit is reached by the first five and the rest, the right one included, are refused.
// The test holds the hashing slots, as slow hashes would, so the order is certain.
func TestConcurrentWrongPasswordsThenRightSignNobodyIn(t *testing.T) {
	t.Parallel()
	e := newSignInEnv(t, Config{Hashing: HashingConfig{Concurrency: 2, Queue: 64, MaxWait: 30 * time.Second},
		Throttle: ThrottleConfig{PerUser: 5, PerIP: 1000, Window: time.Hour}})
	for range cap(e.svc.hashes.slots) {
		e.svc.hashes.slots <- struct{}{}
	}
	held := true
	release := func() {
		if held {
			for range cap(e.svc.hashes.slots) {
				<-e.svc.hashes.slots
			}
			held = false
		}
	}
	t.Cleanup(release)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	csrf := csrfOf(t, body)
	answers := make(chan int, 39)
	for i := range 39 {
		go func() {
			resp, err := c.PostForm(e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrf}, "username": {"manager1"}, "password": {fmt.Sprintf("wrong guess %02d here", i)}})
			if err != nil {
				t.Error(err)
				answers <- 0
				return
			}
			resp.Body.Close()
			answers <- resp.StatusCode
		}()
	}
	// Thirty-four are refused without waiting for a hash; five are waiting for one.
	counts := map[int]int{}
	for range 34 {
		counts[<-answers]++
	}
	if counts[http.StatusTooManyRequests] != 34 {
		t.Fatalf("first 34 answers %v: want all 429", counts)
	}
	code, page, h := post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrf}, "username": {"manager1"}, "password": {testPassword}})
	if code != http.StatusTooManyRequests || !strings.Contains(page, "Too many failed sign-ins") || h.Get("Retry-After") == "" {
		t.Fatalf("the right password sent with 39 wrong ones: %d, Retry-After %q", code, h.Get("Retry-After"))
	}
	for _, ck := range c.Jar.Cookies(mustURL(t, e.srv.URL)) {
		if ck.Name == SessionCookie {
			t.Fatal("a session cookie was set")
		}
	}
	release()
	for range 5 {
		counts[<-answers]++
	}
	if counts[http.StatusUnauthorized] != 5 || counts[http.StatusTooManyRequests] != 34 {
		t.Fatalf("answers %v: want 5 checked and refused (401), 34 throttled (429)", counts)
	}
	n, err := e.svc.store.Attempts(context.Background(), "user:manager1", time.Hour, time.Now())
	if err != nil || n != 5 {
		t.Fatalf("attempts counted for manager1: %d, %v; want 5", n, err)
	}
}

// Forty wrong passwords at once, nothing held: exactly the limit's worth are checked.
func TestAttemptsAtOnceAreCountedBeforeHashing(t *testing.T) {
	t.Parallel()
	e := newSignInEnv(t, Config{Hashing: HashingConfig{Concurrency: 2, Queue: 64, MaxWait: 30 * time.Second},
		Throttle: ThrottleConfig{PerUser: 5, PerIP: 1000, Window: time.Hour}})
	usernames, passwords := make([]string, 40), make([]string, 40)
	for i := range 40 {
		usernames[i], passwords[i] = "practitioner1", fmt.Sprintf("wrong guess %02d here", i)
	}
	counts := map[int]int{}
	for _, c := range signInAttempts(t, e, usernames, passwords) {
		counts[c]++
	}
	if counts[http.StatusUnauthorized] != 5 || counts[http.StatusTooManyRequests] != 35 {
		t.Fatalf("answers %v: want 5 checked (401), 35 throttled (429)", counts)
	}
}

// When every hashing slot is taken and the queue is full, or a queued sign-in waits too
// long, the answer is 429 with Retry-After and a page that says so, and the attempt is not
// held against the account.
func TestHashingAtCapacityAnswers429(t *testing.T) {
	t.Parallel()
	e := newSignInEnv(t, Config{Hashing: HashingConfig{Concurrency: 1, Queue: 1, MaxWait: 10 * time.Millisecond},
		Throttle: ThrottleConfig{PerUser: 5, PerIP: 1000, Window: time.Hour}})
	p := e.svc.hashes
	p.slots <- struct{}{} // a hash running
	c := e.client(t)
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	csrf := csrfOf(t, body)
	try := func() (int, string, http.Header) {
		return post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrf}, "username": {"manager1"}, "password": {testPassword}})
	}
	// The queue has room, but the slot stays taken past the wait.
	code, page, h := try()
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || !strings.Contains(page, "The console is busy signing other people in") {
		t.Fatalf("waited past the limit: %d, Retry-After %q", code, h.Get("Retry-After"))
	}
	// The queue is full: refused without waiting.
	p.queue <- struct{}{}
	if code, _, h := try(); code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("queue full: %d, Retry-After %q", code, h.Get("Retry-After"))
	}
	for _, k := range []string{"user:manager1", "ip:127.0.0.1"} {
		if n, err := e.svc.store.Attempts(context.Background(), k, time.Hour, time.Now()); err != nil || n != 0 {
			t.Fatalf("attempts held against %s after refusals for capacity: %d, %v", k, n, err)
		}
	}
	<-p.queue
	<-p.slots
	if code, _, _ := try(); code != http.StatusSeeOther {
		t.Fatalf("sign-in with capacity free: %d", code)
	}
}

// A username longer than any account may have is refused like a wrong password, not with
// an error from the throttle's index.
func TestOverlongUsernameRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	_, body, _ := get(t, c, e.srv.URL+"/console/sign-in")
	var long strings.Builder
	for long.Len() < 10000 {
		long.WriteString(rand.Text()) // random, so Postgres cannot compress it to fit
	}
	if code, _, _ := post(t, c, e.srv.URL+"/console/sign-in", url.Values{"csrf": {csrfOf(t, body)}, "username": {long.String()},
		"password": {"not the password"}}); code != http.StatusUnauthorized {
		t.Fatalf("a %d-character username: %d, want 401", long.Len(), code)
	}
}

func TestHashPoolSettingsValidated(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]string{
		EnvHashConcurrency: "0", EnvHashQueue: "-1", EnvHashWait: "forever", EnvSignInUserLimit: "many", EnvSignInAddrLimit: "0", EnvSignInWindow: "-5m",
	} {
		lookup := func(k string) (string, bool) {
			if k == env {
				return want, true
			}
			return "", false
		}
		if _, err := ConfigFromEnv(lookup); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: %v; want an error naming the setting", env, want, err)
		}
	}
	for env, v := range map[string]string{EnvHashConcurrency: "65", EnvHashQueue: "100000", EnvHashWait: "5m"} {
		lookup := func(k string) (string, bool) {
			if k == env {
				return v, true
			}
			return "", false
		}
		if _, err := ConfigFromEnv(lookup); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: %v; want an out-of-range error naming the setting", env, v, err)
		}
	}
	good := map[string]string{EnvHashConcurrency: "4", EnvHashQueue: "8", EnvHashWait: "1s", EnvSignInUserLimit: "3", EnvSignInAddrLimit: "20", EnvSignInWindow: "5m"}
	c, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := good[k]; return v, ok })
	if err != nil || c.Hashing != (HashingConfig{Concurrency: 4, Queue: 8, MaxWait: time.Second}) ||
		c.Throttle != (ThrottleConfig{PerUser: 3, PerIP: 20, Window: 5 * time.Minute}) {
		t.Fatalf("config %+v %+v, %v", c.Hashing, c.Throttle, err)
	}
	if _, err := newService(Deps{Config: Config{Hashing: HashingConfig{Concurrency: 1000}}}, nil); err == nil || !strings.Contains(err.Error(), EnvHashConcurrency) {
		t.Fatalf("New with 1000 concurrent hashes: %v", err)
	}
}

func TestPasswordPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		username, password string
		want               error // nil: accepted
	}{
		{"a.jones", "correct horse battery staple", nil},
		{"a.jones", "tangerine wheelbarrow lantern", nil},
		{"a.jones", "Vq7#mR2pLx9w", nil},
		{"a.jones", "password1234", ErrPasswordCommon},
		{"a.jones", "Password1234!", ErrPasswordCommon},
		{"a.jones", "P@ssw0rd2024!", ErrPasswordCommon},
		{"a.jones", "Liverpool1892", ErrPasswordCommon},
		{"a.jones", "liverpoolliverpool", ErrPasswordCommon},
		{"a.jones", "I love you iloveyou", ErrPasswordCommon},
		{"a.jones", "Summer2024!!!", ErrPasswordCommon},
		{"a.jones", "$unshine1999", ErrPasswordCommon},
		{"a.jones", "Safeguarding1!", ErrPasswordCommon},
		{"a.jones", "qwertyuiop[]", ErrPasswordCommon},
		{"a.jones", "123456789012", ErrPasswordCommon},
		{"a.jones", "iloveyoubaby", ErrPasswordCommon},
		{"a.jones", "aaaaaaaaaaaaaa", ErrPasswordPattern},
		{"a.jones", "abababababab", ErrPasswordPattern},
		{"a.jones", "1qaz2wsx3edc4rfv", ErrPasswordCommon},
		{"a.jones", "zyxwvutsrqpo", ErrPasswordPattern},
		{"a.jones", "a.jones is my password", ErrPasswordHasUsername},
		{"a.jones", "mrs jones likes plums", ErrPasswordHasUsername},
		{"mgr.evans", "snave.rgm backwards", ErrPasswordHasUsername},
	} {
		err := CheckNewPassword(tc.username, tc.password)
		if err != tc.want {
			t.Errorf("CheckNewPassword(%q, %q) = %v, want %v", tc.username, tc.password, err, tc.want)
		}
	}
	if err := CheckNewPassword("a.jones", "short"); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("short password: %v", err)
	}
	if len(commonPasswords) < 2000 {
		t.Errorf("deny list has %d entries, want a few thousand", len(commonPasswords))
	}

	// Every way of setting a password applies it, with the policy's message.
	e := newEnv(t)
	err := e.svc.CreateAccount(context.Background(), "d.price", "Dai Price", practitioner, "Password1234!")
	if err == nil || !strings.Contains(err.Error(), "widely used password") {
		t.Fatalf("create with a common password: %v", err)
	}
	err = CreateLocalAccount(context.Background(), e.pool, Config{Argon2: testArgon2}, "d.price", "Dai Price", practitioner, "d.price rules 2024")
	if err == nil || !strings.Contains(err.Error(), "must not contain the username") {
		t.Fatalf("mash users create with the username in the password: %v", err)
	}
	err = ResetLocalPassword(context.Background(), e.pool, Config{Argon2: testArgon2}, "manager1", "qwerty123456", nil)
	if err == nil || !strings.Contains(err.Error(), "widely used password") {
		t.Fatalf("mash users password with a common password: %v", err)
	}
}

// Cookies are Secure whenever the console is reached off loopback, even when it is set up
// for insecure cookies; and that setup is refused at start unless it listens on loopback.
func TestInsecureCookiesOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{InsecureCookies: true}}
	for addr, secure := range map[string]bool{"127.0.0.1:8080": false, "[::1]:8080": false, "10.1.2.3:8080": true, "[2001:db8::1]:443": true} {
		if ck := s.cookie(requestAt(addr), SessionCookie, "x", time.Hour); ck.Secure != secure {
			t.Errorf("insecure cookies, request to %s: Secure=%v, want %v", addr, ck.Secure, secure)
		}
	}
	tlsReq := requestAt("127.0.0.1:8443")
	tlsReq.TLS = &tls.ConnectionState{}
	if !s.cookie(tlsReq, SessionCookie, "x", time.Hour).Secure {
		t.Error("a cookie set over TLS is not Secure")
	}
	if !(&Service{}).cookie(requestAt("127.0.0.1:8080"), SessionCookie, "x", time.Hour).Secure {
		t.Error("a cookie is not Secure by default")
	}

	// A handler served off loopback hands out only Secure cookies, here the sign-in
	// form's.
	e := newSignInEnv(t, Config{})
	w := httptest.NewRecorder()
	e.svc.Handler().ServeHTTP(w, requestAt("192.0.2.10:8080"))
	cks := w.Result().Cookies()
	if len(cks) == 0 {
		t.Fatal("the sign-in page set no cookie")
	}
	for _, ck := range cks {
		if !ck.Secure {
			t.Errorf("cookie %s served off loopback is not Secure", ck.Name)
		}
	}

	for addr, ok := range map[string]bool{"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.5:8080": false, "console.example:8080": false} {
		err := Config{InsecureCookies: true}.CheckServedAt(addr)
		if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), EnvInsecureCookies)) {
			t.Errorf("insecure cookies at %s: %v", addr, err)
		}
		if err := (Config{}).CheckServedAt(addr); err != nil {
			t.Errorf("secure cookies at %s refused: %v", addr, err)
		}
	}
}

// Only the role map grants a role: a group named admin grants nothing, and single sign-on
// without a map is refused at start.
func TestOIDCGroupNamedAdminGrantsNothing(t *testing.T) {
	t.Parallel()
	cfg := OIDCConfig{RoleClaim: "groups", RoleMap: map[string]auth.Role{"mash-managers": auth.RoleManager}}
	for _, groups := range [][]any{{"admin"}, {"manager", "practitioner", "auditor"}, {"Admin", "administrators"}} {
		if p, err := personFromClaims(cfg, map[string]any{"groups": groups}, "s", "mash-hub"); err == nil {
			t.Errorf("groups %v granted %s", groups, p.role)
		}
	}
	if p, err := personFromClaims(cfg, map[string]any{"groups": []any{"admin", "mash-managers"}}, "s", "mash-hub"); err != nil || p.role != auth.RoleManager {
		t.Errorf("groups admin and mash-managers: %+v %v; want manager, from the map alone", p, err)
	}
	mapped := OIDCConfig{RoleClaim: "groups", RoleMap: map[string]auth.Role{"hub-admins": auth.RoleAdmin}}
	if p, err := personFromClaims(mapped, map[string]any{"groups": "hub-admins"}, "s", "mash-hub"); err != nil || p.role != auth.RoleAdmin {
		t.Errorf("a mapped admin group: %+v %v", p, err)
	}

	env := map[string]string{EnvOIDCIssuer: "https://idp.example", EnvOIDCClientID: "c", EnvOIDCSecret: "s", EnvOIDCRedirect: "https://hub.example/console/oidc/callback"}
	if _, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil || !strings.Contains(err.Error(), EnvOIDCRoleMap) {
		t.Fatalf("single sign-on without a role map: %v", err)
	}

	// Through the whole flow: the provider says the person is in a group called admin.
	idp := newIdentityProvider(t)
	e := newOIDCEnv(t, idp)
	idp.claims = map[string]any{"sub": "staff-1", "name": "Eve Admin", "groups": []string{"admin"}}
	if _, landed := signInThrough(t, e); !strings.HasPrefix(landed, "/console/sign-in?error=sso") {
		t.Fatalf("a person in a group named admin landed on %s, want refusal", landed)
	}
}

// Counts whose window has passed are pruned, so made-up usernames do not pile up.
func TestPruneAttemptsPastTheirWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st, ctx, now := e.svc.store, context.Background(), time.Now()
	for key, at := range map[string]time.Time{"user:old-guess": now.Add(-2 * time.Hour), "user:recent-guess": now.Add(-time.Minute)} {
		if ok, _, err := st.ReserveAttempt(ctx, []string{key}, []int{5}, time.Hour, at); !ok || err != nil {
			t.Fatalf("reserve %s: %v %v", key, ok, err)
		}
	}
	n, err := st.PruneAttempts(ctx, time.Hour, now)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want the one past its window", n, err)
	}
	if got, _ := st.Attempts(ctx, "user:recent-guess", time.Hour, now); got != 1 {
		t.Fatalf("the recent count was pruned: %d left", got)
	}
}
