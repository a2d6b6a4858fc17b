-- The role the audit service writes with. Every transaction of the service runs
-- SET LOCAL ROLE mash_audit_writer, so the append-only grants below bind the service's own
-- code, not only other users.
--
-- Roles are cluster-wide: this runs once per database (and concurrently in tests), so the
-- role is created if missing and a concurrent creation is tolerated. Creating a role needs
-- CREATEROLE: in production run the migrations as the schema's owner role with CREATEROLE
-- (the login the service runs with must be a member of mash_audit_writer; a non-superuser
-- migrator is made one below). Tests run as a superuser.
-- This file is numbered 2000 so it runs after the outbox and inbox tables (1000, 1001).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mash_audit_writer') THEN
        BEGIN
            CREATE ROLE mash_audit_writer NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database's migration created it first
        END;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT mash_audit_writer TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA audit TO mash_audit_writer;
-- Append-only: no UPDATE or DELETE.
GRANT SELECT, INSERT ON audit.entries, audit.tree_hashes, audit.checkpoints TO mash_audit_writer;
-- Work tables the service changes.
GRANT SELECT, INSERT, DELETE ON audit.pending TO mash_audit_writer;
GRANT SELECT, UPDATE ON audit.head TO mash_audit_writer;
GRANT SELECT, INSERT, UPDATE ON audit.case_keys TO mash_audit_writer;
GRANT SELECT, INSERT ON audit.payloads TO mash_audit_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON audit.inbox, audit.dead_letter, audit.outbox TO mash_audit_writer;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA audit TO mash_audit_writer;
