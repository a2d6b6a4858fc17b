package notify

import (
	"context"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	eventsv1 "mash/proto/mash/events/v1"
	"mash/services/notify/store"
)

// eraseCase blanks what notify keeps of an erased case (see store.EraseCase: the referral,
// message bodies, notes and reasons; undelivered messages are cancelled for good).
//
// Messages already sent on an agency's NATS subject stay on the stream in clear until they
// age out (the stream's MaxAge, 14 days by default): the stream refuses every message
// delete (DenyDelete, which a deployed stream cannot give up), and the agency must be able
// to read what it was sent, so those are not sealed under the case key.
func (s *Service) eraseCase(ctx context.Context, tx pgx.Tx, ev *eventsv1.CaseErased) error {
	if err := store.EraseCase(ctx, tx, ev.GetReferralId(), s.now().UTC()); err != nil {
		return err
	}
	s.log.Info("case erased", zap.String("referral_id", ev.GetReferralId()))
	return nil
}
