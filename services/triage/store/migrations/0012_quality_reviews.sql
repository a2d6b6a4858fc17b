-- Quality assurance: managers' reviews of decided cases. One review per case per reviewer
-- (the unique key refuses a second); a review is never edited, so the agreement rate is of
-- what was recorded. The reason and learning point are free text about the case: erasing
-- the case blanks them.
CREATE TABLE triage.quality_reviews (
    id             uuid PRIMARY KEY,
    referral_id    uuid NOT NULL REFERENCES triage.cases (referral_id),
    partnership    text NOT NULL,
    verdict        text NOT NULL CHECK (verdict IN ('AGREE', 'DISAGREE')),
    reason         text NOT NULL DEFAULT '',
    learning_point text NOT NULL DEFAULT '',
    reviewer       text NOT NULL,
    reviewer_role  text NOT NULL,
    -- The decision reviewed: who made it and the level it set, as they stood.
    decided_by     text NOT NULL,
    level          smallint NOT NULL,
    reviewed_at    timestamptz NOT NULL,
    CONSTRAINT quality_reviews_one_per_reviewer UNIQUE (referral_id, reviewer)
);
-- The agreement rate and the period's list: by partnership over a range of review times.
CREATE INDEX quality_reviews_partnership ON triage.quality_reviews (partnership, reviewed_at);
-- The sample: decided cases of a partnership over a range of decision times.
CREATE INDEX cases_decided ON triage.cases (partnership, decided_at) WHERE decided_at IS NOT NULL;
