-- The decision as triage holds it (rulesv1.Decision, protobuf) and the vocabulary of the
-- pack that recommended it: triage is the one door for a human decision, so it builds the
-- confirmed or overridden decision itself, in the transaction that checks the claim and the
-- version, and publishes it. NULL for cases projected before this.
ALTER TABLE triage.cases ADD COLUMN decision bytea;
ALTER TABLE triage.cases ADD COLUMN pack_agencies text[];
ALTER TABLE triage.cases ADD COLUMN pack_pathways text[];
