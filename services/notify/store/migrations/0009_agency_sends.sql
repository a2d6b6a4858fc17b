-- The intent to send a notification on an agency's NATS subject, recorded (under the case's
-- lock) before it is published: a message published but whose place was never recorded
-- (notify crashed, or the recording transaction failed, between the publish and the record)
-- is still reachable when its case is erased. Erasure looks for it on the agency stream by
-- subject and Nats-Msg-Id (= notification_id), after after_seq: the highest sequence notify
-- had recorded on that stream when the intent was recorded, so the search starts past every
-- message that was already there.
CREATE TABLE notify.agency_sends (
    notification_id uuid PRIMARY KEY,
    referral_id     uuid NOT NULL,
    stream          text NOT NULL,
    subject         text NOT NULL,
    after_seq       bigint NOT NULL CHECK (after_seq >= 0),
    attempt         integer NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX agency_sends_referral ON notify.agency_sends (referral_id);
CREATE INDEX agency_sends_created ON notify.agency_sends (created_at);
CREATE INDEX agency_messages_sent ON notify.agency_messages (sent_at);
