// Package casekeys holds each case's data key, wrapped by a key-encryption key, and seals
// and opens event payloads with it. Destroying a case's key is how a case is erased from
// every copy the services cannot reach: outbox rows, JetStream and dead letters.
//
// The keys live in one table, keys.case_key, in the database every service shares; each
// service reads it through its own Store (with a cache) and never writes another service's
// schema. An erased key keeps its row, without the wrapped key, so that a later event of
// the case is refused rather than sealed under a fresh key. The audit log keeps its own
// per-case keys (services/audit).
package casekeys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
)

// Schema is the schema of the key table.
const Schema = "keys"

// ErrErased is returned for a case whose key was destroyed. It wraps events.ErrPayloadErased,
// which consumers treat as "acknowledge unread".
var ErrErased = fmt.Errorf("case erased: %w", events.ErrPayloadErased)

// ErrNoKey is returned when a sealed payload names a case that never had a key here (a
// database restored without its keys, or a payload from another system).
var ErrNoKey = errors.New("no data key for the case")

// Migrations returns the key table's migrations, for db.Migrate with Schema.
func Migrations() []db.Migration {
	return []db.Migration{{Version: 1, Name: "0001_case_key.sql", SQL: `
CREATE TABLE IF NOT EXISTS keys.case_key (
	case_id    text PRIMARY KEY,
	-- The data key wrapped by the key-encryption key; NULL once the case is erased.
	wrapped    bytea,
	created_at timestamptz NOT NULL DEFAULT now(),
	erased_at  timestamptz,
	CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL))
);
`}}
}

// Migrate applies Migrations to the database.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return db.Migrate(ctx, pool, Schema, Migrations())
}

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// CacheTTL is how long a key read from the table is used without reading it again, so
	// a key destroyed by another process stops working here within it. Default 1 minute.
	CacheTTL time.Duration
	// CacheSize bounds the cached keys. Default 10,000.
	CacheSize int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultCacheTTL  = time.Minute
	DefaultCacheSize = 10_000
)

// Store reads, creates and destroys case keys. It implements events.PayloadCipher.
type Store struct {
	pool *pgxpool.Pool
	w    Wrapper
	opts Options

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	key    []byte // nil when erased
	erased bool
	until  time.Time
}

// New returns a store of the keys in pool's keys schema, wrapped by w.
func New(pool *pgxpool.Pool, w Wrapper, opts Options) (*Store, error) {
	if pool == nil || w == nil {
		return nil, errors.New("casekeys: pool and wrapper are required")
	}
	if opts.CacheTTL < 0 || opts.CacheSize < 0 {
		return nil, fmt.Errorf("casekeys: CacheTTL %s and CacheSize %d must not be negative", opts.CacheTTL, opts.CacheSize)
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{pool: pool, w: w, opts: opts, cache: map[string]cached{}}, nil
}

// Key returns caseID's data key, making it on first use. An erased case gives ErrErased.
func (s *Store) Key(ctx context.Context, caseID string) ([]byte, error) {
	return s.key(ctx, caseID, true)
}

func (s *Store) key(ctx context.Context, caseID string, create bool) ([]byte, error) {
	if caseID == "" {
		return nil, errors.New("casekeys: case id is empty")
	}
	if c, ok := s.fromCache(caseID); ok {
		if c.erased {
			return nil, fmt.Errorf("case %s: %w", caseID, ErrErased)
		}
		return c.key, nil
	}
	wrapped, erased, err := s.read(ctx, caseID)
	if errors.Is(err, pgx.ErrNoRows) && create {
		// Read first: wrapping may be a call to a KMS, not worth making for a case that
		// has its key already.
		fresh, made, cerr := s.create(ctx, caseID)
		if cerr != nil {
			return nil, cerr
		}
		if made {
			s.remember(caseID, cached{key: fresh})
			return fresh, nil
		}
		// Another process made it in between.
		wrapped, erased, err = s.read(ctx, caseID)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("case %s: %w", caseID, ErrNoKey)
	}
	if err != nil {
		return nil, err
	}
	if erased {
		s.remember(caseID, cached{erased: true})
		return nil, fmt.Errorf("case %s: %w", caseID, ErrErased)
	}
	key, err := s.w.Unwrap(ctx, wrapped, caseID)
	if err != nil {
		return nil, err
	}
	s.remember(caseID, cached{key: key})
	return key, nil
}

func (s *Store) read(ctx context.Context, caseID string) (wrapped []byte, erased bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT wrapped, erased_at IS NOT NULL FROM keys.case_key WHERE case_id = $1`, caseID).
		Scan(&wrapped, &erased)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("read key of case %s: %w", caseID, err)
	}
	return wrapped, erased, err
}

// create stores a fresh key for caseID unless the case already has a row (a key, made by
// this or another process, or an erased one); made reports whether fresh was stored.
func (s *Store) create(ctx context.Context, caseID string) (fresh []byte, made bool, err error) {
	fresh = make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, false, fmt.Errorf("make key of case %s: %w", caseID, err)
	}
	wrapped, err := s.w.Wrap(ctx, fresh, caseID)
	if err != nil {
		return nil, false, err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO keys.case_key (case_id, wrapped) VALUES ($1, $2) ON CONFLICT DO NOTHING`, caseID, wrapped)
	if err != nil {
		return nil, false, fmt.Errorf("store key of case %s: %w", caseID, err)
	}
	return fresh, tag.RowsAffected() == 1, nil
}

// Erase destroys caseID's data key: every payload sealed under it becomes unreadable, and
// the case's later events are refused a key. Erasing an erased case, or one that never had
// a key, leaves it erased. It reports whether a key was destroyed by this call.
func (s *Store) Erase(ctx context.Context, caseID string) (bool, error) {
	var destroyed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		destroyed, err = EraseIn(ctx, tx, caseID)
		return err
	})
	if err != nil {
		return false, err
	}
	s.remember(caseID, cached{erased: true})
	return destroyed, nil
}

// EraseIn destroys caseID's data key within tx, so the destruction commits (or not) with
// the erasure it belongs to. Every Store's cache still holds the key until it expires or
// Forget is called: call Forget (or Erased) after the commit. It reports whether a key was
// destroyed by this call.
func EraseIn(ctx context.Context, tx pgx.Tx, caseID string) (bool, error) {
	if caseID == "" {
		return false, errors.New("casekeys: case id is empty")
	}
	var destroyed bool
	err := tx.QueryRow(ctx, `SELECT wrapped IS NOT NULL FROM keys.case_key WHERE case_id = $1 FOR UPDATE`, caseID).Scan(&destroyed)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("erase key of case %s: %w", caseID, err)
	}
	if _, err = tx.Exec(ctx, `INSERT INTO keys.case_key (case_id, wrapped, erased_at) VALUES ($1, NULL, now())
		ON CONFLICT (case_id) DO UPDATE SET wrapped = NULL, erased_at = coalesce(case_key.erased_at, now())`, caseID); err != nil {
		return false, fmt.Errorf("erase key of case %s: %w", caseID, err)
	}
	return destroyed, nil
}

// Forgetter is what a service that hears of an erasure needs of a Store: to stop using
// the case's key at once. A *Store is one.
type Forgetter interface{ Forget(caseID string) }

// ForgetIn calls Forget on c when it is a Forgetter (a *Store); a nil cipher or another
// kind has no cache to drop.
func ForgetIn(c any, caseID string) {
	if f, ok := c.(Forgetter); ok && f != nil {
		f.Forget(caseID)
	}
}

// Erased reports whether caseID's key was destroyed.
func (s *Store) Erased(ctx context.Context, caseID string) (bool, error) {
	_, erased, err := s.read(ctx, caseID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return erased, err
}

// Forget drops caseID from the cache, so its next use reads the table: a service that
// hears of an erasure calls it to stop using the key at once.
func (s *Store) Forget(caseID string) {
	s.mu.Lock()
	delete(s.cache, caseID)
	s.mu.Unlock()
}

func (s *Store) fromCache(caseID string) (cached, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[caseID]
	if !ok {
		return cached{}, false
	}
	if !c.erased && !s.opts.Now().Before(c.until) {
		// Destruction is final, so only live keys expire.
		delete(s.cache, caseID)
		return cached{}, false
	}
	return c, true
}

func (s *Store) remember(caseID string, c cached) {
	c.until = s.opts.Now().Add(s.opts.CacheTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cache[caseID]; !ok && len(s.cache) >= s.opts.CacheSize {
		// Evict an arbitrary entry: a miss costs one indexed read.
		for id := range s.cache {
			delete(s.cache, id)
			break
		}
	}
	s.cache[caseID] = c
}
