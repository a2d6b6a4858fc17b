package auth

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
)

func newTestStore(t *testing.T) (*Store, *time.Time) {
	t.Helper()
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	pool := dbtest.NewPool(t, "auth_"+db.Checksum(migs), func(ctx context.Context, url string) error {
		p, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer p.Close()
		return Migrate(ctx, p)
	})
	st := NewStore(pool)
	now := time.Now().UTC().Truncate(time.Microsecond)
	st.now = func() time.Time { return now }
	return st, &now
}

func TestSessionAuthenticatesAsThePerson(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := newTestStore(t)
	sess, token, err := st.CreateSession(ctx, "alice", "Alice Jones", RolePractitioner, "cardiff-mash", time.Hour, "cardiff", "vale")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "mashs_"+sess.ID+"_") {
		t.Fatalf("token %q does not have the session form", token[:8])
	}
	id, err := st.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{ClientID: "user:alice", Agency: "cardiff-mash", Kind: StaffKind, Role: RolePractitioner, Name: "Alice Jones",
		Partnerships: []string{"cardiff", "vale"}}
	if !reflect.DeepEqual(id, want) {
		t.Fatalf("identity %+v, want %+v", id, want)
	}
	if !id.IsPerson() {
		t.Fatal("a session identity is a person")
	}
	// Cached path gives the same answer.
	if id2, err := st.Authenticate(ctx, token); err != nil || !reflect.DeepEqual(id2, want) {
		t.Fatalf("second authenticate: %+v %v", id2, err)
	}
}

func TestSessionRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := newTestStore(t)
	_, token, err := st.CreateSession(ctx, "bob", "Bob", RoleManager, "cardiff-mash", time.Hour, "*")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := SessionID(token)
	tampered := "mashs_" + id + "_" + strings.Repeat("A", 43)
	for name, tok := range map[string]string{
		"wrong secret":             tampered,
		"session id as client":     "mash_" + strings.TrimPrefix(token, "mashs_"),
		"truncated":                token[:20],
		"empty":                    "",
		"prefix only":              "mashs_",
		"unknown id, valid format": "mashs_0123456789abcdef_" + strings.Repeat("B", 43),
	} {
		if _, err := st.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: got %v, want ErrUnauthenticated", name, err)
		}
	}

	// Expiry: the session stops being accepted once its time is up, even if cached.
	if _, err := st.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Hour + time.Second)
	if _, err := st.Authenticate(ctx, token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired session: got %v", err)
	}
	if err := st.EndSession(ctx, token); !errors.Is(err, ErrNoSuchSession) {
		t.Fatalf("ending an expired session: got %v", err)
	}
}

func TestEndSessionTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := newTestStore(t)
	_, token, err := st.CreateSession(ctx, "carol", "Carol", RoleAuditor, "hub", time.Hour, "*")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := st.CreateSession(ctx, "carol", "Carol", RoleAuditor, "hub", time.Hour, "*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, token); err != nil { // now cached
		t.Fatal(err)
	}
	if err := st.EndSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("ended session still accepted: %v", err)
	}
	if err := st.EndSession(ctx, token); !errors.Is(err, ErrNoSuchSession) {
		t.Fatalf("ending twice: %v", err)
	}
	if _, err := st.Authenticate(ctx, other); err != nil {
		t.Fatalf("the other session should live on: %v", err)
	}
	n, err := st.EndUserSessions(ctx, "carol")
	if err != nil || n != 1 {
		t.Fatalf("EndUserSessions = %d, %v; want 1", n, err)
	}
	if _, err := st.Authenticate(ctx, other); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("session of a signed-out user still accepted: %v", err)
	}
}

func TestCreateSessionValidates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := newTestStore(t)
	cases := []struct {
		name                  string
		user, display, agency string
		role                  Role
		ttl                   time.Duration
	}{
		{"referrer role", "dave", "Dave", "hub", RoleReferrer, time.Hour},
		{"unknown role", "dave", "Dave", "hub", "boss", time.Hour},
		{"bad user id", "da ve", "Dave", "hub", RoleAdmin, time.Hour},
		{"no display name", "dave", "", "hub", RoleAdmin, time.Hour},
		{"bad agency", "dave", "Dave", "Hub!", RoleAdmin, time.Hour},
		{"zero ttl", "dave", "Dave", "hub", RoleAdmin, 0},
		{"too long", "dave", "Dave", "hub", RoleAdmin, 48 * time.Hour},
	}
	for _, c := range cases {
		if _, _, err := st.CreateSession(ctx, c.user, c.display, c.role, c.agency, c.ttl, "*"); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if _, _, err := st.CreateSession(ctx, "dave", "Dave", RolePractitioner, "hub", time.Hour); err == nil || !strings.Contains(err.Error(), "partnership") {
		t.Errorf("a staff session serving no partnership: %v", err)
	}
}

func TestClientCredentialsStillWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := newTestStore(t)
	c, token, err := st.Create(ctx, "south-wales-police", "police", RoleReferrer, "test")
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Authenticate(ctx, token)
	if err != nil || id.ClientID != c.ClientID || id.IsPerson() {
		t.Fatalf("client credential: %+v %v", id, err)
	}
	if _, err := st.Authenticate(ctx, "mashs_"+strings.TrimPrefix(token, "mash_")); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("client credential accepted as a session: %v", err)
	}
}

// A cached session is never accepted past its own expiry, even when that comes before the
// cache entry would lapse.
func TestCachedSessionEndsAtItsExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := newTestStore(t)
	_, token, err := st.CreateSession(ctx, "carol", "Carol", RolePractitioner, "cardiff-mash", 2*time.Second, "*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, token); err != nil { // now cached
		t.Fatal(err)
	}
	*now = now.Add(3 * time.Second) // past the session, within SessionCacheTTL
	if _, err := st.Authenticate(ctx, token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("session past its expiry, still cached: got %v", err)
	}
}

// A session ended through one process's store is refused by another's within
// SessionCacheTTL, however recently that one cached it.
func TestEndedSessionRefusedByOtherProcessesWithinTheCacheTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := newTestStore(t)
	other := NewStore(st.pool)
	other.now = st.now
	_, token, err := st.CreateSession(ctx, "dave", "Dave", RoleManager, "cardiff-mash", time.Hour, "*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Authenticate(ctx, token); err != nil { // cached in the other process
		t.Fatal(err)
	}
	if err := st.EndSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(SessionCacheTTL + time.Millisecond)
	if _, err := other.Authenticate(ctx, token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("ended session in another process after %s: got %v", SessionCacheTTL, err)
	}
}

// Sessions are kept SessionRetention after they expire, then pruned; live ones never are.
func TestPruneSessionsKeepsRecentOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, now := newTestStore(t)
	_, _, err := st.CreateSession(ctx, "alice", "Alice", RolePractitioner, "cardiff-mash", time.Hour, "*")
	if err != nil {
		t.Fatal(err)
	}
	*now = now.Add(SessionRetention) // alice's expired 30 days less an hour ago: kept
	_, liveToken, err := st.CreateSession(ctx, "bob", "Bob", RolePractitioner, "cardiff-mash", 10*time.Hour, "*")
	if err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM auth.sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n, err := st.PruneSessions(ctx); err != nil || n != 0 || count() != 2 {
		t.Fatalf("prune within retention: %d %v, %d left", n, err, count())
	}
	*now = now.Add(2 * time.Hour) // alice's now expired more than 30 days ago
	if n, err := st.PruneSessions(ctx); err != nil || n != 1 || count() != 1 {
		t.Fatalf("prune after retention: %d %v, %d left", n, err, count())
	}
	if _, err := st.Authenticate(ctx, liveToken); err != nil {
		t.Fatalf("a live session was pruned: %v", err)
	}
}

// A partner agency's person authenticates as its agency, of its kind, scoped to it; no
// session is both staff and partner, and the partner role is never a machine client's.
func TestPartnerSessionIsItsAgencys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := newTestStore(t)
	_, token, err := st.CreateSessionOfKind(ctx, "pc.evans", "PC Evans", RolePartner, "south-wales-police", "police", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Authenticate(ctx, token)
	want := Identity{ClientID: "user:pc.evans", Agency: "south-wales-police", Kind: "police", Role: RolePartner, Name: "PC Evans", Partnerships: []string{}}
	if err != nil || !reflect.DeepEqual(id, want) || !id.AgencyScoped() || !id.IsPerson() {
		t.Fatalf("partner identity %+v %v, want %+v, agency-scoped", id, err, want)
	}
	for _, c := range []struct {
		name, kind string
		role       Role
	}{
		{"partner of the hub", StaffKind, RolePartner},
		{"partner of no kind", "constabulary", RolePartner},
		{"staff of a police force", "police", RoleManager},
	} {
		if _, _, err := st.CreateSessionOfKind(ctx, "x", "X", c.role, "south-wales-police", c.kind, time.Hour); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if _, _, err := st.Create(ctx, "south-wales-police", "police", RolePartner, "test"); err == nil {
		t.Error("a machine client was given the partner role")
	}
	staff := Identity{Role: RoleManager}
	if staff.AgencyScoped() {
		t.Error("a manager is agency-scoped")
	}
	// Limited by its agency, a partner with no partnerships is not limited by partnership.
	if !id.Serves("rhondda-cynon-taf") || !id.Can(ReadNotifications) || id.Can(ReadQueue) || !id.Can(UsePartnerView) || staff.Can(UsePartnerView) {
		t.Error("a partner's permissions are not its agency's")
	}
}
