-- Where each message notify sent on an agency's NATS subject rests: the stream and its
-- sequence there. The message is JSON in clear (the agency must read it), so when its case
-- is erased notify deletes it from the stream by this sequence, then deletes the row.
CREATE TABLE notify.agency_messages (
    stream          text NOT NULL,
    seq             bigint NOT NULL CHECK (seq > 0),
    referral_id     uuid NOT NULL,
    notification_id uuid NOT NULL,
    sent_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, seq)
);
CREATE INDEX agency_messages_referral ON notify.agency_messages (referral_id);
