package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/casekeys"
	"github.com/mash-hub/mash/pkg/db"
	auditstore "github.com/mash-hub/mash/services/audit/store"
)

// serviceRole is the database login a service runs as when each has its own
// (deploy/postgres/cluster.yaml's managed roles): mash_intake, mash_triage, ...
func serviceRole(service string) string { return "mash_" + service }

// serviceGrant is what service's login may do: its own schema (named after the service),
// the shared auth schema and, for the services that seal or open event payloads, the case
// keys schema; nothing of another service. The audit login only reads its
// schema directly and writes as mash_audit_writer, whose grants keep the log append-only.
func serviceGrant(service string) db.RoleGrant {
	g := db.RoleGrant{Role: serviceRole(service), Schema: service, Shared: []string{auth.Schema}}
	if service != "console" {
		g.Shared = append(g.Shared, casekeys.Schema)
	}
	if service == "audit" {
		g.ReadOnlyOwn = true
		g.MemberOf = []string{auditstore.WriterRole}
	}
	return g
}

// grantRoles gives each service's login its privileges; run after migrateAll.
func grantRoles(ctx context.Context, pool *pgxpool.Pool, services []string) error {
	for _, name := range services {
		if err := db.GrantRole(ctx, pool, serviceGrant(name)); err != nil {
			return fmt.Errorf("--grant-roles: %w", err)
		}
	}
	return nil
}
