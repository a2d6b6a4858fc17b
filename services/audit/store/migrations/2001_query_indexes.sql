-- Indexes for the auditor's queries (GetTrail by child, SearchEntries). Every one ends in
-- seq so a page is an index range read from the cursor (the last seq returned). Numbered
-- after the writer role so it applies to databases that already have 2000.
CREATE INDEX entries_child ON audit.entries (child_id, seq) WHERE child_id <> '';
CREATE INDEX entries_actor ON audit.entries (actor, seq);
CREATE INDEX entries_agency ON audit.entries (agency, seq) WHERE agency <> '';
CREATE INDEX entries_event_type ON audit.entries (event_type, seq);
CREATE INDEX entries_occurred ON audit.entries (occurred_at, seq);
