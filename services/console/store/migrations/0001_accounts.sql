-- Local console accounts: people who sign in with a username and password (where the
-- partnership has no OpenID Connect provider, or for break-glass admins). The password hash
-- is an argon2id PHC string ($argon2id$v=19$m=..,t=..,p=..$salt$hash), so its salt and
-- cost parameters travel with it and can be raised without a migration.
CREATE TABLE console.accounts (
    username      text PRIMARY KEY,
    display_name  text NOT NULL,
    role          text NOT NULL,
    agency        text NOT NULL,
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_sign_in  timestamptz
);

-- Failed sign-ins per key ("user:<name>" or "ip:<address>") in the current window; a key
-- with too many is refused until the window passes. One row per key, so a password-spraying
-- attack costs one row per username or address, not one per attempt.
CREATE TABLE console.login_failures (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    window_start timestamptz NOT NULL
);
