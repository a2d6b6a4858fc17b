-- Rule packs: every uploaded version is kept, so any decision can be re-run with the pack
-- that made it.
CREATE TABLE rules.packs (
    id          uuid PRIMARY KEY,
    partnership text NOT NULL,
    version     text NOT NULL,
    description text NOT NULL,
    source      text NOT NULL,
    sha256      text NOT NULL,
    uploaded_by text NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT packs_version_key UNIQUE (partnership, version)
);

-- Every activation, with who and why: the history a partnership's auditors ask for.
CREATE TABLE rules.activations (
    id           bigserial PRIMARY KEY,
    partnership  text NOT NULL,
    pack_id      uuid NOT NULL REFERENCES rules.packs (id),
    activated_by text NOT NULL,
    reason       text NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now()
);

-- Exactly one active pack per partnership (the primary key).
CREATE TABLE rules.active_packs (
    partnership   text PRIMARY KEY,
    pack_id       uuid NOT NULL REFERENCES rules.packs (id),
    activation_id bigint NOT NULL REFERENCES rules.activations (id)
);

-- The child index: referrals about the same child point at one row here.
CREATE TABLE rules.children (
    id              uuid PRIMARY KEY,
    nhs_number      text UNIQUE,
    demographic_key text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX children_demographic ON rules.children (demographic_key) WHERE demographic_key IS NOT NULL;

-- One decision per referral: the rules' recommendation and what applies now.
CREATE TABLE rules.decisions (
    referral_id   uuid PRIMARY KEY,
    id            uuid NOT NULL UNIQUE,
    partnership   text NOT NULL,
    child_id      uuid NOT NULL REFERENCES rules.children (id),
    match_basis   text NOT NULL,
    pack_id       uuid NOT NULL REFERENCES rules.packs (id),
    pack_version  text NOT NULL,
    received_at   timestamptz NOT NULL,
    decided_at    timestamptz NOT NULL,
    decision_due  timestamptz NOT NULL,
    response_due  timestamptz NOT NULL,
    -- Concern categories of the referral, for the child's history counts.
    concerns      text[] NOT NULL,
    -- The facts the rules saw (JSON, as CEL names them) and the outcomes (protobuf).
    facts         jsonb NOT NULL,
    recommended   bytea NOT NULL,
    current       bytea NOT NULL,
    level         text NOT NULL,
    rag           text NOT NULL,
    status        text NOT NULL,
    version       bigint NOT NULL,
    reviewed_by   text,
    reviewed_at   timestamptz,
    review_reason text
);
CREATE INDEX decisions_child ON rules.decisions (child_id, received_at DESC);
CREATE INDEX decisions_partnership ON rules.decisions (partnership, decided_at DESC);
