-- Cases per partnership and state, kept by statement-level triggers in the transaction of
-- every change, so the queue can show how many closed cases there are (most of the table)
-- without counting them. Open states are still counted over the partial indexes, because
-- their counts follow every queue filter.
CREATE TABLE triage.state_counts (
    partnership text NOT NULL,
    state       smallint NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (partnership, state)
);

CREATE FUNCTION triage.count_states() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO triage.state_counts AS s (partnership, state, count)
        SELECT partnership, state, count(*) FROM new_rows GROUP BY partnership, state
        ON CONFLICT (partnership, state) DO UPDATE SET count = s.count + EXCLUDED.count;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO triage.state_counts AS s (partnership, state, count)
        SELECT partnership, state, -count(*) FROM old_rows GROUP BY partnership, state
        ON CONFLICT (partnership, state) DO UPDATE SET count = s.count + EXCLUDED.count;
    ELSE
        -- Only rows whose state or partnership changed move between counters; a claim or a
        -- renewed claim touches no counter row, so concurrent casework does not queue on it.
        INSERT INTO triage.state_counts AS s (partnership, state, count)
        SELECT partnership, state, sum(delta) FROM (
            SELECT o.partnership, o.state, -1 AS delta FROM old_rows o JOIN new_rows n ON n.referral_id = o.referral_id
            WHERE (o.state, o.partnership) IS DISTINCT FROM (n.state, n.partnership)
            UNION ALL
            SELECT n.partnership, n.state, 1 FROM old_rows o JOIN new_rows n ON n.referral_id = o.referral_id
            WHERE (o.state, o.partnership) IS DISTINCT FROM (n.state, n.partnership)) moved
        GROUP BY partnership, state
        ON CONFLICT (partnership, state) DO UPDATE SET count = s.count + EXCLUDED.count;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cases_count_insert AFTER INSERT ON triage.cases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION triage.count_states();
CREATE TRIGGER cases_count_update AFTER UPDATE ON triage.cases
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION triage.count_states();
CREATE TRIGGER cases_count_delete AFTER DELETE ON triage.cases
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION triage.count_states();

INSERT INTO triage.state_counts (partnership, state, count)
SELECT partnership, state, count(*) FROM triage.cases GROUP BY partnership, state;
