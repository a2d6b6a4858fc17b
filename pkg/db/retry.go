package db

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TxAttempts bounds InTx's runs of one transaction.
const TxAttempts = 3

// SQLSTATEs of a transaction Postgres ended to resolve a conflict between transactions.
const (
	deadlockDetected     = "40P01"
	serializationFailure = "40001"
)

// Beginner starts transactions: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in one transaction and commits it.
//
// A transaction Postgres ends as a deadlock victim or a serialization failure changed
// nothing, so fn runs again, up to TxAttempts times in all: fn must only set what it returns,
// never act outside the transaction. Two writers that lock the same rows in different orders
// (a consumer's batch and a person's command, say) can deadlock however carefully each
// orders its own locks; Postgres then ends one of them, and its work should not be lost or
// reach a person as an error.
func InTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, db, fn)
		if attempt == TxAttempts || ctx.Err() != nil || !Retryable(err) {
			return err
		}
	}
}

// Retryable reports whether err is Postgres ending a transaction to resolve a conflict with
// another (a deadlock or a serialization failure), so running it again may succeed.
func Retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == deadlockDetected || pe.Code == serializationFailure)
}
