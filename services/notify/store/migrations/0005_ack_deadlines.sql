-- Acknowledgement deadlines per agency role and RAG, a partnership's own before the
-- defaults (directory.DefaultAckDeadlines): JSON [{"role", "rag", "within"}].
ALTER TABLE notify.partnerships ADD COLUMN ack_deadlines jsonb NOT NULL DEFAULT '[]';
