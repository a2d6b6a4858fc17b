-- What each referral may share: the family's consent (from the referral, then as staff
-- record it) and a manager's authorisation to share without it. generation counts the
-- changes, so a share made after one is a new notification even for the same decision.
CREATE TABLE notify.sharing (
    referral_id    uuid PRIMARY KEY,
    consent_status text NOT NULL,
    authorised_by  text NOT NULL DEFAULT '',
    lawful_basis   text NOT NULL DEFAULT '',
    reason         text NOT NULL DEFAULT '',
    generation     bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- Who authorised a share made without consent ("immediate danger" for a level 4 Red
-- recommendation); empty when shared on consent.
ALTER TABLE notify.notifications ADD COLUMN authorised_by text NOT NULL DEFAULT '';
-- The decision last acted on (rulesv1.Decision), so what consent held back can be shared
-- once a manager authorises it.
ALTER TABLE notify.decisions ADD COLUMN decision bytea;
