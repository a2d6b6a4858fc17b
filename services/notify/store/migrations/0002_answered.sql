-- When an information request's notification was answered (by the API or on the bus). An
-- agency's system may acknowledge receipt at once; the request escalates at its deadline
-- unless it was answered, whatever the acknowledgement.
ALTER TABLE notify.notifications ADD COLUMN answered_at timestamptz;
CREATE INDEX notifications_unanswered ON notify.notifications (ack_due)
    WHERE kind = 'INFORMATION_REQUEST' AND ack_due IS NOT NULL AND answered_at IS NULL
      AND acknowledged_at IS NOT NULL AND escalated_at IS NULL AND withdrawn_at IS NULL;
