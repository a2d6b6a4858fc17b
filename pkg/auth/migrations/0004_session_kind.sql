-- The kind of agency a signed-in person works for: "hub" for the hub's staff, the partner
-- agency's kind (police, health, ...) for partner staff, so every service sees a partner's
-- session as its agency's, as it sees that agency's own system.
ALTER TABLE auth.sessions ADD COLUMN kind text NOT NULL DEFAULT 'hub';
