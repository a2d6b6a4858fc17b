-- resolve_child runs for every referral decided. As an SQL function that cannot be inlined,
-- its body was planned again on every call (1.2 ms a call, a quarter of a decision's
-- database time); the same body in PL/pgSQL keeps its plan for the session.
CREATE OR REPLACE FUNCTION rules.resolve_child(child uuid) RETURNS uuid LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (WITH RECURSIVE chain(id, depth) AS (
        SELECT child, 0
        UNION ALL
        SELECT m.into_child, c.depth + 1 FROM chain c
        JOIN rules.child_merges m ON m.from_child = c.id AND NOT m.undone
        WHERE c.depth < 32)
    SELECT id FROM chain ORDER BY depth DESC LIMIT 1);
END
$$;
