-- A decision's recommended and current records are compressed when they are stored: with
-- LZ4 where the server has it (about four times as fast as pglz, the default, and smaller),
-- as db.PreferLZ4 explains. Servers without it keep pglz.
DO $lz4$
BEGIN
	IF EXISTS (SELECT FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
		ALTER TABLE rules.decisions ALTER COLUMN recommended SET COMPRESSION lz4;
		ALTER TABLE rules.decisions ALTER COLUMN current SET COMPRESSION lz4;
	END IF;
END
$lz4$;
