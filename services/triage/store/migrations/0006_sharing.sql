-- The family's consent to sharing (from the referral, then as recorded by staff) and a
-- manager's authorisation to share without it: with consent not given and no
-- authorisation, nothing but immediate danger leaves the hub.
ALTER TABLE triage.cases ADD COLUMN consent_status text NOT NULL DEFAULT '';
ALTER TABLE triage.cases ADD COLUMN sharing_basis text;
ALTER TABLE triage.cases ADD COLUMN sharing_reason text;
ALTER TABLE triage.cases ADD COLUMN sharing_ground text;
ALTER TABLE triage.cases ADD COLUMN sharing_by text;
ALTER TABLE triage.cases ADD COLUMN sharing_at timestamptz;
