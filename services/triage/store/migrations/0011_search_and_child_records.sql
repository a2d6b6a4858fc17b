-- Search and correctable child records.
--
-- Trigram matching for names that practitioners spell as they hear them. pg_trgm ships with
-- PostgreSQL (contrib) and is a trusted extension, so the schema's owner may create it. It
-- goes in the triage schema, where the migrating role may always create objects, and the
-- queries name its operator and functions with the schema (OPERATOR(triage.<%)).
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA triage;

-- What a referral can be found by, written with the case when its referral arrives. Keys are
-- normalised in Go (services/triage/searchkey.go) with the same function that reads a query,
-- so accents, case, punctuation and doubled letters never decide a match. Personal data,
-- like the case row: never logged.
CREATE TABLE triage.search_keys (
    referral_id        uuid PRIMARY KEY REFERENCES triage.cases (referral_id),
    partnership        text NOT NULL,
    -- Given and family names folded, words separated by one space.
    name_key           text NOT NULL DEFAULT '',
    -- given|family folded without spaces: what a possible match must share.
    person_key         text NOT NULL DEFAULT '',
    date_of_birth      date,
    nhs_number         text NOT NULL DEFAULT '',
    -- Upper case without spaces.
    postcode           text NOT NULL DEFAULT '',
    reference          text NOT NULL DEFAULT '',
    -- Upper case, as the referrer's system wrote it.
    external_reference text NOT NULL DEFAULT '',
    -- The ranking's tie-break (newest first), here so that a search ranks its matches
    -- without visiting the case of each: a common surname matches thousands.
    received_at        timestamptz
);
CREATE INDEX search_keys_name ON triage.search_keys USING gin (name_key triage.gin_trgm_ops);
CREATE INDEX search_keys_dob ON triage.search_keys (date_of_birth) WHERE date_of_birth IS NOT NULL;
CREATE INDEX search_keys_nhs ON triage.search_keys (nhs_number) WHERE nhs_number <> '';
CREATE INDEX search_keys_postcode ON triage.search_keys (postcode) WHERE postcode <> '';
CREATE INDEX search_keys_reference ON triage.search_keys (reference) WHERE reference <> '';
CREATE INDEX search_keys_external ON triage.search_keys (external_reference) WHERE external_reference <> '';
CREATE INDEX search_keys_person ON triage.search_keys (person_key, date_of_birth) WHERE person_key <> '';

-- The child record the rules' index gave each referral, and a practitioner's correction of
-- it for this one referral (a link or an unlink). The case's child_id is the effective
-- record: the override, else the rules' record, each followed through any standing merge.
ALTER TABLE triage.cases
    ADD COLUMN rules_child_id uuid,
    ADD COLUMN child_override uuid;
UPDATE triage.cases SET rules_child_id = child_id WHERE child_id IS NOT NULL;

-- Merges of one child record into another. A standing merge (undone_at NULL) redirects its
-- record; undoing it returns the record's referrals.
CREATE TABLE triage.child_merges (
    id          uuid PRIMARY KEY,
    from_child  uuid NOT NULL,
    into_child  uuid NOT NULL,
    reason      text NOT NULL,
    actor       text NOT NULL,
    actor_role  text NOT NULL,
    at          timestamptz NOT NULL,
    undone_at   timestamptz,
    undone_by   text NOT NULL DEFAULT '',
    undo_reason text NOT NULL DEFAULT '',
    CHECK (from_child <> into_child)
);
CREATE UNIQUE INDEX child_merges_standing ON triage.child_merges (from_child) WHERE undone_at IS NULL;
CREATE INDEX child_merges_into ON triage.child_merges (into_child);

-- Links and unlinks of single referrals, kept for the trail of both records.
CREATE TABLE triage.referral_links (
    id          uuid PRIMARY KEY,
    referral_id uuid NOT NULL REFERENCES triage.cases (referral_id),
    kind        text NOT NULL CHECK (kind IN ('LINK', 'UNLINK')),
    from_child  uuid,
    to_child    uuid NOT NULL,
    reason      text NOT NULL,
    actor       text NOT NULL,
    actor_role  text NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX referral_links_from ON triage.referral_links (from_child);
CREATE INDEX referral_links_to ON triage.referral_links (to_child);

-- resolve_child follows standing merges from a record to the one it now is (merges are
-- refused into a merged record and never form a cycle; the depth bound is a guard).
CREATE FUNCTION triage.resolve_child(child uuid) RETURNS uuid LANGUAGE sql STABLE AS $$
    WITH RECURSIVE chain(id, depth) AS (
        SELECT child, 0
        UNION ALL
        SELECT m.into_child, c.depth + 1 FROM chain c
        JOIN triage.child_merges m ON m.from_child = c.id AND m.undone_at IS NULL
        WHERE c.depth < 32)
    SELECT id FROM chain ORDER BY depth DESC LIMIT 1
$$;
