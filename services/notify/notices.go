package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/notify/channel"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// noticeKind is the channel kind (webhook header, email subject) of a change notice.
const noticeKind = "directory-change"

// noticeAdvice is what the previous contact is asked to do. The notice holds no personal
// data: which fields changed, when, and the change id to quote.
const noticeAdvice = "Your organisation's entry in the MASH agency directory was changed. If your organisation did not ask for this change, contact the MASH at once and quote the change id."

// queueNotice stores, inside tx, the notice of approved change p to the agency's previous
// contact (old, as it stood before): its old channel and address, signed with its old secret,
// which the agency still holds. It returns the notice id.
func (s *Service) queueNotice(ctx context.Context, tx pgx.Tx, p store.Proposal, old store.StoredAgency, at time.Time) (string, error) {
	id := uuid.Must(uuid.NewV7()).String()
	fields := make([]string, len(p.Changes))
	for i, c := range p.Changes {
		fields[i] = c.Field
	}
	msg := &notifyv1.AgencyMessage{NotificationId: id, Kind: notifyv1.NotificationKind_DIRECTORY_CHANGE, Partnership: p.Partnership,
		Agency: p.Agency, CreatedAt: timestamppb.New(at), Note: noticeAdvice,
		DirectoryChange: &notifyv1.DirectoryChangeNotice{ChangeId: p.ID, ApprovedAt: timestamppb.New(at), Fields: fields, Advice: noticeAdvice}}
	payload, err := protojson.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("change %s: notice: %w", p.ID, err)
	}
	sealed, err := s.box.Seal(old.Secret, store.NoticeSecretAAD(id))
	if err != nil {
		return "", err
	}
	n := store.Notice{ID: id, ChangeID: p.ID, Partnership: p.Partnership, Agency: p.Agency, Channel: old.Channel, URL: old.URL, Email: old.Email,
		SealedSecret: sealed, Payload: payload, CreatedAt: at}
	return id, store.InsertNotice(ctx, tx, n)
}

// DeliverNoticesDue claims the change notices due now and sends each in its own goroutine;
// it returns how many it claimed.
func (s *Service) DeliverNoticesDue(ctx context.Context) (int, error) {
	var claimed []store.Notice
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		var err error
		claimed, err = store.ClaimNotices(ctx, tx, s.now().UTC(), s.leaseFor(), 16)
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, n := range claimed {
		s.sending.Add(1)
		go func() {
			defer s.sending.Done()
			s.sendNotice(context.WithoutCancel(ctx), n)
		}()
	}
	return len(claimed), nil
}

// sendNotice makes one attempt at a notice and records it.
func (s *Service) sendNotice(ctx context.Context, n store.Notice) {
	secret, err := s.box.Open(n.SealedSecret, store.NoticeSecretAAD(n.ID))
	state, detail, retry := store.NoticePending, "", time.Time{}
	if err == nil {
		a := directory.Agency{ID: n.Agency, Channel: n.Channel, URL: n.URL, Email: n.Email, Secret: secret}
		m := channel.Message{ID: n.ID, Agency: n.Agency, Kind: noticeKind, Reference: n.ChangeID, Body: n.Payload,
			Notice: []string{noticeAdvice, "", "Change id: " + n.ChangeID}}
		sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
		var receipt channel.Receipt
		receipt, err = s.channels.Send(sctx, a.Endpoint(), m)
		cancel()
		switch {
		case err == nil:
			state, detail = store.NoticeDelivered, receipt.Detail
		case channel.IsPermanent(err):
			state, detail = store.NoticeFailed, err.Error()
		}
	}
	if err != nil && state == store.NoticePending {
		detail = err.Error()
		if n.Attempts >= s.cfg.MaxAttempts {
			state, detail = store.NoticeFailed, fmt.Sprintf("gave up after %d attempts: %s", n.Attempts, detail)
		} else {
			retry = s.now().UTC().Add(s.backoff(n.Attempts))
		}
	}
	at := s.now().UTC()
	if retry.IsZero() {
		retry = at
	}
	err = pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		ok, err := store.RecordNotice(ctx, tx, n.ID, n.Attempts, state, truncate(detail, 500), retry, at)
		if err != nil || !ok || state == store.NoticePending {
			return err
		}
		subject := EventContactNotified
		if state == store.NoticeFailed {
			subject = EventContactNoticeFailed
		}
		endpoint := n.URL
		if n.Channel == directory.ChannelEmail {
			endpoint = n.Email
		} else if n.Channel == directory.ChannelNATS {
			endpoint = directory.Subject(n.Agency)
		}
		return s.outbox(ctx, tx, events.System("notify"), subject, n.Partnership, &eventsv1.DirectoryContactNotified{NoticeId: n.ID, ChangeId: n.ChangeID,
			Partnership: n.Partnership, Agency: n.Agency, Channel: n.Channel, Endpoint: endpoint, Attempt: int32(n.Attempts), Detail: truncate(detail, 500)})
	})
	if err != nil {
		s.log.Error("record change notice attempt", zap.String("notice_id", n.ID), zap.Error(err))
		return
	}
	s.relay.Wake()
	s.log.Info("change notice attempt", zap.String("notice_id", n.ID), zap.String("change_id", n.ChangeID), zap.String("agency", n.Agency),
		zap.String("state", state), zap.Int("attempt", n.Attempts), zap.String("detail", detail))
}
