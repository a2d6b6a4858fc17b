-- A payload's ciphertext is AES-GCM output, which does not compress: Postgres tried anyway
-- on every large one, at each event of a referral, and stored it as it was. External storage
-- keeps large values out of line without the attempt.
ALTER TABLE audit.payloads ALTER COLUMN ciphertext SET STORAGE EXTERNAL;
