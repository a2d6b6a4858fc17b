-- The role each notification was for, so a case shows who should have been told even when
-- no agency of the directory took that role (the notification was unroutable).
ALTER TABLE triage.notices ADD COLUMN role text NOT NULL DEFAULT '';
