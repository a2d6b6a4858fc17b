package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// RevocationChannel is the Postgres notification channel every revocation is announced
// on. Every process shares the auth schema, so the announcement is made in the same
// transaction as the revocation itself: it is delivered if and only if the revocation
// commits, whichever process (or command) made it, and needs nothing but the database.
const RevocationChannel = "mash_auth_revoked"

// The kinds of revocation.
const (
	RevokedClient  = "client"  // a machine client's credential; ID is the client id
	RevokedSession = "session" // one signed-in session; ID is the session id
	RevokedUser    = "user"    // every session of a person; ID is the user id
)

// Revocation names a credential, a session or a person that must no longer be accepted.
type Revocation struct {
	Kind string
	ID   string
}

func (r Revocation) String() string { return r.Kind + ":" + r.ID }

func parseRevocation(payload string) (Revocation, bool) {
	kind, id, ok := strings.Cut(payload, ":")
	if !ok || id == "" || (kind != RevokedClient && kind != RevokedSession && kind != RevokedUser) {
		return Revocation{}, false
	}
	return Revocation{Kind: kind, ID: id}, true
}

// announce tells every process of r, on commit of tx.
func announce(ctx context.Context, tx pgx.Tx, r Revocation) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, RevocationChannel, r.String()); err != nil {
		return fmt.Errorf("announce revocation of %s: %w", r, err)
	}
	return nil
}

// evict drops from the cache every entry r covers.
func (s *Store) evict(r Revocation) {
	var match func(cached) bool
	switch r.Kind {
	case RevokedClient:
		match = func(c cached) bool { return c.session == "" && c.id.ClientID == r.ID }
	case RevokedSession:
		match = func(c cached) bool { return c.session == r.ID }
	case RevokedUser:
		match = func(c cached) bool { return c.session != "" && c.id.ClientID == UserPrefix+r.ID }
	default:
		return
	}
	s.forgetSessions(match)
}

// forgetAll empties the cache, so every credential is checked against the database again.
func (s *Store) forgetAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.cache)
}

// RevocationHooks let a caller (a test, or a metric) see the follower's progress. Either
// may be nil.
type RevocationHooks struct {
	// Listening is called each time the follower is listening, after it emptied the cache
	// of anything it might have missed while it was not.
	Listening func()
	// Applied is called after a revocation was evicted from the cache.
	Applied func(Revocation)
}

// revocationRetry is how long the follower waits before reconnecting after losing its
// connection.
const revocationRetry = time.Second

// FollowRevocations keeps this process's cache in step with revocations made by any
// process: it listens on RevocationChannel on a connection of its own and evicts what
// each names, so a revoked credential or ended session is refused everywhere as soon as
// the notification arrives. While it is not listening (at start, or after losing its
// connection) it empties the cache once listening again, so nothing missed meanwhile
// survives; the cache's TTL stays as the last backstop. It returns when ctx ends.
func (s *Store) FollowRevocations(ctx context.Context, log *zap.Logger, hooks RevocationHooks) error {
	for {
		err := s.followOnce(ctx, log, hooks)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("auth: revocation follower lost its connection; reconnecting", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(revocationRetry):
		}
	}
}

func (s *Store) followOnce(ctx context.Context, log *zap.Logger, hooks RevocationHooks) error {
	// A connection outside the pool: a listening connection must never be handed to a
	// query, and it should not take one of the pool's slots for ever.
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{RevocationChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen on %s: %w", RevocationChannel, err)
	}
	s.forgetAll()
	if hooks.Listening != nil {
		hooks.Listening()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for revocations: %w", err)
		}
		r, ok := parseRevocation(n.Payload)
		if !ok {
			continue
		}
		s.evict(r)
		log.Info("auth: revocation applied", zap.String("kind", r.Kind), zap.String("id", r.ID))
		if hooks.Applied != nil {
			hooks.Applied(r)
		}
	}
}
