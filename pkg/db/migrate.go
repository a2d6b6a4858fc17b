package db

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migration is one forward-only schema change. Versions are applied in order, once.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads files named NNNN_description.sql from dir of fsys.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations %s: %w", dir, err)
	}
	var migs []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and an underscore", e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migration %s: version %d already used by %s", e.Name(), v, other)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		migs = append(migs, Migration{Version: v, Name: e.Name(), SQL: string(body)})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].Version < migs[j].Version })
	return migs, nil
}

// Checksum identifies a set of migrations, so test template databases are rebuilt when any
// migration changes.
func Checksum(migs []Migration) string {
	h := sha256.New()
	for _, m := range migs {
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00", m.Version, m.Name, m.SQL)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// inVersionOrder is migs sorted by version, refusing a version used twice: a service's
// migrations come from its files and from Go (the outbox's, a helper's), and only the
// files are checked against each other as they load.
func inVersionOrder(migs []Migration) ([]Migration, error) {
	out := slices.Clone(migs)
	slices.SortStableFunc(out, func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migration %s: version %d already used by %s", out[i].Name, out[i].Version, out[i-1].Name)
		}
	}
	return out, nil
}

// Migrate applies the migrations not yet applied to schema, in version order, each in its own transaction,
// recording them in schema.schema_migrations. A session advisory lock per schema makes
// concurrent starts of several replicas safe: one migrates, the others wait and find
// nothing to do.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, migs []Migration) error {
	migs, err := inVersionOrder(migs)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: acquire connection: %w", schema, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('mash.migrate.' || $1))`, schema); err != nil {
		return fmt.Errorf("migrate %s: take lock: %w", schema, err)
	}
	defer func() {
		// Unlock on a fresh context: the caller's may already be cancelled.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('mash.migrate.' || $1))`, schema)
	}()
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident+`;
		CREATE TABLE IF NOT EXISTS `+ident+`.schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
		return fmt.Errorf("migrate %s: create schema: %w", schema, err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM `+ident+`.schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate %s: read applied versions: %w", schema, err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("migrate %s: read applied versions: %w", schema, err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate %s: read applied versions: %w", schema, err)
	}
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// Migrations name their schema explicitly; search_path keeps unqualified names
			// inside it as a second line.
			if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+ident); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+ident+`.schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: apply %s: %w", schema, m.Name, err)
		}
	}
	return nil
}
