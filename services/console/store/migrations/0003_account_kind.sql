-- The kind of agency a local account's person works for: "hub" for the hub's staff, the
-- partner agency's kind (police, health, education, ...) for partner staff, who sign in to
-- the partner view with the partner role.
ALTER TABLE console.accounts ADD COLUMN kind text NOT NULL DEFAULT 'hub';
