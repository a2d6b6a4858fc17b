-- When a decision's case was erased: its facts, outcomes and review reason are blanked,
-- and it no longer counts in a child's history, serves a read or feeds a replay.
ALTER TABLE rules.decisions ADD COLUMN erased_at timestamptz;
