-- The kind of the submitting agency (police, health, ...), from its credential: threshold
-- rules may depend on who referred.
ALTER TABLE intake.referrals ADD COLUMN agency_kind text NOT NULL DEFAULT '';
