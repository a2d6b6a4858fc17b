-- Whether the decision notify last acted on was the rules' recommendation (shared only in
-- immediate danger, marked as awaiting the hub's decision) or a practitioner's decision:
-- agencies told on a recommendation hear again when a person decides.
ALTER TABLE notify.decisions ADD COLUMN status text NOT NULL DEFAULT '';
