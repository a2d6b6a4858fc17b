-- Webhook secrets sealed with the key-encryption key (MASH_NOTIFY_SECRET_KEY, see
-- services/notify/seal). notify moves every clear secret of the old column into this one as
-- it starts and leaves `secret` NULL; nothing writes `secret` any more, and a later release
-- drops it once every deployment has started this one.
ALTER TABLE notify.agencies ADD COLUMN secret_sealed bytea;

-- Changes to where an agency's notifications go (a new agency; its channel, URL, email,
-- roles, schools or out-of-hours route; its secret) wait here for a second manager.
-- Deliveries keep using notify.agencies until one approves.
CREATE TABLE notify.directory_proposals (
    id               uuid PRIMARY KEY,
    partnership      text NOT NULL,
    agency           text NOT NULL,
    state            text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED')),
    -- The entry as it will stand (never the secret), and [{field, before, after}].
    proposed         jsonb NOT NULL,
    changes          jsonb NOT NULL,
    new_agency       boolean NOT NULL,
    -- A new webhook secret, sealed for this proposal; applied (re-sealed for the agency) on approval.
    secret_sealed    bytea,
    reason           text NOT NULL,
    proposed_by      text NOT NULL,
    proposed_by_role text NOT NULL,
    proposed_from    text NOT NULL DEFAULT '',
    proposed_at      timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    decided_by       text NOT NULL DEFAULT '',
    decided_by_role  text NOT NULL DEFAULT '',
    decided_from     text NOT NULL DEFAULT '',
    decided_at       timestamptz,
    decision_reason  text NOT NULL DEFAULT '',
    notice_id        uuid
);
-- One pending change per agency: a second waits until the first is decided.
CREATE UNIQUE INDEX directory_proposals_one_pending ON notify.directory_proposals (partnership, agency) WHERE state = 'PENDING';
CREATE INDEX directory_proposals_recent ON notify.directory_proposals (proposed_at DESC);
CREATE INDEX directory_proposals_expiry ON notify.directory_proposals (expires_at) WHERE state = 'PENDING';

-- The notice of an approved change to the agency's previous contact: its old channel and
-- address (and old secret, sealed for the notice), retried like a notification.
CREATE TABLE notify.contact_notices (
    id              uuid PRIMARY KEY,
    change_id       uuid NOT NULL UNIQUE REFERENCES notify.directory_proposals (id),
    partnership     text NOT NULL,
    agency          text NOT NULL,
    channel         text NOT NULL,
    url             text NOT NULL DEFAULT '',
    email           text NOT NULL DEFAULT '',
    secret_sealed   bytea,
    payload         bytea NOT NULL,
    state           text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts        integer NOT NULL DEFAULT 0,
    -- Also the lease of a claimed attempt: a sender that died is retried once it passes.
    next_attempt_at timestamptz NOT NULL,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz
);
CREATE INDEX contact_notices_due ON notify.contact_notices (next_attempt_at) WHERE state = 'PENDING';
