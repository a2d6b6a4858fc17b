-- Credentials of the systems and people that call mash. Only a SHA-256 of each secret is
-- kept: secrets are 256-bit random values, so a slow password hash would add nothing.
CREATE TABLE auth.clients (
    id          text PRIMARY KEY,
    agency      text NOT NULL,
    kind        text NOT NULL,
    role        text NOT NULL,
    secret_hash bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text
);

CREATE INDEX clients_agency ON auth.clients (agency);
