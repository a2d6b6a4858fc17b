package db

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// PreferLZ4 returns a statement that has Postgres compress the large values of table's
// columns with LZ4 where the server was built with it, and leaves them on its default,
// pglz, where not (and on servers before 14, which know no other). Large values are
// compressed on every insert and on every update that sets them; at the pipeline's rates
// pglz was Postgres's busiest function, and LZ4 compresses the same values about four
// times as fast, and smaller. Values already stored keep their compression.
func PreferLZ4(table string, columns ...string) string {
	var alters strings.Builder
	for _, c := range columns {
		alters.WriteString("\t\tALTER TABLE " + table + " ALTER COLUMN " + pgx.Identifier{c}.Sanitize() + " SET COMPRESSION lz4;\n")
	}
	// PL/pgSQL plans a statement when it first runs it, so a server without the syntax
	// never reads the ALTERs.
	return `DO $lz4$
BEGIN
	IF EXISTS (SELECT FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
` + alters.String() + `	END IF;
END
$lz4$;
`
}
