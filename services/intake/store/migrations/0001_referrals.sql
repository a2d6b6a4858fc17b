-- Accepted referrals. A row exists only if the referral was accepted: it is written in the
-- same statement as its outbox row, before intake answers.
CREATE TABLE intake.referrals (
    id                 uuid PRIMARY KEY,
    reference          text NOT NULL UNIQUE,
    agency             text NOT NULL,
    external_reference text NOT NULL,
    partnership        text NOT NULL,
    -- SHA-256 of the deterministic protobuf encoding of the submission: a retry with the same
    -- content is a replay, anything else under the same key is a conflict.
    content_hash       bytea NOT NULL,
    -- The submission as received (protobuf). Special category personal data.
    submission         bytea NOT NULL,
    received_at        timestamptz NOT NULL,
    decision_due       timestamptz NOT NULL,
    status             text NOT NULL,
    version            bigint NOT NULL,
    -- Idempotency is a constraint, not a look-up: concurrent identical submissions race on
    -- this index and exactly one row wins.
    CONSTRAINT referrals_submission_key UNIQUE (agency, external_reference)
);

-- Keyset pagination, newest first, for hub staff (all agencies) and for referrers (own agency).
CREATE INDEX referrals_received ON intake.referrals (received_at DESC, id DESC);
CREATE INDEX referrals_agency_received ON intake.referrals (agency, received_at DESC, id DESC);

-- Human-readable references are handed out in blocks of 100 per process (hi/lo), so a
-- referral costs no extra round trip for its reference. Gaps after a restart are harmless.
CREATE SEQUENCE intake.reference_block INCREMENT BY 100 START WITH 1;
