package audit

import (
	"context"

	"github.com/jackc/pgx/v5"

	eventsv1 "mash/proto/mash/events/v1"
)

// Record runs the consumer's handler in tx, for tests that need entries without a broker.
func (s *Service) Record(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
	return s.record(ctx, tx, env)
}
