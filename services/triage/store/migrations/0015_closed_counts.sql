-- Closed cases per partnership, in 16 shard rows each, instead of one counter row per
-- partnership and state. Only the closed count was ever read (open states are counted over
-- the partial indexes), yet every received case incremented its partnership's "awaiting
-- rules" row in the consumer's transaction, so every projection of a new referral queued on
-- that one row lock until the transaction before it committed. Now a new or open case
-- touches no counter, and a case closing or reopening updates the shard of its referral id,
-- so concurrent closures rarely meet; readers sum the shards.
CREATE TABLE triage.closed_counts (
    partnership text NOT NULL,
    shard       smallint NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (partnership, shard)
);

DROP TRIGGER cases_count_insert ON triage.cases;
DROP TRIGGER cases_count_update ON triage.cases;
DROP TRIGGER cases_count_delete ON triage.cases;
DROP FUNCTION triage.count_states();
DROP TABLE triage.state_counts;

-- ORDER BY: a statement moving several cases takes its shard rows in one order, so two
-- such statements cannot deadlock on them.
CREATE FUNCTION triage.count_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO triage.closed_counts AS s (partnership, shard, count)
        SELECT partnership, hashtext(referral_id::text) & 15, count(*) FROM new_rows WHERE state = 4
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (partnership, shard) DO UPDATE SET count = s.count + EXCLUDED.count;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO triage.closed_counts AS s (partnership, shard, count)
        SELECT partnership, hashtext(referral_id::text) & 15, -count(*) FROM old_rows WHERE state = 4
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (partnership, shard) DO UPDATE SET count = s.count + EXCLUDED.count;
    ELSE
        -- Only a case entering or leaving the closed state (or moving partnership while
        -- closed) moves a counter; a claim, a decision or a notice touches none.
        INSERT INTO triage.closed_counts AS s (partnership, shard, count)
        SELECT partnership, shard, sum(delta) FROM (
            SELECT o.partnership, hashtext(o.referral_id::text) & 15 AS shard, -1 AS delta
            FROM old_rows o JOIN new_rows n ON n.referral_id = o.referral_id
            WHERE o.state = 4 AND (n.state <> 4 OR n.partnership <> o.partnership)
            UNION ALL
            SELECT n.partnership, hashtext(n.referral_id::text) & 15, 1
            FROM old_rows o JOIN new_rows n ON n.referral_id = o.referral_id
            WHERE n.state = 4 AND (o.state <> 4 OR n.partnership <> o.partnership)) moved
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (partnership, shard) DO UPDATE SET count = s.count + EXCLUDED.count;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cases_count_insert AFTER INSERT ON triage.cases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION triage.count_closed();
CREATE TRIGGER cases_count_update AFTER UPDATE ON triage.cases
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION triage.count_closed();
CREATE TRIGGER cases_count_delete AFTER DELETE ON triage.cases
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION triage.count_closed();

INSERT INTO triage.closed_counts (partnership, shard, count)
SELECT partnership, hashtext(referral_id::text) & 15, count(*) FROM triage.cases WHERE state = 4 GROUP BY 1, 2;
