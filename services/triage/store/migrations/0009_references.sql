-- The references people quote (the MASH reference on the telephone and in letters, the
-- referring system's own) and the family group a referral was sent in (siblings reported in
-- one contact), from mash.referral.received, so the queue and the case show them without
-- asking intake for every row.
ALTER TABLE triage.cases
    ADD COLUMN reference          text NOT NULL DEFAULT '',
    ADD COLUMN external_reference text NOT NULL DEFAULT '',
    ADD COLUMN family_group       text NOT NULL DEFAULT '';
-- The cases of one family group, for the case page: a few rows per group.
CREATE INDEX cases_family_group ON triage.cases (source_agency, family_group) WHERE family_group <> '';
