package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mash-hub/mash/pkg/db"
)

// Session tokens look different from client credentials ("mashs_" against "mash_"), so a
// leaked one is recognisable as a person's short-lived session, and the two can never be
// confused: a session token is never accepted as a client credential or the other way round.
const sessionPrefix = "mashs"

// UserPrefix starts the client id of every person's session: "user:<user_id>".
const UserPrefix = "user:"

// StaffKind is the agency kind of every console session: staff work in the hub.
const StaffKind = "hub"

// SessionCacheTTL bounds how long another process may still accept a session ended
// elsewhere. The process that ends a session stops accepting it at once.
const SessionCacheTTL = 5 * time.Second

// MaxSessionTTL is the longest session a store creates.
const MaxSessionTTL = 24 * time.Hour

// Session is a signed-in person, without the secret.
type Session struct {
	ID          string
	UserID      string
	DisplayName string
	Role        Role
	Agency      string
	// Partnerships are those the person serves (see Identity.Partnerships).
	Partnerships []string
	// Kind is the agency's kind: StaffKind for hub staff, the partner agency's kind
	// (police, health, ...) for partner staff.
	Kind      string
	CreatedAt time.Time
	ExpiresAt time.Time
	EndedAt   *time.Time
}

// Identity is what the session authenticates as.
func (s Session) Identity() Identity {
	kind := s.Kind
	if kind == "" {
		kind = StaffKind
	}
	return Identity{ClientID: UserPrefix + s.UserID, Agency: s.Agency, Kind: kind, Role: s.Role, Name: s.DisplayName,
		Partnerships: s.Partnerships}
}

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$`)

// ErrNoSuchSession means no live session has that token.
var ErrNoSuchSession = errors.New("no live session with that token")

// CreateSession signs a member of the hub's staff in for ttl and returns the session and
// its token, which is given to the person's browser once: only a hash of the secret is
// kept. Referrers are machine clients and cannot have sessions; staff serve at least one
// partnership.
func (s *Store) CreateSession(ctx context.Context, userID, displayName string, role Role, agency string, ttl time.Duration, partnerships ...string) (Session, string, error) {
	return s.CreateSessionOfKind(ctx, userID, displayName, role, agency, StaffKind, ttl, partnerships...)
}

// CreateSessionOfKind is CreateSession for a person of an agency of kind: StaffKind with a
// staff role, or a partner agency's kind (police, health, ...) with RolePartner. A partner
// session never holds a staff role, and a staff session never the partner role, so no
// session can be both. A partner is limited by its agency, as its agency's system is, and
// needs no partnerships.
func (s *Store) CreateSessionOfKind(ctx context.Context, userID, displayName string, role Role, agency, kind string, ttl time.Duration, partnerships ...string) (Session, string, error) {
	switch {
	case role == RolePartner && (kind == StaffKind || !slices.Contains(Kinds, kind)):
		return Session{}, "", fmt.Errorf("kind %q: a partner's session needs its agency's kind (police, health, education, ...), not %s", kind, StaffKind)
	case role != RolePartner && kind != StaffKind:
		return Session{}, "", fmt.Errorf("role %q: staff of a %s agency sign in with the partner role", role, kind)
	}
	partnerships, perr := ValidatePartnerships(role, partnerships)
	switch {
	case !userIDPattern.MatchString(userID):
		return Session{}, "", fmt.Errorf("user id %q: letters, digits and . _ @ : + - only, at most 128", userID)
	case displayName == "" || len(displayName) > 200:
		return Session{}, "", errors.New("display name: required, at most 200 characters")
	case role == RoleReferrer || (role != RolePartner && !slices.Contains(Roles, role)):
		return Session{}, "", fmt.Errorf("role %q: a session needs a staff role (practitioner, manager, auditor, admin) or partner", role)
	case len(agency) == 0 || len(agency) > 64 || !slugPattern.MatchString(agency):
		return Session{}, "", fmt.Errorf("agency %q: must be a lower-case slug such as cardiff-mash", agency)
	case ttl <= 0 || ttl > MaxSessionTTL:
		return Session{}, "", fmt.Errorf("session lifetime %s: must be positive and at most %s", ttl, MaxSessionTTL)
	case perr != nil:
		return Session{}, "", perr
	}
	idBytes := make([]byte, 8)
	secret := make([]byte, 32)
	if _, err := rand.Read(idBytes); err != nil {
		return Session{}, "", fmt.Errorf("generate session id: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Session{}, "", fmt.Errorf("generate session secret: %w", err)
	}
	now := s.now()
	sess := Session{ID: hex.EncodeToString(idBytes), UserID: userID, DisplayName: displayName, Role: role, Agency: agency,
		Kind: kind, Partnerships: partnerships, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	secretText := base64.RawURLEncoding.EncodeToString(secret)
	hash := sha256.Sum256([]byte(secretText))
	_, err := s.pool.Exec(ctx, `INSERT INTO auth.sessions (id, user_id, display_name, role, agency, kind, secret_hash, created_at, expires_at, partnerships)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		sess.ID, userID, displayName, string(role), agency, kind, hash[:], sess.CreatedAt, sess.ExpiresAt, nonNil(partnerships))
	if err != nil {
		return Session{}, "", fmt.Errorf("store session %s: %w", sess.ID, err)
	}
	// Whoever signs in is known to the staff directory as they are now, so a person of an
	// OpenID Connect provider can be given work from their first sign-in.
	if err := putStaff(ctx, s.pool, userID, role, agency, kind, partnerships, true, now); err != nil {
		return Session{}, "", err
	}
	return sess, sessionPrefix + "_" + sess.ID + "_" + secretText, nil
}

// SessionID returns the id part of a session token, without checking it; ok is false when
// token is not shaped like one.
func SessionID(token string) (string, bool) {
	prefix, rest, ok := strings.Cut(token, "_")
	if !ok || prefix != sessionPrefix {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) == 0 || len(secret) > 128 {
		return "", false
	}
	return id, true
}

// EndSession signs the session of token out. It stops being accepted by this store at
// once, by other processes following revocations as soon as the announcement reaches
// them, and by any other within SessionCacheTTL. Ending an ended, expired or unknown
// session is ErrNoSuchSession.
func (s *Store) EndSession(ctx context.Context, token string) error {
	sess, err := s.lookupSession(ctx, token)
	if err != nil {
		return err
	}
	ended := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE auth.sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL`, sess.ID, s.now())
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		ended = true
		return announce(ctx, tx, Revocation{Kind: RevokedSession, ID: sess.ID})
	})
	if err != nil {
		return fmt.Errorf("end session %s: %w", sess.ID, err)
	}
	s.evict(Revocation{Kind: RevokedSession, ID: sess.ID})
	if !ended {
		return ErrNoSuchSession
	}
	return nil
}

// SessionRetention is how long a session's row is kept after it expired: long enough to
// answer who held a session while an incident is looked into; the audit trail itself names
// the person, not the session.
const SessionRetention = 30 * 24 * time.Hour

// PruneSessions deletes sessions that expired more than SessionRetention ago (an ended one
// expires no later than its TTL, so this covers both), in batches, and returns how many.
func (s *Store) PruneSessions(ctx context.Context) (int64, error) {
	cutoff := s.now().Add(-SessionRetention)
	n, err := db.DeleteInBatches(ctx, s.pool, `DELETE FROM auth.sessions WHERE id IN (
		SELECT id FROM auth.sessions WHERE expires_at < $2 LIMIT $1)`, cutoff)
	if err != nil {
		return n, fmt.Errorf("prune sessions expired before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return n, nil
}

// EndUserSessions signs a person out everywhere (an account disabled or its role changed)
// and returns how many sessions ended.
func (s *Store) EndUserSessions(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		n, err = s.EndUserSessionsIn(ctx, tx, userID)
		return err
	})
	if err != nil {
		return 0, err
	}
	s.evict(Revocation{Kind: RevokedUser, ID: userID})
	return n, nil
}

// EndUserSessionsIn is EndUserSessions within tx, for a change to the person's account that
// commits with it (and with its act). This store forgets the person's sessions at once (a
// rollback costs it only a fresh look-up, and one racing the commit is bounded by
// CacheTTL); processes following revocations forget them when tx commits, and nothing is
// announced if it rolls back.
func (s *Store) EndUserSessionsIn(ctx context.Context, tx pgx.Tx, userID string) (int64, error) {
	tag, err := tx.Exec(ctx, `UPDATE auth.sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL`, userID, s.now())
	if err != nil {
		return 0, fmt.Errorf("end sessions of %s: %w", userID, err)
	}
	// Announced even when no session was live: it costs nothing, and a process that
	// missed an earlier announcement may still cache one of this person's sessions.
	if err := announce(ctx, tx, Revocation{Kind: RevokedUser, ID: userID}); err != nil {
		return 0, fmt.Errorf("end sessions of %s: %w", userID, err)
	}
	s.evict(Revocation{Kind: RevokedUser, ID: userID})
	return tag.RowsAffected(), nil
}

func (s *Store) forgetSessions(match func(cached) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.cache {
		if match(c) {
			delete(s.cache, k)
		}
	}
}

// lookupSession checks token against the live sessions.
func (s *Store) lookupSession(ctx context.Context, token string) (Session, error) {
	id, ok := SessionID(token)
	if !ok {
		return Session{}, ErrNoSuchSession
	}
	_, secret, _ := strings.Cut(strings.TrimPrefix(token, sessionPrefix+"_"), "_")
	var sess Session
	var role string
	var stored []byte
	err := s.pool.QueryRow(ctx, `SELECT id, user_id, display_name, role, agency, kind, partnerships, secret_hash, created_at, expires_at
		FROM auth.sessions WHERE id = $1 AND ended_at IS NULL AND expires_at > $2`, id, s.now()).
		Scan(&sess.ID, &sess.UserID, &sess.DisplayName, &role, &sess.Agency, &sess.Kind, &sess.Partnerships, &stored, &sess.CreatedAt, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNoSuchSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("look up session %s: %w", id, err)
	}
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(got[:], stored) != 1 {
		return Session{}, ErrNoSuchSession
	}
	sess.Role = Role(role)
	return sess, nil
}

// authenticateSession is Authenticate for session tokens (rest is the token after the
// prefix). Sessions are cached only briefly, and never past their expiry.
func (s *Store) authenticateSession(ctx context.Context, key [32]byte, now time.Time, rest string) (Identity, error) {
	sess, err := s.lookupSession(ctx, sessionPrefix+"_"+rest)
	if errors.Is(err, ErrNoSuchSession) {
		return Identity{}, ErrUnauthenticated
	}
	if err != nil {
		return Identity{}, err
	}
	expires := now.Add(min(s.cacheTTL, SessionCacheTTL))
	if sess.ExpiresAt.Before(expires) {
		expires = sess.ExpiresAt
	}
	ident := sess.Identity()
	s.remember(key, cached{id: ident, expires: expires, session: sess.ID})
	return ident, nil
}
