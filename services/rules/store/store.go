// Package store holds all of the rules service's SQL. The service owns the Postgres schema
// "rules": rule packs and their activations, the child index, and decisions.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
)

// Schema is the Postgres schema the rules service owns.
const Schema = "rules"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the rules service's migrations, outbox and consumer tables included.
func Migrations() ([]db.Migration, error) {
	migs, err := db.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	// LZ4 for the large values written at every referral, each decision's recommended and current records (db.PreferLZ4 says why).
	lz4 := db.Migration{Version: 7, Name: "0007_lz4.sql", SQL: db.PreferLZ4("rules.decisions", "recommended", "current")}
	return append(append(migs, lz4), events.Migrations(Schema)...), nil
}

// Store runs the rules service's queries.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the pool the store uses, for transactions that span store calls.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Errors callers turn into API errors.
var (
	ErrNotFound   = errors.New("not found")
	ErrPackExists = errors.New("a pack with this partnership and version already exists")
	ErrConflict   = errors.New("the decision changed since the version given")
)

// Pack is a stored rule pack version.
type Pack struct {
	ID, Partnership, Version, Description, Source, SHA256, UploadedBy string
	UploadedAt                                                        time.Time
	Active                                                            bool
	ActivatedBy, ActivationReason                                     string
	ActivatedAt                                                       *time.Time
}

// InsertPack stores a pack version; fn, when given, runs in the same transaction (the
// upload's admin-act event goes into the outbox there).
func (s *Store) InsertPack(ctx context.Context, p Pack, fn func(tx pgx.Tx, p Pack) error) (Pack, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO rules.packs (id, partnership, version, description, source, sha256, uploaded_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING uploaded_at`,
			p.ID, p.Partnership, p.Version, p.Description, p.Source, p.SHA256, p.UploadedBy).Scan(&p.UploadedAt); err != nil {
			return err
		}
		if fn != nil {
			return fn(tx, p)
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Pack{}, ErrPackExists
	}
	if err != nil {
		return Pack{}, fmt.Errorf("store pack %s %s: %w", p.Partnership, p.Version, err)
	}
	return p, nil
}

const packColumns = `p.id::text, p.partnership, p.version, p.description, p.source, p.sha256, p.uploaded_by, p.uploaded_at,
	a.pack_id IS NOT NULL, coalesce(act.activated_by, ''), coalesce(act.reason, ''), act.activated_at`

const packFrom = ` FROM rules.packs p
	LEFT JOIN rules.active_packs a ON a.pack_id = p.id
	LEFT JOIN rules.activations act ON act.id = a.activation_id`

func scanPack(row pgx.Row) (Pack, error) {
	var p Pack
	err := row.Scan(&p.ID, &p.Partnership, &p.Version, &p.Description, &p.Source, &p.SHA256, &p.UploadedBy, &p.UploadedAt,
		&p.Active, &p.ActivatedBy, &p.ActivationReason, &p.ActivatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Pack{}, ErrNotFound
	}
	return p, err
}

// GetPack returns one pack by id.
func (s *Store) GetPack(ctx context.Context, id string) (Pack, error) {
	p, err := scanPack(s.pool.QueryRow(ctx, `SELECT `+packColumns+packFrom+` WHERE p.id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Pack{}, fmt.Errorf("read pack %s: %w", id, err)
	}
	return p, err
}

// PackByVersion returns a partnership's pack of that version.
func (s *Store) PackByVersion(ctx context.Context, partnership, version string) (Pack, error) {
	p, err := scanPack(s.pool.QueryRow(ctx, `SELECT `+packColumns+packFrom+` WHERE p.partnership = $1 AND p.version = $2`, partnership, version))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Pack{}, fmt.Errorf("read pack %s %s: %w", partnership, version, err)
	}
	return p, err
}

// Querier is a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ActivePack returns the partnership's active pack.
func (s *Store) ActivePack(ctx context.Context, partnership string) (Pack, error) {
	return ActivePackIn(ctx, s.pool, partnership)
}

// ActivePackIn is ActivePack through q: a consumer reads it inside its transaction rather
// than taking a second connection while holding one, which could exhaust the pool.
func ActivePackIn(ctx context.Context, q Querier, partnership string) (Pack, error) {
	p, err := scanPack(q.QueryRow(ctx, `SELECT `+packColumns+packFrom+` WHERE a.partnership = $1`, partnership))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Pack{}, fmt.Errorf("read active pack of %s: %w", partnership, err)
	}
	return p, err
}

// ActivePackID returns the id of partnership's active pack, or of fallback's when the
// partnership has none, through q in one indexed read: a pack is immutable once stored, so
// a caller holding its compiled form by id need not read its source again.
func ActivePackID(ctx context.Context, q Querier, partnership, fallback string) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT pack_id::text FROM rules.active_packs WHERE partnership IN ($1, $2)
		ORDER BY partnership = $1 DESC LIMIT 1`, partnership, fallback).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", ErrNotFound
	case err != nil:
		return "", fmt.Errorf("read active pack of %s: %w", partnership, err)
	}
	return id, nil
}

// PackIn is GetPack through q.
func PackIn(ctx context.Context, q Querier, id string) (Pack, error) {
	p, err := scanPack(q.QueryRow(ctx, `SELECT `+packColumns+packFrom+` WHERE p.id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Pack{}, fmt.Errorf("read pack %s: %w", id, err)
	}
	return p, err
}

// ListPacks returns a partnership's packs, newest first.
func (s *Store) ListPacks(ctx context.Context, partnership string) ([]Pack, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+packColumns+packFrom+` WHERE p.partnership = $1 ORDER BY p.uploaded_at DESC, p.id`, partnership)
	if err != nil {
		return nil, fmt.Errorf("list packs of %s: %w", partnership, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pack, error) { return scanPack(r) })
}

// Activate makes pack the active one of its partnership and records who and why, in one
// transaction. fn runs inside it (to write the outbox row of the activation event).
func (s *Store) Activate(ctx context.Context, packID, by, reason string, fn func(tx pgx.Tx, p Pack) error) (Pack, error) {
	var out Pack
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var partnership string
		if err := tx.QueryRow(ctx, `SELECT partnership FROM rules.packs WHERE id = $1`, packID).Scan(&partnership); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		var activation int64
		if err := tx.QueryRow(ctx, `INSERT INTO rules.activations (partnership, pack_id, activated_by, reason)
			VALUES ($1, $2, $3, $4) RETURNING id`, partnership, packID, by, reason).Scan(&activation); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO rules.active_packs (partnership, pack_id, activation_id) VALUES ($1, $2, $3)
			ON CONFLICT (partnership) DO UPDATE SET pack_id = EXCLUDED.pack_id, activation_id = EXCLUDED.activation_id`,
			partnership, packID, activation); err != nil {
			return err
		}
		p, err := scanPack(tx.QueryRow(ctx, `SELECT `+packColumns+packFrom+` WHERE p.id = $1`, packID))
		if err != nil {
			return err
		}
		out = p
		if fn != nil {
			return fn(tx, p)
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Pack{}, err
	}
	if err != nil {
		return Pack{}, fmt.Errorf("activate pack %s: %w", packID, err)
	}
	return out, nil
}
