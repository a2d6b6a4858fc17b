package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RoleGrant is what one service's database login may do: read and write the tables of its
// own schema and of the shared schemas (auth), nothing in any other service's schema. A
// login that is a member of a narrower role (MemberOf) and only reads its own schema
// directly (ReadOnlyOwn) writes solely through that role's grants.
type RoleGrant struct {
	Role        string
	Schema      string
	Shared      []string
	ReadOnlyOwn bool
	MemberOf    []string
}

// ErrRoleMissing is returned when a grant names a role the server does not have.
var ErrRoleMissing = errors.New("role does not exist")

// GrantRole gives g.Role its privileges. It must run after the migrations (it grants on the
// tables that exist) and again after every release's migrations, which the migrate command
// does. The roles themselves are created by whoever provisions logins (CloudNativePG's
// managed roles in deploy/postgres), so a missing one is an error, not created here.
func GrantRole(ctx context.Context, pool *pgxpool.Pool, g RoleGrant) error {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, g.Role).Scan(&exists); err != nil {
		return fmt.Errorf("grant %s: %w", g.Role, err)
	}
	if !exists {
		return fmt.Errorf("grant %s on schema %s: %w: create the login first", g.Role, g.Schema, ErrRoleMissing)
	}
	role := pgx.Identifier{g.Role}.Sanitize()
	var stmts []string
	for _, m := range g.MemberOf {
		stmts = append(stmts, `GRANT `+pgx.Identifier{m}.Sanitize()+` TO `+role)
	}
	for i, schema := range append([]string{g.Schema}, g.Shared...) {
		s := pgx.Identifier{schema}.Sanitize()
		stmts = append(stmts, `GRANT USAGE ON SCHEMA `+s+` TO `+role)
		if i == 0 && g.ReadOnlyOwn {
			stmts = append(stmts, `GRANT SELECT ON ALL TABLES IN SCHEMA `+s+` TO `+role)
			continue
		}
		stmts = append(stmts,
			`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA `+s+` TO `+role,
			`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA `+s+` TO `+role)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("grant %s: %w", g.Role, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("grant %s: %s: %w", g.Role, q, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("grant %s: %w", g.Role, err)
	}
	return nil
}
