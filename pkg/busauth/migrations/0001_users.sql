-- Users of the NATS bus: agencies, operators, and the services of a deployment with an
-- external NATS server. Only a bcrypt hash of each password is kept; nats-server checks it
-- (an external server through the block mash bus config renders from this table).
CREATE TABLE bus.users (
    name          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('service', 'agency', 'operator')),
    id            text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    revoked_at    timestamptz,
    revoked_by    text
);

-- One active user per name: nats-server needs names to be unique.
CREATE UNIQUE INDEX users_active_name ON bus.users (name) WHERE revoked_at IS NULL;
