package audit

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// Record runs the consumer's handler in tx, for tests that need entries without a broker.
func (s *Service) Record(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
	h, err := s.handler()
	if err != nil {
		return err
	}
	return h.Handle(ctx, tx, env)
}

// RecordBatch runs the consumer's handler for every env in tx as the consumer applies a
// batch: each entry queued, all written in one round trip at the end.
func (s *Service) RecordBatch(ctx context.Context, tx pgx.Tx, envs ...*eventsv1.Envelope) error {
	h, err := s.handler()
	if err != nil {
		return err
	}
	return s.inOneRoundTrip(ctx, tx, func(ctx context.Context) error {
		for _, env := range envs {
			if err := h.Handle(ctx, tx, env); err != nil {
				return err
			}
		}
		return nil
	})
}

// API returns the gRPC implementation, for tests that call it without a server.
func (s *Service) API() auditv1.AuditServiceServer { return &grpcAPI{svc: s} }

// EntryOfHash exposes entryOfHash to the tests.
var EntryOfHash = entryOfHash

// OnFullCheck sets the hook told of each entry verify decodes in full (nil: none).
func OnFullCheck(f func(pos int64)) { onFullCheck = f }

// VerifyInRanges is VerifyDatabaseWith reading the entries on readers connections at once,
// in ranges of chunkRows entries, so that a small log is read the way a large one is.
func VerifyInRanges(ctx context.Context, db *pgxpool.Pool, vkey, origin string, opts VerifyOptions, readers int, chunkRows int64) (auditlog.Report, error) {
	return verifyDatabase(ctx, db, vkey, origin, opts, entryReads{readers: readers, chunkRows: chunkRows})
}
