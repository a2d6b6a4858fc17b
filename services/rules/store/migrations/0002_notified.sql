-- When notify first reported acting on a decision (any mash.notification.* event naming
-- it): the reconciler re-emits decisions that never got there.
ALTER TABLE rules.decisions ADD COLUMN notified_at timestamptz;
CREATE INDEX decisions_unnotified ON rules.decisions (decided_at) WHERE notified_at IS NULL;
