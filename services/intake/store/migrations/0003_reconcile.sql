-- The reconciler's look-up: referrals still waiting for a decision, oldest first.
CREATE INDEX referrals_undecided ON intake.referrals (received_at) WHERE status = 'RECEIVED';
