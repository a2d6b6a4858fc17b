package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/text"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/notify/channel"
	"github.com/mash-hub/mash/services/notify/store"
)

// AckSubjects is where agencies on the bus acknowledge: mash.notify.<agency>.ack with a JSON
// body {"notificationId": "...", "note": "..."}.
const AckSubjects = eventsv1.SubjectNotifyAnyAck

// BusAck is the body of an acknowledgement on the bus.
type BusAck struct {
	NotificationID string `json:"notificationId"`
	Note           string `json:"note"`
}

// ackListener takes acknowledgements agencies publish on their subject. The subject names
// the agency, and only that agency's notifications can be acknowledged through it.
type ackListener struct {
	svc *Service
	js  jetstream.JetStream
	log *zap.Logger
}

func (l *ackListener) run(ctx context.Context) error {
	cons, err := l.js.CreateOrUpdateConsumer(ctx, events.AgencyStreamName, jetstream.ConsumerConfig{
		Durable: acksDurable, FilterSubject: AckSubjects, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 64, DeliverPolicy: jetstream.DeliverAllPolicy,
		BackOff: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("notify ack consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { l.handle(ctx, msg) })
	if err != nil {
		return fmt.Errorf("notify ack consumer: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

func (l *ackListener) handle(ctx context.Context, msg jetstream.Msg) {
	agency := agencyOfAckSubject(msg.Subject())
	var body BusAck
	if err := json.Unmarshal(msg.Data(), &body); err != nil || body.NotificationID == "" {
		l.reject(ctx, msg, agency, "", "body is not {\"notificationId\": \"...\"}")
		return
	}
	// The API refuses such a note naming the field; the bus refuses it too, rather than let
	// the store fail on it delivery after delivery.
	if p := text.Problem(body.NotificationID, false); p != "" {
		l.reject(ctx, msg, agency, "", "notificationId "+p)
		return
	}
	if p := text.Problem(body.Note, true); p != "" {
		l.reject(ctx, msg, agency, body.NotificationID, "note "+p)
		return
	}
	n, err := l.svc.store.Get(ctx, body.NotificationID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		l.reject(ctx, msg, agency, body.NotificationID, "no such notification")
		return
	case err != nil:
		l.log.Error("read notification for bus acknowledgement", zap.String("notification_id", body.NotificationID), zap.Error(err))
		_ = msg.NakWithDelay(5 * time.Second)
		return
	case n.Agency != agency:
		l.reject(ctx, msg, agency, body.NotificationID, "the notification was sent to another agency")
		return
	}
	if _, _, err := l.svc.Acknowledge(ctx, n.ID, agencyActor(agency, "bus"), truncate(body.Note, 500)); err != nil {
		l.log.Error("record bus acknowledgement", zap.String("notification_id", n.ID), zap.Error(err))
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	// Its note rests on the agency stream in clear: recorded, so the case's erasure deletes
	// it (at once when the case is erased already).
	if place := agencyMessagePlace(msg); place.Seq > 0 {
		if err := l.svc.noteAgencyMessage(ctx, n, channel.Receipt{Stream: place.Stream, Sequence: place.Seq}, false); err != nil {
			l.log.Error("record where a bus acknowledgement rests", zap.String("notification_id", n.ID), zap.Error(err))
			_ = msg.NakWithDelay(5 * time.Second)
			return
		}
	}
	_ = msg.DoubleAck(ctx)
}

// reject drops an acknowledgement that can never apply, saying why in the log (ids only).
func (l *ackListener) reject(ctx context.Context, msg jetstream.Msg, agency, id, why string) {
	l.svc.metrics.ackRejected.Inc()
	l.log.Warn("bus acknowledgement rejected", zap.String("agency", agency), zap.String("notification_id", id), zap.String("reason", why))
	l.svc.dropRefused(ctx, msg, l.log)
	_ = msg.TermWithReason(why)
}

func agencyOfAckSubject(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) == 4 {
		return parts[2]
	}
	return ""
}
