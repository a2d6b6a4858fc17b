package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/notify/channel"
	"github.com/mash-hub/mash/services/notify/store"
)

// eraseCase blanks what notify keeps of an erased case (see store.EraseCase: the referral,
// message bodies, notes and reasons; undelivered messages are cancelled for good), and
// deletes the messages it sent about the case on agencies' NATS subjects from the agency
// stream. Those are JSON in clear (the agency must read what it is sent), so unlike events
// they are not sealed under the case key, and only deleting them reaches them. They are
// deleted with SecureDeleteMsg, which overwrites the bytes in the store files, before the
// erasure commits: a failure retries the whole erasure, and a message already deleted by an
// earlier try counts as deleted.
//
// Messages sent before the agency stream existed rest on the event stream, which refuses
// deletes: they age out with it (its MaxAge, 14 days by default).
func (s *Service) eraseCase(ctx context.Context, tx pgx.Tx, ev *eventsv1.CaseErased) error {
	id := ev.GetReferralId()
	if err := store.EraseCase(ctx, tx, id, s.now().UTC()); err != nil {
		return err
	}
	msgs, err := store.AgencyMessages(ctx, tx, id)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := s.deleteAgencyMessage(ctx, m); err != nil {
			return fmt.Errorf("erase case %s: %w", id, err)
		}
	}
	if err := store.ForgetAgencyMessages(ctx, tx, id); err != nil {
		return err
	}
	// Messages published whose place was never recorded (see noteAgencySend) are found by
	// their intents.
	sends, err := store.AgencySends(ctx, tx, id)
	if err != nil {
		return err
	}
	found := 0
	for _, send := range sends {
		n, err := s.deleteAgencyCopies(ctx, send)
		if err != nil {
			return fmt.Errorf("erase case %s: %w", id, err)
		}
		found += n
	}
	if err := store.ForgetAgencySends(ctx, tx, id); err != nil {
		return err
	}
	s.log.Info("case erased", zap.String("referral_id", id), zap.Int("agency_messages_deleted", len(msgs)+found))
	return nil
}

// deleteAgencyMessage overwrites and deletes one agency message; one already gone is fine.
func (s *Service) deleteAgencyMessage(ctx context.Context, m store.AgencyMessage) error {
	st, err := s.js.Stream(ctx, m.Stream)
	if err != nil {
		return fmt.Errorf("agency stream %s: %w", m.Stream, err)
	}
	if err := st.SecureDeleteMsg(ctx, m.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete agency message %s seq %d: %w", m.Stream, m.Seq, err)
	}
	return nil
}

// deleteAgencyCopies finds every copy of send's message on its stream (the subject's
// messages past send.AfterSeq whose Nats-Msg-Id is the notification's: a re-send after the
// stream's duplicate window is a second copy) and deletes them. The search reads one message
// a round trip, over that agency's subject only, from where the stream stood when the intent
// was recorded: bounded by what the agency was sent since. It returns how many it deleted.
func (s *Service) deleteAgencyCopies(ctx context.Context, send store.AgencySend) (int, error) {
	st, err := s.js.Stream(ctx, send.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil // nothing rests on a stream that is gone
	}
	if err != nil {
		return 0, fmt.Errorf("agency stream %s: %w", send.Stream, err)
	}
	deleted := 0
	for seq := send.AfterSeq + 1; ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(send.Subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return deleted, nil // no more messages on the subject
		}
		if err != nil {
			return deleted, fmt.Errorf("look for notification %s on %s past seq %d: %w", send.NotificationID, send.Subject, seq, err)
		}
		if m.Header.Get(jetstream.MsgIDHeader) == send.NotificationID {
			if err := s.deleteAgencyMessage(ctx, store.AgencyMessage{Stream: send.Stream, Seq: m.Sequence}); err != nil {
				return deleted, err
			}
			deleted++
		}
		seq = m.Sequence + 1
	}
}

// noteAgencySend records, under the case's shared lock and before n is published on
// subject, the intent to publish it. This closes the window between the publish and
// noteAgencyMessage: if notify crashes there, or the recording fails and the case is erased
// before a retry, the erasure finds the message by the intent (deleteAgencyCopies). An
// erasure that commits first is seen here (erased: the message is not sent at all); one that
// commits after sees the intent. It reports whether the case is erased.
func (s *Service) noteAgencySend(ctx context.Context, n store.Notification, subject string) (erased bool, err error) {
	if n.ReferralID == "" {
		return false, nil
	}
	err = pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		if erased, err = events.CaseErased(ctx, tx, store.Schema, n.ReferralID); err != nil || erased {
			return err
		}
		return store.RecordAgencySend(ctx, tx, store.AgencySend{NotificationID: n.ID, ReferralID: n.ReferralID,
			Stream: events.AgencyStreamName, Subject: subject, Attempt: n.Attempts, At: s.now().UTC()})
	})
	return erased, err
}

// noteAgencyMessage records where a message of n sent on the agency's NATS subject rests,
// under the case's shared lock, so an erasure either committed before (the message is
// deleted at once: it was sent by a worker that claimed it before the erasure) or sees the
// record and deletes it. sent is true for the message notify published (not an agency's
// acknowledgement): its intent (noteAgencySend) is then forgotten if this attempt recorded
// it, since no earlier attempt can have left a copy; an intent of an earlier attempt stays,
// for its publish may have landed as another copy, until the case is erased or it is pruned.
func (s *Service) noteAgencyMessage(ctx context.Context, n store.Notification, r channel.Receipt, sent bool) error {
	if n.ReferralID == "" {
		return nil
	}
	m := store.AgencyMessage{Stream: r.Stream, Seq: r.Sequence}
	return pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		erased, err := events.CaseErased(ctx, tx, store.Schema, n.ReferralID)
		if err != nil {
			return err
		}
		if erased {
			s.log.Info("message of an erased case deleted from the agency stream", zap.String("notification_id", n.ID),
				zap.String("referral_id", n.ReferralID))
			return s.deleteAgencyMessage(ctx, m)
		}
		if err := store.RecordAgencyMessage(ctx, tx, n.ID, n.ReferralID, m, s.now().UTC()); err != nil {
			return err
		}
		if !sent {
			return nil
		}
		intent, ok, err := store.AgencySendOf(ctx, tx, n.ID)
		if err != nil || !ok || intent.Attempt != n.Attempts {
			return err
		}
		return store.ForgetAgencySend(ctx, tx, n.ID)
	})
}

// agencyMessagePlace is where a message read from the agency stream rests (zero when its
// metadata cannot be read).
func agencyMessagePlace(msg jetstream.Msg) store.AgencyMessage {
	md, err := msg.Metadata()
	if err != nil {
		return store.AgencyMessage{}
	}
	return store.AgencyMessage{Stream: md.Stream, Seq: md.Sequence.Stream}
}

// PruneAgencyRecords deletes the records of where agency messages rest, and the intents to
// send them, that are older than the agency stream's MaxAge: those messages have aged out
// of the stream, so no erasure has anything left to delete, and a case never erased would
// otherwise keep its rows for ever. A stream without MaxAge keeps everything, and so do
// the records. The escalation sweep calls it; tests call it directly. It returns how many
// rows it deleted.
func (s *Service) PruneAgencyRecords(ctx context.Context) (int64, error) {
	st, err := s.js.Stream(ctx, events.AgencyStreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("agency stream: %w", err)
	}
	maxAge := st.CachedInfo().Config.MaxAge
	if maxAge <= 0 {
		return 0, nil
	}
	var n int64
	err = pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		n, err = store.PruneAgencyRecords(ctx, tx, s.now().UTC().Add(-maxAge))
		return err
	})
	if n > 0 {
		s.log.Info("agency message records pruned", zap.Int64("rows", n))
	}
	return n, err
}

// dropRefused deletes a refused acknowledgement or answer from the agency stream. It is free
// text an agency wrote, and, refused, it is tied to no notification notify recorded, so no
// erasure would ever reach it: without this it would stay in clear until it aged out. One
// that cannot be deleted now is left to age out (logged by its sequence only).
func (s *Service) dropRefused(ctx context.Context, msg jetstream.Msg, log *zap.Logger) {
	place := agencyMessagePlace(msg)
	if place.Seq == 0 || place.Stream != events.AgencyStreamName {
		return
	}
	if err := s.deleteAgencyMessage(ctx, place); err != nil {
		log.Warn("refused message left on the agency stream until it ages out", zap.Uint64("stream_seq", place.Seq), zap.Error(err))
	}
}
