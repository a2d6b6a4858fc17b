-- How long the hub keeps a closed case, per record type, in data: a partnership's own row
-- wins over the default row (partnership ''). A case is due for erasure keep_years after it
-- closed or, when until_age is set, once the child has turned until_age, whichever is later.
CREATE TABLE triage.retention_schedules (
    partnership text NOT NULL DEFAULT '',
    record_type text NOT NULL CHECK (record_type IN ('no_further_action', 'early_help', 'statutory')),
    keep_years  integer NOT NULL CHECK (keep_years BETWEEN 1 AND 100),
    until_age   integer CHECK (until_age BETWEEN 1 AND 100),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partnership, record_type)
);

-- The defaults: a referral closed with no further action (or advice and signposting) 2 years
-- after closure; early help (single-agency, early help or intensive support) 6 years; a
-- statutory case (assessment, section 47 enquiry, already open to social care) until the
-- child's 25th birthday or 6 years after closure, whichever is later.
INSERT INTO triage.retention_schedules (partnership, record_type, keep_years, until_age) VALUES
    ('', 'no_further_action', 2, NULL),
    ('', 'early_help', 6, NULL),
    ('', 'statutory', 6, 25);
