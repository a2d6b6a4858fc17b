package db

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DeleteBatch is the most rows one statement of DeleteInBatches removes: small enough that
// each statement's locks and WAL stay short beside live traffic.
const DeleteBatch = 5000

// DeleteInBatches runs sql, a DELETE of at most $1 rows whose further parameters are args,
// until it removes fewer than DeleteBatch or ctx ends, and returns how many rows went. The
// prunes of old rows use it, so a large backlog never becomes one long transaction.
func DeleteInBatches(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) (int64, error) {
	var total int64
	for ctx.Err() == nil {
		tag, err := pool.Exec(ctx, sql, append([]any{DeleteBatch}, args...)...)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < DeleteBatch {
			break
		}
	}
	return total, ctx.Err()
}
