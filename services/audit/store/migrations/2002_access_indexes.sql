-- Indexes for the access queries (WhoAccessed, UserActivity, UnusualAccess). The partial
-- predicate is exactly store.accessCond, so the planner can use them: they hold access
-- entries only (reads by the services, mash.access.*, and queries of the audit API,
-- mash.audit.accessed), a small part of a busy referral's entries.
CREATE INDEX entries_access_referral ON audit.entries (referral_id, seq)
    WHERE (event_type LIKE 'mash.access.%' OR event_type = 'mash.audit.accessed');
CREATE INDEX entries_access_child ON audit.entries (child_id, seq)
    WHERE (event_type LIKE 'mash.access.%' OR event_type = 'mash.audit.accessed');
CREATE INDEX entries_access_actor ON audit.entries (actor, seq)
    WHERE (event_type LIKE 'mash.access.%' OR event_type = 'mash.audit.accessed');
CREATE INDEX entries_access_actor_agency ON audit.entries (actor, agency)
    WHERE (event_type LIKE 'mash.access.%' OR event_type = 'mash.audit.accessed');
CREATE INDEX entries_access_occurred ON audit.entries (occurred_at, seq)
    WHERE (event_type LIKE 'mash.access.%' OR event_type = 'mash.audit.accessed');
-- Who is involved in a referral: its referrer and the reviewers of its decision.
CREATE INDEX entries_involvement ON audit.entries (referral_id, event_type, agency)
    WHERE event_type IN ('mash.referral.received', 'mash.triage.confirmed', 'mash.triage.overridden');
