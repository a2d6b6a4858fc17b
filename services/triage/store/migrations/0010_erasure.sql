-- When a case was erased and by whom: the row stays (ids, times, level and state, for the
-- figures and the trail) with its personal data blanked, and is never due for erasure again.
ALTER TABLE triage.cases ADD COLUMN erased_at timestamptz;
ALTER TABLE triage.cases ADD COLUMN erased_by text NOT NULL DEFAULT '';
