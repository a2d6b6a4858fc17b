-- The lead professional named for a case after the decision (agency, team, person), for the
-- child alone (scope 1) or its whole family group (scope 2), and who named them when. A
-- manager's assignment is a claim with no expiry (claim_expires_at NULL): it holds until it
-- is changed, so the sweep, which releases claims past their expiry, never touches it.
ALTER TABLE triage.cases
    ADD COLUMN lead_agency        text NOT NULL DEFAULT '',
    ADD COLUMN lead_team          text NOT NULL DEFAULT '',
    ADD COLUMN lead_person        text NOT NULL DEFAULT '',
    ADD COLUMN lead_scope         smallint NOT NULL DEFAULT 0,
    ADD COLUMN lead_named_by      text NOT NULL DEFAULT '',
    ADD COLUMN lead_named_by_role text NOT NULL DEFAULT '',
    ADD COLUMN lead_named_at      timestamptz;

-- The dashboard counts decided cases with a lead professional by their receipt.
CREATE INDEX cases_lead_agency ON triage.cases (received_at, lead_agency) WHERE lead_named_at IS NOT NULL;
