-- Signed-in staff of the web console. A session stands for one person, so every service's
-- audit trail names the person (client id "user:<user_id>"), not the console. As with
-- clients, only a SHA-256 of the 256-bit random secret is kept.
CREATE TABLE auth.sessions (
    id           text PRIMARY KEY,
    user_id      text NOT NULL,
    display_name text NOT NULL,
    role         text NOT NULL,
    agency       text NOT NULL,
    secret_hash  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz
);

-- Ending every session of a person (disabled account) and finding dormant accounts.
CREATE INDEX sessions_user ON auth.sessions (user_id, created_at DESC);
-- Pruning expired sessions.
CREATE INDEX sessions_expires ON auth.sessions (expires_at);
