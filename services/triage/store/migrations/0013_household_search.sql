-- Household members' names, so a search for a parent's (or a sibling's) name finds the
-- child's referrals, shown with the match basis "household". One row per named member of a
-- referral's household, folded as the child's name_key is (services/triage/searchkey.go).
-- Personal data, like search_keys: never logged, deleted when the case is erased. Referrals
-- received before this migration have no rows (their household is in intake's record).
CREATE TABLE triage.search_household (
    referral_id uuid NOT NULL REFERENCES triage.search_keys (referral_id),
    member      integer NOT NULL,
    name_key    text NOT NULL,
    PRIMARY KEY (referral_id, member)
);
CREATE INDEX search_household_name ON triage.search_household USING gin (name_key triage.gin_trgm_ops);
