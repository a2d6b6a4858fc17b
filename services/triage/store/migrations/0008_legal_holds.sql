-- Legal holds: a held case is never due for erasure. Each hold is kept after it is lifted,
-- with who placed and lifted it and why; at most one stands per case.
CREATE TABLE triage.legal_holds (
    id          bigserial PRIMARY KEY,
    referral_id uuid NOT NULL REFERENCES triage.cases (referral_id),
    reason      text NOT NULL,
    placed_by   text NOT NULL,
    placed_at   timestamptz NOT NULL,
    lifted_by   text NOT NULL DEFAULT '',
    lift_reason text NOT NULL DEFAULT '',
    lifted_at   timestamptz
);
CREATE UNIQUE INDEX legal_holds_standing ON triage.legal_holds (referral_id) WHERE lifted_at IS NULL;
