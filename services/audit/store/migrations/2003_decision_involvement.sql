-- Decisions are mash.decision.made, published by triage (the one door for a human
-- decision); the older mash.triage.confirmed/overridden entries stay on the trail and still
-- count. The partial predicate matches store.UnusualCandidates.
DROP INDEX audit.entries_involvement;
CREATE INDEX entries_involvement ON audit.entries (referral_id, event_type, agency)
    WHERE event_type IN ('mash.referral.received', 'mash.decision.made', 'mash.triage.confirmed', 'mash.triage.overridden');
