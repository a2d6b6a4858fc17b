-- The people who work in the hub, as every service may check them: who a case can be
-- assigned to, or named lead professional. A row is written when a local account is made,
-- whenever a person signs in (so people of an OpenID Connect provider are known from their
-- first sign-in), and when an account's role changes or it is disabled. Existing sessions
-- tell who has signed in before, with the role and partnerships they last held.
CREATE TABLE auth.staff (
    user_id      text PRIMARY KEY,
    role         text NOT NULL,
    agency       text NOT NULL,
    kind         text NOT NULL,
    partnerships text[] NOT NULL DEFAULT '{}',
    active       boolean NOT NULL DEFAULT true,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO auth.staff (user_id, role, agency, kind, partnerships, updated_at)
SELECT DISTINCT ON (user_id) user_id, role, agency, kind, partnerships, created_at
FROM auth.sessions ORDER BY user_id, created_at DESC
ON CONFLICT (user_id) DO NOTHING;
