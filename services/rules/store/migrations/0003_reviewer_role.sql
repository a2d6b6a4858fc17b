-- The reviewer's role when they confirmed or overrode a decision, so the audit trail says
-- whether a practitioner or a manager made it. Empty for decisions reviewed before this.
ALTER TABLE rules.decisions ADD COLUMN reviewed_by_role text;
