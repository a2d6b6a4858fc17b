package db_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
)

// BenchmarkStoreLargeValue stores values the size of a decision record (about 15 KB of the
// example referral's JSON, each made distinct) with each compression, 100 in one statement so
// that compressing them, the cost PreferLZ4 cuts at every insert and every update that sets
// such a value, is most of the work rather than the round trip and the commit.
//
//	go test -run '^$' -bench StoreLargeValue -benchtime 100x ./pkg/db/
func BenchmarkStoreLargeValue(b *testing.B) {
	example, err := os.ReadFile("../../services/intake/testdata/referral.example.json")
	if err != nil {
		b.Fatal(err)
	}
	value := strings.Repeat(string(example), 15000/len(example)+1)
	pool := dbtest.NewPool(b, "empty", func(context.Context, string) error { return nil })
	ctx := context.Background()
	for _, method := range []string{"pglz", "lz4"} {
		b.Run(method, func(b *testing.B) {
			table := "values_" + method
			if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id int, v bytea)`); err != nil {
				b.Fatal(err)
			}
			if method == "lz4" {
				if _, err := pool.Exec(ctx, db.PreferLZ4(table, "v")); err != nil {
					b.Fatal(err)
				}
			}
			const perStatement = 100
			b.SetBytes(int64(perStatement * len(value)))
			b.ResetTimer()
			for i := range b.N {
				if _, err := pool.Exec(ctx, `INSERT INTO `+table+` SELECT g, convert_to(g::text || $2, 'UTF8')
					FROM generate_series($1::int, $1::int + $3::int - 1) g`, i*perStatement, value, perStatement); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			var used string
			if err := pool.QueryRow(ctx, `SELECT pg_column_compression(v) FROM `+table+` LIMIT 1`).Scan(&used); err != nil {
				b.Fatal(err)
			}
			if used != method {
				b.Skipf("the server compressed with %s, not %s (built without LZ4?)", used, method)
			}
		})
	}
}
