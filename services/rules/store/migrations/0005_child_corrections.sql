-- Practitioners' corrections of child records (triage's merges, unmerges, links and
-- unlinks), so a child's history here follows the corrected record.
--
-- index_child_id is the record the child index gave the referral; child_id becomes the
-- record it is on now (the index's, followed through standing merges, or the one a
-- practitioner linked it to), and is what a child's history counts. child_version is the
-- case version of the correction last applied, so an older one arriving late never undoes
-- a newer.
ALTER TABLE rules.decisions ADD COLUMN index_child_id uuid;
UPDATE rules.decisions SET index_child_id = child_id;
ALTER TABLE rules.decisions ALTER COLUMN index_child_id SET NOT NULL;
ALTER TABLE rules.decisions ADD COLUMN child_version bigint NOT NULL DEFAULT 0;
CREATE INDEX decisions_index_child ON rules.decisions (index_child_id);

-- Merges of one child record into another, as triage published them; a standing merge
-- (not undone) sends a new referral that the index links to the merged record to the
-- record it was merged into.
CREATE TABLE rules.child_merges (
    id         uuid PRIMARY KEY,
    from_child uuid NOT NULL,
    into_child uuid NOT NULL,
    undone     boolean NOT NULL DEFAULT false
);
CREATE INDEX child_merges_from ON rules.child_merges (from_child) WHERE NOT undone;

-- resolve_child follows standing merges from a record to the one it now is (triage refuses
-- a merge into a merged record, so there is no cycle; the depth bound is a guard).
CREATE FUNCTION rules.resolve_child(child uuid) RETURNS uuid LANGUAGE sql STABLE AS $$
    WITH RECURSIVE chain(id, depth) AS (
        SELECT child, 0
        UNION ALL
        SELECT m.into_child, c.depth + 1 FROM chain c
        JOIN rules.child_merges m ON m.from_child = c.id AND NOT m.undone
        WHERE c.depth < 32)
    SELECT id FROM chain ORDER BY depth DESC LIMIT 1
$$;
