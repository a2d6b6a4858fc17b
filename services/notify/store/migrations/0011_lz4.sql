-- Each message and decision is compressed when it is stored, several times a referral: with
-- LZ4 where the server has it (about four times as fast as pglz, the default, and smaller),
-- as db.PreferLZ4 explains. Servers without it keep pglz; the ALTERs are planned only when run.
DO $lz4$
BEGIN
	IF EXISTS (SELECT FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
		ALTER TABLE notify.notifications ALTER COLUMN payload SET COMPRESSION lz4;
		ALTER TABLE notify.decisions ALTER COLUMN decision SET COMPRESSION lz4;
	END IF;
END
$lz4$;
