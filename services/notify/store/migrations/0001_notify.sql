-- Partnership settings: the lawful basis stated on every share, where escalations go, the
-- console link for emails, and the school-day calendar for Operation Encompass.
CREATE TABLE notify.partnerships (
    id                 text PRIMARY KEY,
    lawful_basis       text NOT NULL,
    duty_manager       text NOT NULL DEFAULT '',
    console_url        text NOT NULL DEFAULT '',
    school_day_start   text NOT NULL DEFAULT '08:45',
    school_day_end     text NOT NULL DEFAULT '15:15',
    school_closures    date[] NOT NULL DEFAULT '{}',
    red_ack_minutes    integer NOT NULL DEFAULT 60,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    updated_by         text NOT NULL
);

-- The agency directory. An agency id is also the agency of its API credential.
CREATE TABLE notify.agencies (
    partnership  text NOT NULL,
    id           text NOT NULL,
    name         text NOT NULL,
    roles        text[] NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('webhook', 'nats', 'email')),
    url          text NOT NULL DEFAULT '',
    email        text NOT NULL DEFAULT '',
    secret       bytea,
    hours_start  text NOT NULL DEFAULT '',
    hours_end    text NOT NULL DEFAULT '',
    out_of_hours text NOT NULL DEFAULT '',
    concurrency  integer NOT NULL DEFAULT 4 CHECK (concurrency BETWEEN 1 AND 64),
    schools      text[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text NOT NULL,
    PRIMARY KEY (partnership, id)
);
CREATE INDEX agencies_roles ON notify.agencies USING gin (roles);

-- Every directory change, kept for the record (never the secret).
CREATE TABLE notify.directory_changes (
    id          bigserial PRIMARY KEY,
    partnership text NOT NULL,
    agency      text NOT NULL,
    change      text NOT NULL CHECK (change IN ('put', 'remove', 'rotate_secret', 'partnership')),
    before      jsonb,
    after       jsonb,
    reason      text NOT NULL,
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- What notify knows of each referral: the submission as intake accepted it, so it can build
-- each agency's proportionate summary.
CREATE TABLE notify.referrals (
    id          uuid PRIMARY KEY,
    reference   text NOT NULL,
    partnership text NOT NULL,
    agency      text NOT NULL,
    agency_kind text NOT NULL,
    received_at timestamptz NOT NULL,
    referral    bytea NOT NULL
);

-- The newest decision version applied per referral, so an older event arriving late never
-- undoes a newer one.
CREATE TABLE notify.decisions (
    referral_id uuid PRIMARY KEY,
    decision_id uuid NOT NULL,
    version     bigint NOT NULL,
    agencies    text[] NOT NULL,
    level       text NOT NULL,
    rag         text NOT NULL
);

-- One row per message to one agency. dedupe_key makes every way of creating a notification
-- idempotent (one per agency per decision, one receipt per referral, ...).
CREATE TABLE notify.notifications (
    id                 uuid PRIMARY KEY,
    dedupe_key         text NOT NULL UNIQUE,
    referral_id        uuid NOT NULL,
    reference          text NOT NULL,
    partnership        text NOT NULL,
    agency             text NOT NULL,
    role               text NOT NULL,
    kind               text NOT NULL,
    channel            text NOT NULL,
    decision_id        uuid,
    decision_version   bigint NOT NULL DEFAULT 0,
    rag                text NOT NULL DEFAULT 'NONE',
    priority           smallint NOT NULL,
    payload            bytea NOT NULL,
    payload_sha256     text NOT NULL,
    fields             text[] NOT NULL,
    purpose            text NOT NULL,
    lawful_basis       text NOT NULL,
    consent_status     text NOT NULL,
    consent_reason     text NOT NULL DEFAULT '',
    referrer_withheld  boolean NOT NULL DEFAULT false,
    state              text NOT NULL DEFAULT 'PENDING'
                       CHECK (state IN ('PENDING', 'SENDING', 'DELIVERED', 'ACKNOWLEDGED', 'FAILED')),
    attempts           integer NOT NULL DEFAULT 0,
    -- attempts when staff last retried it: the attempt budget counts from here.
    retry_base         integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL,
    lease_until        timestamptz,
    last_error         text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL,
    delivered_at       timestamptz,
    acknowledged_at    timestamptz,
    acknowledged_by    text NOT NULL DEFAULT '',
    ack_note           text NOT NULL DEFAULT '',
    ack_due            timestamptz,
    escalated_at       timestamptz,
    escalates_id       uuid,
    routed_from        text NOT NULL DEFAULT '',
    withdraws_id       uuid,
    withdrawn_at       timestamptz
);
-- The delivery worker's claim: due rows, most urgent first.
CREATE INDEX notifications_due ON notify.notifications (priority, next_attempt_at)
    WHERE state IN ('PENDING', 'SENDING');
-- The escalation sweep: unacknowledged rows with a deadline.
CREATE INDEX notifications_ack_due ON notify.notifications (ack_due)
    WHERE ack_due IS NOT NULL AND acknowledged_at IS NULL AND escalated_at IS NULL AND withdrawn_at IS NULL;
CREATE INDEX notifications_referral ON notify.notifications (referral_id, created_at);
CREATE INDEX notifications_agency ON notify.notifications (agency, created_at DESC);
CREATE INDEX notifications_failed ON notify.notifications (created_at DESC) WHERE state = 'FAILED';

-- Every delivery attempt and its result: the proof of delivery.
CREATE TABLE notify.attempts (
    notification_id uuid NOT NULL REFERENCES notify.notifications (id),
    number          integer NOT NULL,
    at              timestamptz NOT NULL,
    ok              boolean NOT NULL,
    result          text NOT NULL,
    PRIMARY KEY (notification_id, number)
);
