package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
)

// Schema is the Postgres schema that holds credentials.
const Schema = "auth"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the auth schema's migrations, with an outbox: changes to credentials
// and sign-ins are administrative acts whose events are written in the same transaction
// (by the mash command and the console) and published by the relay of mash serve.
func Migrations() ([]db.Migration, error) {
	migs, err := db.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	return append(migs,
		db.Migration{Version: 1000, Name: "1000_outbox.sql", SQL: events.OutboxDDL(Schema)},
		db.Migration{Version: 1002, Name: "1002_reconcile.sql", SQL: events.ReconcileDDL(Schema)},
		db.Migration{Version: 1004, Name: "1004_trace.sql", SQL: events.TraceDDL(Schema)},
		db.Migration{Version: 1006, Name: "1006_outbox_lz4.sql", SQL: events.PayloadLZ4DDL(Schema)}), nil
}

// Migrate brings the auth schema up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := Migrations()
	if err != nil {
		return err
	}
	return db.Migrate(ctx, pool, Schema, migs)
}

// tokenPrefix makes credentials recognisable to secret scanners and to people.
const tokenPrefix = "mash"

// Client is a stored credential, without its secret.
type Client struct {
	Identity
	CreatedAt time.Time
	CreatedBy string
	RevokedAt *time.Time
}

// Store keeps clients in Postgres and caches successful look-ups briefly, so a busy
// integrator's requests do not each cost a database round trip. A revocation is announced
// to every process, whose FollowRevocations evicts it from its cache at once; CacheTTL
// bounds how long a process that missed the announcement may still accept it.
type Store struct {
	pool     *pgxpool.Pool
	now      func() time.Time
	cacheTTL time.Duration

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	id      Identity
	expires time.Time
	// session is the session id for session tokens, so EndSession can evict the entry.
	session string
}

// CacheTTL bounds how long a revoked credential may still be accepted by a running process
// that is not following revocations, or missed one.
const CacheTTL = 30 * time.Second

// NewStore returns a Store over pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, now: time.Now, cacheTTL: CacheTTL, cache: map[[32]byte]cached{}}
}

// Create stores a new client serving partnerships (required for a hub role) and returns its
// credential, which is shown once: only a hash of the secret is kept.
func (s *Store) Create(ctx context.Context, agency, kind string, role Role, createdBy string, partnerships ...string) (Client, string, error) {
	return s.CreateWith(ctx, agency, kind, role, createdBy, partnerships, nil)
}

// CreateWith is Create running then, when given, in the transaction that stores the client
// (to write the act's event to the outbox).
func (s *Store) CreateWith(ctx context.Context, agency, kind string, role Role, createdBy string, partnerships []string, then func(pgx.Tx, Client) error) (Client, string, error) {
	if err := ValidateClient(agency, kind, role); err != nil {
		return Client{}, "", err
	}
	partnerships, err := ValidatePartnerships(role, partnerships)
	if err != nil {
		return Client{}, "", err
	}
	idBytes := make([]byte, 8)
	secret := make([]byte, 32)
	if _, err := rand.Read(idBytes); err != nil {
		return Client{}, "", fmt.Errorf("generate client id: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Client{}, "", fmt.Errorf("generate secret: %w", err)
	}
	id := hex.EncodeToString(idBytes)
	secretText := base64.RawURLEncoding.EncodeToString(secret)
	hash := sha256.Sum256([]byte(secretText))
	c := Client{Identity: Identity{ClientID: id, Agency: agency, Kind: kind, Role: role, Partnerships: partnerships}, CreatedBy: createdBy}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO auth.clients (id, agency, kind, role, secret_hash, created_by, partnerships)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
			id, agency, kind, string(role), hash[:], createdBy, nonNil(partnerships)).Scan(&c.CreatedAt); err != nil {
			return err
		}
		if then != nil {
			return then(tx, c)
		}
		return nil
	})
	if err != nil {
		return Client{}, "", fmt.Errorf("store client %s: %w", id, err)
	}
	return c, tokenPrefix + "_" + id + "_" + secretText, nil
}

// List returns every client, newest first.
func (s *Store) List(ctx context.Context) ([]Client, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, agency, kind, role, partnerships, created_at, created_by, revoked_at
		FROM auth.clients ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Client, error) {
		var c Client
		var role string
		err := r.Scan(&c.ClientID, &c.Agency, &c.Kind, &role, &c.Partnerships, &c.CreatedAt, &c.CreatedBy, &c.RevokedAt)
		c.Role = Role(role)
		return c, err
	})
}

// ErrNoSuchClient means no active client has that id.
var ErrNoSuchClient = errors.New("no active client with that id")

// Revoke disables a client. This process stops accepting it at once, and every process
// following revocations (FollowRevocations) as soon as the announcement reaches it.
func (s *Store) Revoke(ctx context.Context, id, revokedBy string) error {
	return s.RevokeWith(ctx, id, revokedBy, nil)
}

// RevokeWith is Revoke running then, when given, in the transaction that revokes.
func (s *Store) RevokeWith(ctx context.Context, id, revokedBy string, then func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE auth.clients SET revoked_at = now(), revoked_by = $2
			WHERE id = $1 AND revoked_at IS NULL`, id, revokedBy)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNoSuchClient
		}
		if err := announce(ctx, tx, Revocation{Kind: RevokedClient, ID: id}); err != nil {
			return err
		}
		if then != nil {
			return then(tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke client %s: %w", id, err)
	}
	s.evict(Revocation{Kind: RevokedClient, ID: id})
	return nil
}

// Authenticate returns the identity a bearer token stands for, or ErrUnauthenticated.
func (s *Store) Authenticate(ctx context.Context, token string) (Identity, error) {
	key := sha256.Sum256([]byte(token))
	now := s.now()
	s.mu.Lock()
	if c, ok := s.cache[key]; ok && now.Before(c.expires) {
		s.mu.Unlock()
		return c.id, nil
	}
	s.mu.Unlock()

	prefix, rest, ok := strings.Cut(token, "_")
	if ok && prefix == sessionPrefix {
		return s.authenticateSession(ctx, key, now, rest)
	}
	if !ok || prefix != tokenPrefix {
		return Identity{}, ErrUnauthenticated
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) == 0 || len(secret) > 128 {
		return Identity{}, ErrUnauthenticated
	}
	var ident Identity
	var role string
	var stored []byte
	err := s.pool.QueryRow(ctx, `SELECT id, agency, kind, role, partnerships, secret_hash FROM auth.clients
		WHERE id = $1 AND revoked_at IS NULL`, id).Scan(&ident.ClientID, &ident.Agency, &ident.Kind, &role, &ident.Partnerships, &stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return Identity{}, ErrUnauthenticated
	}
	if err != nil {
		return Identity{}, fmt.Errorf("look up client %s: %w", id, err)
	}
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(got[:], stored) != 1 {
		return Identity{}, ErrUnauthenticated
	}
	ident.Role = Role(role)
	// A row written before kinds and roles were checked, or by hand, is refused: an
	// agency's credential never acts as hub staff, and hub staff serve named partnerships.
	if err := checkKindRole(ident.Kind, ident.Role); err != nil {
		return Identity{}, fmt.Errorf("client %s: %v: %w", id, err, ErrUnauthenticated)
	}
	if _, err := ValidatePartnerships(ident.Role, ident.Partnerships); err != nil {
		return Identity{}, fmt.Errorf("client %s: %v: %w", id, err, ErrUnauthenticated)
	}
	s.remember(key, cached{id: ident, expires: now.Add(s.cacheTTL)})
	return ident, nil
}

// nonNil stores an empty list as an empty array, not NULL.
func nonNil(ps []string) []string {
	if ps == nil {
		return []string{}
	}
	return ps
}

func (s *Store) remember(key [32]byte, c cached) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) > 10000 {
		// Bounded: an attacker cycling valid-looking tokens never gets here, and real
		// clients and signed-in staff number in the hundreds.
		clear(s.cache)
	}
	s.cache[key] = c
}
