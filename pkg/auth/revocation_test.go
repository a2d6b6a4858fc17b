package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
)

// follow runs st's revocation follower until the test ends, waits until it listens, and
// returns the revocations it applies.
func follow(t *testing.T, st *Store) <-chan Revocation {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{}, 4)
	applied := make(chan Revocation, 16)
	done := make(chan error, 1)
	go func() {
		done <- st.FollowRevocations(ctx, zap.NewNop(), RevocationHooks{
			Listening: func() { listening <- struct{}{} },
			Applied:   func(r Revocation) { applied <- r },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-listening:
	case <-time.After(30 * time.Second):
		t.Fatal("the revocation follower did not start listening")
	}
	return applied
}

// waitFor waits until the follower applied want.
func waitFor(t *testing.T, applied <-chan Revocation, want Revocation) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-applied:
			if r == want {
				return
			}
		case <-deadline:
			t.Fatalf("revocation %s never reached the other process", want)
		}
	}
}

// Two stores on one database stand for two processes: what one revokes, the other
// refuses as soon as the announcement has been applied, though its cache (CacheTTL: 30 s)
// still held the credential.
func TestRevocationReachesEveryProcessAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := newTestStore(t)
	b := NewStore(a.pool)
	applied := follow(t, b)

	_, clientToken, err := a.Create(ctx, "south-wales-police", "police", RoleReferrer, "test")
	if err != nil {
		t.Fatal(err)
	}
	client, _ := b.Authenticate(ctx, clientToken)
	sess, sessToken, err := a.CreateSession(ctx, "alice", "Alice Jones", RolePractitioner, "cardiff-mash", time.Hour, "*")
	if err != nil {
		t.Fatal(err)
	}
	_, bobToken, err := a.CreateSession(ctx, "bob", "Bob Evans", RoleManager, "cardiff-mash", time.Hour, "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{clientToken, sessToken, bobToken} {
		if _, err := b.Authenticate(ctx, tok); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
	}
	// b holds all three in its cache: without the announcement it would go on accepting
	// them until CacheTTL.
	if b.cacheLen() != 3 {
		t.Fatalf("b caches %d credentials; want 3", b.cacheLen())
	}

	if err := a.Revoke(ctx, client.ClientID, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, applied, Revocation{Kind: RevokedClient, ID: client.ClientID})
	if _, err := b.Authenticate(ctx, clientToken); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked client in the other process: %v", err)
	}

	if err := a.EndSession(ctx, sessToken); err != nil {
		t.Fatal(err)
	}
	waitFor(t, applied, Revocation{Kind: RevokedSession, ID: sess.ID})
	if _, err := b.Authenticate(ctx, sessToken); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("ended session in the other process: %v", err)
	}

	if _, err := a.EndUserSessions(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, applied, Revocation{Kind: RevokedUser, ID: "bob"})
	if _, err := b.Authenticate(ctx, bobToken); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a disabled person's session in the other process: %v", err)
	}
}

// A revocation that does not commit is not announced.
func TestRevocationOfAnUnknownClientIsNotAnnounced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := newTestStore(t)
	applied := follow(t, NewStore(a.pool))
	if err := a.Revoke(ctx, "0000000000000000", "test"); !errors.Is(err, ErrNoSuchClient) {
		t.Fatalf("revoke unknown: %v", err)
	}
	c, _, err := a.Create(ctx, "south-wales-police", "police", RoleReferrer, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, c.ClientID, "test"); err != nil {
		t.Fatal(err)
	}
	// Notifications arrive in commit order: the first one applied must be the real one.
	select {
	case r := <-applied:
		if r != (Revocation{Kind: RevokedClient, ID: c.ClientID}) {
			t.Fatalf("first announcement %v; want the committed revocation of %s", r, c.ClientID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the committed revocation was never announced")
	}
}

// cacheLen is how many credentials the cache holds.
func (s *Store) cacheLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cache)
}
