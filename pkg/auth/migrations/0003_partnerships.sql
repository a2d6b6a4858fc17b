-- Staff and credentials serve named partnerships: they see and work only those
-- partnerships' referrals. '*' grants every partnership.
ALTER TABLE auth.clients ADD COLUMN partnerships text[] NOT NULL DEFAULT '{}';
ALTER TABLE auth.sessions ADD COLUMN partnerships text[] NOT NULL DEFAULT '{}';

-- Existing hub credentials keep the reach they had: the partnership the agency directory
-- places their agency in, when the directory lists it, else every partnership (which an
-- operator narrows by issuing scoped credentials and revoking these). The directory's
-- "default" partnership stands for every partnership without a directory of its own, so it
-- names no partnership here.
DO $$
BEGIN
    IF to_regclass('notify.agencies') IS NOT NULL THEN
        UPDATE auth.clients c SET partnerships = d.partnerships
        FROM (SELECT id, array_agg(DISTINCT partnership ORDER BY partnership) AS partnerships
              FROM notify.agencies WHERE partnership <> 'default' GROUP BY id) d
        WHERE d.id = c.agency AND c.kind = 'hub' AND c.role <> 'referrer';
    END IF;
END $$;
UPDATE auth.clients SET partnerships = '{*}'
WHERE kind = 'hub' AND role <> 'referrer' AND partnerships = '{}';

-- Sessions begun before now carry no partnerships; they end, and staff sign in again under
-- their account's partnerships.
UPDATE auth.sessions SET ended_at = now() WHERE ended_at IS NULL;
