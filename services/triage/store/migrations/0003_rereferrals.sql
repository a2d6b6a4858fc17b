-- Re-referral facts on each case, so the dashboard reads them from the row instead of
-- probing the child's history once per referral in its range (1.3 s of a 90-day dashboard
-- at 1,000,000 cases).
--
-- rereferral_of is the child's most recent other case received in the 12 months before
-- this one (ties on received_at broken by the greater referral id), NULL when there is none;
-- rereferral_after_nfa is whether that case is closed NO_FURTHER_ACTION (1) or
-- ADVICE_AND_SIGNPOSTING (2), NULL exactly when rereferral_of is. Both are derived: row
-- triggers keep them in the transaction of every change that could alter them (a case's
-- child or receipt time, or whether it is closed with NFA or advice), whoever writes. Events
-- arrive in any order: a later referral projected first is re-linked when the earlier one
-- arrives; a decision that brings the child id links the case, and its neighbours, then.
ALTER TABLE triage.cases
    ADD COLUMN rereferral_of uuid,
    ADD COLUMN rereferral_after_nfa boolean;

-- relink_child recomputes the re-referral facts of every case of one child (a child has a
-- handful), each a probe of the child's history index (cases_child, which covers it), and
-- writes only rows whose facts changed.
CREATE FUNCTION triage.relink_child(child uuid) RETURNS void LANGUAGE sql AS $$
    UPDATE triage.cases c SET rereferral_of = prev.referral_id, rereferral_after_nfa = prev.after_nfa
    FROM triage.cases me LEFT JOIN LATERAL (
        SELECT p.referral_id, p.state = 4 AND p.outcome IN (1, 2) AS after_nfa FROM triage.cases p
        WHERE p.child_id = me.child_id AND p.received_at >= me.received_at - interval '12 months'
            AND p.received_at < me.received_at
        ORDER BY p.received_at DESC, p.referral_id DESC LIMIT 1) prev ON true
    WHERE me.child_id = child AND c.referral_id = me.referral_id
        AND (c.rereferral_of, c.rereferral_after_nfa) IS DISTINCT FROM (prev.referral_id, prev.after_nfa)
$$;

-- link_rereferrals re-links the children a changed case belongs to (before and after the
-- change). A transaction-scoped advisory lock per child, taken in child id order, serialises
-- re-linking of one child's cases, so two transactions changing cases of the same child
-- never both compute from a history missing the other's case (in READ COMMITTED each
-- statement after the lock sees what the other committed). The store's writers take the
-- same lock before they lock or write the case row (childLock in cases.go), so the lock
-- order is child, then case. (Only a decision that moves a case to another child locks the
-- old child in the trigger alone; a deadlock there needs concurrent changes to that child's
-- cases, and Postgres detects it: the event is retried.)
CREATE FUNCTION triage.link_rereferrals() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    children uuid[];
    child uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        children := ARRAY[NEW.child_id];
    ELSE
        children := ARRAY[OLD.child_id, NEW.child_id];
    END IF;
    SELECT array_agg(DISTINCT x ORDER BY x) INTO children FROM unnest(children) x WHERE x IS NOT NULL;
    FOREACH child IN ARRAY coalesce(children, '{}') LOOP
        PERFORM pg_advisory_xact_lock(hashtext('mash.triage.child.' || child::text));
    END LOOP;
    FOREACH child IN ARRAY coalesce(children, '{}') LOOP
        PERFORM triage.relink_child(child);
    END LOOP;
    RETURN NULL;
END
$$;

-- A case links once it has both its child (from the decision) and its receipt time (from
-- the referral), in whichever order they came. The update trigger names the columns the
-- facts depend on; re-linking writes only the rereferral columns, so it never fires itself.
CREATE TRIGGER cases_link_insert AFTER INSERT ON triage.cases FOR EACH ROW
    WHEN (NEW.child_id IS NOT NULL AND NEW.received_at IS NOT NULL)
    EXECUTE FUNCTION triage.link_rereferrals();
CREATE TRIGGER cases_link_update AFTER UPDATE OF child_id, received_at, state, outcome ON triage.cases FOR EACH ROW
    WHEN (OLD.child_id IS DISTINCT FROM NEW.child_id OR OLD.received_at IS DISTINCT FROM NEW.received_at
        OR (OLD.state = 4 AND OLD.outcome IN (1, 2)) <> (NEW.state = 4 AND NEW.outcome IN (1, 2)))
    EXECUTE FUNCTION triage.link_rereferrals();

-- relink_all computes the facts of every case in one pass (sorts by child, not a probe per
-- case): the backfill below, and bulk loads that disable the triggers. Simultaneous cases of
-- a child are first reduced to the one relink_child would pick (greatest referral id); the
-- frame is then the child's cases received in [received_at - 12 months, received_at), the
-- same bounds as relink_child (timestamps have microsecond resolution, so 1 microsecond
-- preceding is "strictly before"), and its last row is the most recent.
CREATE FUNCTION triage.relink_all() RETURNS void LANGUAGE sql AS $$
    UPDATE triage.cases c SET rereferral_of = l.prev_id, rereferral_after_nfa = l.after_nfa
    FROM (
        SELECT child_id, received_at, last_value(referral_id) OVER w AS prev_id, last_value(after_nfa) OVER w AS after_nfa
        FROM (
            SELECT DISTINCT ON (child_id, received_at) child_id, received_at, referral_id,
                state = 4 AND outcome IN (1, 2) AS after_nfa
            FROM triage.cases WHERE child_id IS NOT NULL AND received_at IS NOT NULL
            ORDER BY child_id, received_at, referral_id DESC) latest
        WINDOW w AS (PARTITION BY child_id ORDER BY received_at
            RANGE BETWEEN interval '12 months' PRECEDING AND interval '1 microsecond' PRECEDING)) l
    WHERE c.child_id = l.child_id AND c.received_at = l.received_at AND l.prev_id IS NOT NULL
        AND (c.rereferral_of, c.rereferral_after_nfa) IS DISTINCT FROM (l.prev_id, l.after_nfa)
$$;

SELECT triage.relink_all();

-- The dashboard's passes over a date range: every column its figures read, so a range is an
-- index-only scan (the heap is visited only for pages not yet all-visible). Keyed by
-- partnership first, so one partnership's range reads only its own cases; the dashboard of
-- every partnership reads each partnership's range in turn (partnership = ANY(...)). It
-- replaces (received_at, partnership).
CREATE INDEX cases_dashboard ON triage.cases (partnership, received_at) INCLUDE (source_agency, state, level,
    recommended_level, rag, decision_status, outcome, decision_due, rag_due, decided_at, rereferral_of, rereferral_after_nfa);
DROP INDEX triage.cases_received;

-- The dashboard's notifications are those sent (or, if never sent, last changed) in the
-- range; (sent_at) served no query.
CREATE INDEX notices_window ON triage.notices ((coalesce(sent_at, state_at)));
DROP INDEX triage.notices_sent;
