package audit

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// VerifyConsistencyWith proves that an auditor's previous checkpoint is a prefix of the log's
// latest one: both signatures are checked with vkey, and a consistency proof between the two
// signed roots must hold. The proof's hashes come from the database but are checked, not
// trusted, so a log rewritten since the previous checkpoint fails here even if everything in
// the database agrees with itself. It returns the latest signed checkpoint for the auditor to
// keep for next time.
func VerifyConsistencyWith(ctx context.Context, pool *pgxpool.Pool, vkey, origin string, previous []byte) ([]byte, error) {
	prev, err := auditlog.OpenCheckpoint(previous, vkey, origin)
	if err != nil {
		return nil, fmt.Errorf("previous checkpoint: %w", err)
	}
	last, err := store.LatestCheckpoint(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	next, err := auditlog.OpenCheckpoint([]byte(last.Note), vkey, origin)
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	if next.Size < prev.Size {
		return nil, fmt.Errorf("the log shrank: the previous checkpoint covers %d entries, the latest only %d: %w", prev.Size, next.Size, auditlog.ErrMismatch)
	}
	proof, err := auditlog.ConsistencyProof(store.TreeHashes{Ctx: ctx, Pool: pool}, next.Size, prev.Size)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d -> %d: %w", prev.Size, next.Size, err)
	}
	if err := auditlog.VerifyConsistencyChain(prev, next, proof); err != nil {
		return nil, fmt.Errorf("the log of %d entries is not an extension of the previous checkpoint of %d: %w", next.Size, prev.Size, err)
	}
	return []byte(last.Note), nil
}

// LatestCheckpoint returns the latest signed checkpoint note.
func LatestCheckpoint(ctx context.Context, pool *pgxpool.Pool) ([]byte, error) {
	last, err := store.LatestCheckpoint(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	return []byte(last.Note), nil
}
