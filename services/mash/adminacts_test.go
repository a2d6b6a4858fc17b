package main_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/audit"
	auditstore "github.com/mash-hub/mash/services/audit/store"
)

// trailEntry is an audit entry as GET /v1/audit/entries returns it.
type trailEntry struct {
	EventID, Actor, ActorRole, Decision, IntegrityError string
}

// waitForEntry polls the audit API until an entry of eventType has a decision containing
// want, and returns it.
func waitForEntry(t *testing.T, s *system, auditor, eventType, want string) trailEntry {
	t.Helper()
	var found trailEntry
	var status int
	var body []byte
	if !poll(30*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.httpAddr+"/v1/audit/entries?eventType="+url.QueryEscape(eventType), nil)
		req.Header.Set("Authorization", "Bearer "+auditor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		var page struct{ Entries []trailEntry }
		if status == http.StatusOK && json.Unmarshal(body, &page) == nil {
			for _, e := range page.Entries {
				if strings.Contains(e.Decision, want) {
					found = e
					return true
				}
			}
		}
		return false
	}) {
		t.Fatalf("no %s entry with %q on the trail: %d %s", eventType, want, status, body)
	}
	return found
}

// Creating and revoking API clients and creating, resetting and disabling console users
// with the mash command are administrative acts: each reaches the audit trail (through the
// auth schema's outbox, relayed by mash serve) naming the operator, the act and its target.
func TestCredentialAndUserActsAreOnTheTrail(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "auditor", "--partnerships", "*")
	if code != 0 {
		t.Fatalf("clients create: %s", errOut)
	}
	auditor := strings.TrimSpace(out)
	auditorID := strings.Split(auditor, "_")[1]
	s.start(t)
	cli := func(t *testing.T, args ...string) string {
		t.Helper()
		out, errOut, code := s.run(t, args...)
		if code != 0 {
			t.Fatalf("mash %s: %s", strings.Join(args, " "), errOut)
		}
		return out
	}
	check := func(t *testing.T, e trailEntry) {
		t.Helper()
		if !strings.HasPrefix(e.Actor, "cli") || e.ActorRole != "operator" || e.IntegrityError != "" {
			t.Fatalf("entry %+v: want the operator as actor", e)
		}
	}
	t.Run("client create", func(t *testing.T) {
		check(t, waitForEntry(t, s, auditor, "mash.admin.client", "client.create "+auditorID+": succeeded"))
	})
	t.Run("client revoke", func(t *testing.T) {
		tok := strings.TrimSpace(cli(t, "clients", "create", "--agency", "south-wales-police", "--kind", "police", "--role", "referrer"))
		id := strings.Split(tok, "_")[1]
		cli(t, "clients", "revoke", id)
		check(t, waitForEntry(t, s, auditor, "mash.admin.client", "client.revoke "+id+": succeeded"))
	})
	t.Run("user create", func(t *testing.T) {
		cli(t, "users", "create", "--username", "a.jones", "--name", "A Jones", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf")
		check(t, waitForEntry(t, s, auditor, "mash.admin.user", "user.create a.jones: succeeded"))
	})
	t.Run("user password reset", func(t *testing.T) {
		cli(t, "users", "password", "a.jones")
		check(t, waitForEntry(t, s, auditor, "mash.admin.user", "user.password a.jones: succeeded"))
	})
	t.Run("user role change", func(t *testing.T) {
		cli(t, "users", "role", "a.jones", "--role", "manager", "--partnerships", "rhondda-cynon-taf,merthyr-tydfil")
		check(t, waitForEntry(t, s, auditor, "mash.admin.user", "user.role a.jones: succeeded"))
		// A partner's account cannot be given a hub role, and the refusal says why.
		if _, errOut, code := s.run(t, "users", "role", "a.jones", "--role", "partner"); code == 0 || !strings.Contains(errOut, "only hub staff change roles") {
			t.Fatalf("role partner: exit %d, %s", code, errOut)
		}
	})
	t.Run("user disable", func(t *testing.T) {
		cli(t, "users", "disable", "a.jones")
		check(t, waitForEntry(t, s, auditor, "mash.admin.user", "user.disable a.jones: succeeded"))
	})
}

// A user change made with the mash command commits in the transaction that writes its act:
// when the act cannot be written, the account is left as it was (nothing changes without
// its entry on the trail, which a kill between two commits would allow), and a refused
// change writes no act.
func TestUserChangeAndItsActCommitTogether(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	ctx := context.Background()
	pool := s.pool(t)
	if _, errOut, code := s.run(t, "users", "create", "--username", "a.jones", "--name", "A Jones", "--role", "practitioner",
		"--partnerships", "rhondda-cynon-taf"); code != 0 {
		t.Fatalf("users create: %s", errOut)
	}
	// A live session, which a password reset, role change or disabling would end.
	if _, _, err := auth.NewStore(pool).CreateSession(ctx, "a.jones", "A Jones", auth.RolePractitioner, "rct-mash", time.Hour, "rhondda-cynon-taf"); err != nil {
		t.Fatal(err)
	}
	acts := func(t *testing.T) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM auth.outbox WHERE subject = $1`, eventsv1.SubjectAdminUser).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// account is everything the commands change about a person: the account, the staff
	// directory's row and the live sessions.
	account := func(t *testing.T, username string) string {
		t.Helper()
		var row string
		if err := pool.QueryRow(ctx, `SELECT coalesce((SELECT (to_jsonb(a) - 'password_hash' || jsonb_build_object('password', md5(a.password_hash)))::text
			FROM console.accounts a WHERE username = $1), 'no account')
			|| ' ' || coalesce((SELECT row_to_json(s)::text FROM auth.staff s WHERE user_id = $1), 'no staff')
			|| ' live sessions ' || (SELECT count(*) FROM auth.sessions WHERE user_id = $1 AND ended_at IS NULL)`, username).Scan(&row); err != nil {
			t.Fatal(err)
		}
		return row
	}
	if n := acts(t); n != 1 {
		t.Fatalf("after users create: %d user acts in the outbox, want 1", n)
	}
	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"users", "disable", "nobody"}, "disable user nobody: no such account"},
			{[]string{"users", "password", "nobody"}, "reset password of nobody: no such account"},
			{[]string{"users", "role", "nobody", "--role", "manager", "--partnerships", "rhondda-cynon-taf"}, "change role of nobody: no such account"},
			{[]string{"users", "role", "a.jones", "--role", "partner"}, "only hub staff change roles"},
			{[]string{"users", "create", "--username", "a.jones", "--name", "A Jones", "--role", "manager", "--partnerships", "rhondda-cynon-taf"},
				"create user a.jones: an account with that username already exists"},
		} {
			before := account(t, "a.jones")
			if _, errOut, code := s.run(t, c.args...); code == 0 || !strings.Contains(errOut, c.want) {
				t.Fatalf("mash %s: exit %d, %q; want a failure saying %q", strings.Join(c.args, " "), code, errOut, c.want)
			}
			if after := account(t, "a.jones"); after != before {
				t.Fatalf("mash %s changed a.jones:\n%s\n%s", strings.Join(c.args, " "), before, after)
			}
		}
		if n := acts(t); n != 1 {
			t.Fatalf("refused changes wrote acts: %d user acts in the outbox, want 1", n)
		}
	})
	t.Run("act not written", func(t *testing.T) {
		// The trail refuses the console's user acts from here on.
		if _, err := pool.Exec(ctx, `CREATE FUNCTION auth.refuse_user_acts() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.subject = 'mash.admin.user' THEN RAISE EXCEPTION 'user acts refused for the test'; END IF;
				RETURN NEW;
			END $$;
			CREATE TRIGGER refuse_user_acts BEFORE INSERT ON auth.outbox FOR EACH ROW EXECUTE FUNCTION auth.refuse_user_acts()`); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			username string
			args     []string
		}{
			{"b.evans", []string{"users", "create", "--username", "b.evans", "--name", "B Evans", "--role", "manager", "--partnerships", "rhondda-cynon-taf"}},
			{"a.jones", []string{"users", "password", "a.jones"}},
			{"a.jones", []string{"users", "role", "a.jones", "--role", "manager", "--partnerships", "rhondda-cynon-taf,merthyr-tydfil"}},
			{"a.jones", []string{"users", "disable", "a.jones"}},
		} {
			before := account(t, c.username)
			_, errOut, code := s.run(t, c.args...)
			if code == 0 || !strings.Contains(errOut, "not made, as it could not be put on the audit trail") || !strings.Contains(errOut, "user acts refused for the test") {
				t.Fatalf("mash %s: exit %d, %q; want a failure to record the act", strings.Join(c.args, " "), code, errOut)
			}
			if after := account(t, c.username); after != before {
				t.Fatalf("mash %s changed %s without its act:\n%s\n%s", strings.Join(c.args, " "), c.username, before, after)
			}
		}
		if n := acts(t); n != 1 {
			t.Fatalf("%d user acts in the outbox, want 1", n)
		}
	})
}

// A console sign-in and a failed one reach the audit trail through the running hub: the
// entry says who (the person, or anonymous for a failure) and the outcome, and where the
// attempt came from, with the name a failure tried, rests only in the entry's sealed
// payload, never in its clear columns.
func TestConsoleSignInsAreOnTheTrail(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "auditor", "--partnerships", "*")
	if code != 0 {
		t.Fatalf("clients create: %s", errOut)
	}
	auditor := strings.TrimSpace(out)
	out, errOut, code = s.run(t, "users", "create", "--username", "c.morgan", "--name", "C Morgan", "--role", "practitioner", "--partnerships", "rhondda-cynon-taf")
	if code != 0 {
		t.Fatalf("users create: %s", errOut)
	}
	password := strings.TrimSpace(out)
	s.start(t, "MASH_CONSOLE_INSECURE_COOKIES=true")

	// The browser connects from an address of its own, to find it on the trail.
	const from = "127.0.0.77"
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}}
	signIn := func(t *testing.T, pw string) int {
		t.Helper()
		resp, err := browser.Get("http://" + s.httpAddr + "/console/sign-in")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("no form token on the sign-in page: %d %s", resp.StatusCode, page)
		}
		resp, err = browser.PostForm("http://"+s.httpAddr+"/console/sign-in", url.Values{"csrf": {string(m[1])}, "username": {"c.morgan"}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := signIn(t, "not the password at all"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if code := signIn(t, password); code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", code)
	}

	ctx := context.Background()
	pool := s.pool(t)
	// sealed checks that the entry's clear columns hold neither the address nor the name,
	// and returns the act its sealed payload holds.
	sealed := func(t *testing.T, e trailEntry) *eventsv1.AdminActRecorded {
		t.Helper()
		var clear string
		if err := pool.QueryRow(ctx, `SELECT row_to_json(e)::text FROM audit.entries e WHERE event_id = $1`, e.EventID).Scan(&clear); err != nil {
			t.Fatalf("entry %s: %v", e.EventID, err)
		}
		if strings.Contains(clear, from) || (strings.Contains(clear, "c.morgan") && e.Actor != "user:c.morgan") {
			t.Fatalf("the entry's clear columns name the address or the name tried: %s", clear)
		}
		return openAdminAct(t, pool, e.EventID, from)
	}
	t.Run("failed", func(t *testing.T) {
		e := waitForEntry(t, s, auditor, "mash.admin.signin", "signin.failed console (password): refused")
		if e.Actor != "anonymous" || e.IntegrityError != "" {
			t.Fatalf("entry %+v: want anonymous, proven", e)
		}
		act := sealed(t, e)
		if act.GetClientAddress() != from || !strings.Contains(act.GetDetail(), "bad_credentials") || !strings.Contains(act.GetDetail(), "username tried: c.morgan") {
			t.Fatalf("sealed act %v: want the address, the outcome and the name tried", act)
		}
	})
	t.Run("succeeded", func(t *testing.T) {
		e := waitForEntry(t, s, auditor, "mash.admin.signin", "signin.succeeded console (password): succeeded")
		if e.Actor != "user:c.morgan" || e.IntegrityError != "" {
			t.Fatalf("entry %+v: want user:c.morgan, proven", e)
		}
		if act := sealed(t, e); act.GetClientAddress() != from || act.GetActor() != "user:c.morgan" {
			t.Fatalf("sealed act %v: want the person and the address", act)
		}
	})
}

// openAdminAct opens the sealed payload of an audit entry with the test run's master key
// (the case key wrapped with it, the referral id as additional data; the payload sealed
// with the case key, the event id as additional data) and returns the act in it, after
// checking the stored ciphertext does not hold clear in clear.
func openAdminAct(t *testing.T, pool *pgxpool.Pool, eventID, clear string) *eventsv1.AdminActRecorded {
	t.Helper()
	p, err := auditstore.ReadPayload(context.Background(), pool, eventID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Ciphertext, []byte(clear)) {
		t.Fatalf("payload of %s holds %q in clear", eventID, clear)
	}
	var master []byte
	for _, kv := range auditEnv {
		if v, ok := strings.CutPrefix(kv, audit.EnvMasterKey+"="); ok {
			if master, err = base64.StdEncoding.DecodeString(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	aead := func(key []byte) cipher.AEAD {
		b, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		g, err := cipher.NewGCM(b)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := aead(master)
	key, err := g.Open(nil, p.Wrapped[:g.NonceSize()], p.Wrapped[g.NonceSize():], []byte(p.ReferralID))
	if err != nil {
		t.Fatalf("unwrap the case key of %s: %v", eventID, err)
	}
	plain, err := aead(key).Open(nil, p.Nonce, p.Ciphertext, []byte(eventID))
	if err != nil {
		t.Fatalf("open the payload of %s: %v", eventID, err)
	}
	var a anypb.Any
	act := &eventsv1.AdminActRecorded{}
	if err := proto.Unmarshal(plain, &a); err != nil || a.UnmarshalTo(act) != nil {
		t.Fatalf("payload of %s is not an admin act: %v", eventID, err)
	}
	return act
}
