-- The hub's casework read model: one row per referral, built from intake's, rules' and
-- notify's events and changed by the triage API. Levels, RAG, states, decision statuses and
-- outcomes are stored as their protobuf enum numbers, which are ordered (level 1 < 2 < 3a <
-- 3b < 4, none < green < amber < red), so step-ups and urgency compare in SQL.
CREATE TABLE triage.cases (
    referral_id        uuid PRIMARY KEY,
    partnership        text NOT NULL DEFAULT '',
    child_id           uuid,
    -- Display name and age for practitioners; personal data, never logged.
    child_name         text NOT NULL DEFAULT '',
    child_age_years    integer NOT NULL DEFAULT 0,
    source_agency      text NOT NULL DEFAULT '',
    source_kind        text NOT NULL DEFAULT '',
    concerns           text[] NOT NULL DEFAULT '{}',
    -- Whether mash.referral.received has been applied (events may arrive in any order).
    received           boolean NOT NULL DEFAULT false,
    state              smallint NOT NULL DEFAULT 1,
    level              smallint NOT NULL DEFAULT 0,
    -- The rules' own recommendation, for step-up and step-down figures.
    recommended_level  smallint NOT NULL DEFAULT 0,
    rag                smallint NOT NULL DEFAULT 0,
    pathway            text NOT NULL DEFAULT '',
    agencies           text[] NOT NULL DEFAULT '{}',
    decision_status    smallint NOT NULL DEFAULT 0,
    decision_id        uuid,
    -- The rules' decision version: an event naming an older one never overwrites a newer.
    decision_version   bigint NOT NULL DEFAULT 0,
    received_at        timestamptz,
    decision_due       timestamptz,
    rag_due            timestamptz,
    recommended_at     timestamptz,
    decided_at         timestamptz,
    decided_by         text NOT NULL DEFAULT '',
    assignee           text,
    claim_expires_at   timestamptz,
    outcome            smallint NOT NULL DEFAULT 0,
    outcome_note       text NOT NULL DEFAULT '',
    closed_at          timestamptz,
    closed_by          text NOT NULL DEFAULT '',
    version            bigint NOT NULL DEFAULT 1,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- The queue's sort key without NULLs, so keyset pagination is one row comparison that a
    -- btree index serves in order (a missing due time sorts last).
    queue_rag_due      timestamptz NOT NULL GENERATED ALWAYS AS (coalesce(rag_due, 'infinity'::timestamptz)) STORED,
    queue_decision_due timestamptz NOT NULL GENERATED ALWAYS AS (coalesce(decision_due, 'infinity'::timestamptz)) STORED
);

-- The queue: open cases (AWAITING_RULES, AWAITING_DECISION, DECIDED) are a few thousand
-- among millions of closed ones, so partial indexes in queue order keep the first page and
-- the per-state counts to a walk over open cases only. Queries repeat the predicate
-- "state IN (1, 2, 3)" literally so the planner can always use them.
CREATE INDEX cases_open_queue ON triage.cases (queue_rag_due, queue_decision_due, referral_id) WHERE state IN (1, 2, 3);
CREATE INDEX cases_open_partnership_queue ON triage.cases (partnership, queue_rag_due, queue_decision_due, referral_id) WHERE state IN (1, 2, 3);
-- Listing closed cases walks the whole table in queue order.
CREATE INDEX cases_queue ON triage.cases (queue_rag_due, queue_decision_due, referral_id);
CREATE INDEX cases_partnership_queue ON triage.cases (partnership, queue_rag_due, queue_decision_due, referral_id);
-- A child's history, newest first; it also covers the dashboard's re-referral probe (one
-- per referral in the range) so that probe never visits the table.
CREATE INDEX cases_child ON triage.cases (child_id, received_at DESC) INCLUDE (referral_id, state, outcome) WHERE child_id IS NOT NULL;
-- Management information over a date range.
CREATE INDEX cases_received ON triage.cases (received_at, partnership);
-- The sweep's lapsed claims.
CREATE INDEX cases_claims ON triage.cases (claim_expires_at) WHERE assignee IS NOT NULL;

-- What each agency was told about a case (from notify's events) and whether it acknowledged.
CREATE TABLE triage.notices (
    notification_id uuid PRIMARY KEY,
    referral_id     uuid NOT NULL,
    partnership     text NOT NULL,
    agency          text NOT NULL,
    kind            text NOT NULL,
    -- The latest state by event time: SENT, DELIVERED, ACKNOWLEDGED, FAILED, ESCALATED.
    state           text NOT NULL,
    state_at        timestamptz NOT NULL,
    sent_at         timestamptz,
    delivered_at    timestamptz,
    acknowledged_at timestamptz,
    ack_due         timestamptz
);
CREATE INDEX notices_referral ON triage.notices (referral_id);
CREATE INDEX notices_sent ON triage.notices (sent_at);

CREATE TABLE triage.strategy_discussions (
    id           uuid PRIMARY KEY,
    referral_id  uuid NOT NULL REFERENCES triage.cases (referral_id),
    held_at      timestamptz NOT NULL,
    participants text[] NOT NULL,
    outcome      text NOT NULL,
    section_47   boolean NOT NULL,
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX strategy_referral ON triage.strategy_discussions (referral_id, held_at);

-- "MASH research": questions to partner agencies, with a deadline.
CREATE TABLE triage.information_requests (
    id           uuid PRIMARY KEY,
    referral_id  uuid NOT NULL REFERENCES triage.cases (referral_id),
    partnership  text NOT NULL,
    agency       text NOT NULL,
    question     text NOT NULL,
    due          timestamptz NOT NULL,
    state        smallint NOT NULL,
    answer       text NOT NULL DEFAULT '',
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL,
    answered_by  text NOT NULL DEFAULT '',
    answered_at  timestamptz
);
CREATE INDEX information_requests_referral ON triage.information_requests (referral_id);
CREATE INDEX information_requests_agency ON triage.information_requests (agency, due, id);
CREATE INDEX information_requests_due ON triage.information_requests (due, id);
CREATE INDEX information_requests_requested ON triage.information_requests (requested_at);

-- Professional disagreements and the record of each stage they passed through.
CREATE TABLE triage.disagreements (
    id               uuid PRIMARY KEY,
    referral_id      uuid NOT NULL REFERENCES triage.cases (referral_id),
    partnership      text NOT NULL,
    raised_by_agency text NOT NULL,
    raised_by        text NOT NULL,
    reason           text NOT NULL,
    stage            smallint NOT NULL,
    stage_due        timestamptz NOT NULL,
    resolved         boolean NOT NULL DEFAULT false,
    resolution       text NOT NULL DEFAULT '',
    raised_at        timestamptz NOT NULL,
    resolved_at      timestamptz,
    version          bigint NOT NULL DEFAULT 1
);
CREATE INDEX disagreements_referral ON triage.disagreements (referral_id);
CREATE INDEX disagreements_order ON triage.disagreements (resolved, stage_due, id);
CREATE INDEX disagreements_overdue ON triage.disagreements (stage_due) WHERE NOT resolved;
CREATE INDEX disagreements_raised ON triage.disagreements (raised_at);

CREATE TABLE triage.disagreement_steps (
    disagreement_id uuid NOT NULL REFERENCES triage.disagreements (id),
    stage           smallint NOT NULL,
    started_at      timestamptz NOT NULL,
    due             timestamptz NOT NULL,
    ended_at        timestamptz,
    outcome         text NOT NULL DEFAULT '',
    actor           text NOT NULL DEFAULT '',
    PRIMARY KEY (disagreement_id, stage)
);
