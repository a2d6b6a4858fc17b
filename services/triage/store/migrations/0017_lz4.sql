-- A case's decision is compressed when it is stored, at each recommendation and decision:
-- with LZ4 where the server has it (about four times as fast as pglz, the default, and
-- smaller), as db.PreferLZ4 explains. Servers without it keep pglz.
DO $lz4$
BEGIN
	IF EXISTS (SELECT FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
		ALTER TABLE triage.cases ALTER COLUMN decision SET COMPRESSION lz4;
	END IF;
END
$lz4$;
