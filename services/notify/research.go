package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/text"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/notify/channel"
	"github.com/mash-hub/mash/services/notify/share"
	"github.com/mash-hub/mash/services/notify/store"
)

// RoleResearch is the role recorded on an information request's notification: the agency is
// asked as a holder of records, whatever roles it fills on decisions.
const RoleResearch = "research"

// AnswerPath is where an agency answers information request id by API (triage serves it).
func AnswerPath(requestID string) string { return "/v1/information-requests/" + requestID + "/answer" }

// AnswerSubject is where an agency on the bus answers: mash.notify.<agency>.answer.
func AnswerSubject(agency string) string { return events.Fill(eventsv1.SubjectNotifyAnyAnswer, agency) }

// onResearchRequested tells the addressed agency of an information request through its own
// channel: one INFORMATION_REQUEST notification per request (dedupe key research:<id>),
// acknowledgement due by the request's deadline. An agency in no directory is recorded as
// unroutable (and the duty manager told); a request about a referral notify has not seen yet
// is retried, as a decision is.
func (s *Service) onResearchRequested(ctx context.Context, tx pgx.Tx, r *triagev1.InformationRequest) error {
	if r.GetId() == "" || r.GetReferralId() == "" || r.GetAgency() == "" || strings.TrimSpace(r.GetQuestion()) == "" {
		return fmt.Errorf("information request %q of referral %q: id, referral, agency and question are required", r.GetId(), r.GetReferralId())
	}
	rec, err := store.ReferralIn(ctx, tx, r.GetReferralId())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("information request %s for referral %s: %w", r.GetId(), r.GetReferralId(), errNotYetReceived)
	}
	if err != nil {
		return err
	}
	var ref intakev1.Referral
	if err := proto.Unmarshal(rec.Proto, &ref); err != nil {
		return fmt.Errorf("referral %s: decode: %w", rec.ID, err)
	}
	dir, err := s.directoryOf(ctx, tx, ref.GetPartnership())
	if err != nil {
		return err
	}
	now := s.now().UTC()
	research := &share.Research{RequestID: r.GetId(), Agency: r.GetAgency(), Question: r.GetQuestion(), AnswerPath: AnswerPath(r.GetId())}
	if r.GetDue() != nil {
		research.Due = r.GetDue().AsTime().UTC()
	}
	a, ok, err := s.agencyByID(ctx, tx, dir, r.GetAgency())
	if err != nil {
		return err
	}
	key := store.ResearchKey(r.GetId())
	if !ok {
		return s.unroutable(ctx, tx, dir, &ref, nil, research, "research:"+r.GetAgency(), notifyv1.NotificationKind_INFORMATION_REQUEST, key, now)
	}
	if a.Channel == channel.KindNATS {
		research.AnswerSubject = AnswerSubject(a.ID)
	}
	_, err = s.create(ctx, tx, spec{dir: dir, ref: &ref, agency: a, role: RoleResearch, kind: notifyv1.NotificationKind_INFORMATION_REQUEST,
		key: key, rag: "NONE", ackDue: research.Due, research: research, now: now})
	return err
}

// onResearchAnswered closes the request's notification when it is answered by any route
// (triage's API, or the bus through triage): an answer acknowledges the request, so an
// agency that answered in time is never escalated for not acknowledging it.
func (s *Service) onResearchAnswered(ctx context.Context, tx pgx.Tx, r *triagev1.InformationRequest) error {
	ns, err := store.ResearchNotifications(ctx, tx, r.GetId(), r.GetAgency())
	if err != nil {
		return err
	}
	for _, n := range ns {
		if err := store.MarkAnswered(ctx, tx, n.ID, s.now().UTC()); err != nil {
			return err
		}
		if err := s.acknowledgeIn(ctx, tx, n.ID, agencyActor(r.GetAgency(), "answered"), "information request answered by "+r.GetAnsweredBy()); err != nil {
			return err
		}
	}
	return nil
}

// acknowledgeIn records an acknowledgement within tx and emits it once.
func (s *Service) acknowledgeIn(ctx context.Context, tx pgx.Tx, id string, by auth.Actor, note string) error {
	n, already, err := store.Acknowledge(ctx, tx, id, s.now().UTC(), by.ID, truncate(note, 500))
	if err != nil || already {
		return err
	}
	return s.emit(ctx, tx, EventAcknowledged, n, n.Attempts, n.AckNote, by)
}

// agencyActor is an agency acting on its own channel, how it acted in brackets
// ("agency:rct-csc (bus)").
func agencyActor(agency, how string) auth.Actor {
	return auth.Actor{ID: "agency:" + agency + " (" + how + ")", Role: auth.ActorRoleAgency, Agency: agency}
}

// AnswerSubjects is where agencies on the bus answer information requests:
// mash.notify.<agency>.answer with a JSON body {"requestId": "...", "answer": "..."}.
const AnswerSubjects = eventsv1.SubjectNotifyAnyAnswer

// MaxAnswerChars bounds an answer on the bus, in characters.
const MaxAnswerChars = 10000

// BusAnswer is the body of an answer on the bus.
type BusAnswer struct {
	RequestID string `json:"requestId"`
	Answer    string `json:"answer"`
}

// answerInbox is the inbox consumer name answers are recorded under.
const answerInbox = "notify-answers"

// answerNamespace derives an answer's inbox key.
var answerNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:mash:notify:bus-answer"))

// answerKey identifies an answer by its content: the agency (from the subject), the request
// and the text. A redelivery, or the same reply published again (with or without a
// Nats-Msg-Id, inside the stream's dedupe window or not), has the same key, so it is one
// event.
func answerKey(agency, requestID, answer string) string {
	return uuid.NewSHA1(answerNamespace, []byte(agency+"\x00"+requestID+"\x00"+answer)).String()
}

// Redelivery of an answer whose request notify has not recorded yet (the agency answered
// before notify processed the request): a few tries, then it is dropped.
const (
	answerUnknownTries = 5
	answerUnknownDelay = 2 * time.Second
)

// answerListener takes answers agencies publish on their subject and hands each to triage as
// mash.research.answer_received, written to notify's outbox with its inbox row in one
// transaction. The subject names the agency, never the body, and only a request notify sent
// to that agency can be answered through it.
type answerListener struct {
	svc *Service
	js  jetstream.JetStream
	log *zap.Logger
}

func (l *answerListener) run(ctx context.Context) error {
	// No BackOff list: it would override AckWait (see pkg/events jetStreamConfig); delays
	// are given with NakWithDelay. MaxDeliver is unbounded because every reply that can never
	// apply is terminated explicitly: only a database fault redelivers, and an agency's answer
	// must outlast one.
	cons, err := l.js.CreateOrUpdateConsumer(ctx, events.AgencyStreamName, jetstream.ConsumerConfig{
		Durable: answerInbox, Description: "agencies' answers to information requests (inbox in schema notify)",
		FilterSubject: AnswerSubjects, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1,
		MaxAckPending: 64, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("notify answer consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { l.handle(ctx, msg) })
	if err != nil {
		return fmt.Errorf("notify answer consumer: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

// answerFault is a reply that can never apply: logged by ids and terminated.
type answerFault struct{ why string }

func (f answerFault) Error() string { return f.why }

func (l *answerListener) handle(ctx context.Context, msg jetstream.Msg) {
	agency := agencyOfAckSubject(msg.Subject())
	var seq uint64
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		seq, delivered = md.Sequence.Stream, md.NumDelivered
	}
	log := l.log.With(zap.String("agency", agency), zap.Uint64("stream_seq", seq))
	defer func() {
		// One bad reply must never stop the listener (or the process).
		if p := recover(); p != nil {
			log.Error("bus answer handler panicked; reply dropped", zap.Any("panic", p))
			_ = msg.TermWithReason("handler panicked")
		}
	}()
	requestID, dup, err := l.record(ctx, msg, agency, delivered)
	log = log.With(zap.String("request_id", requestID))
	var fault answerFault
	switch {
	case errors.As(err, &fault):
		l.svc.metrics.answerRejected.Inc()
		log.Warn("bus answer rejected", zap.String("reason", fault.why))
		l.svc.dropRefused(ctx, msg, log)
		_ = msg.TermWithReason(fault.why)
		return
	case errors.Is(err, errAnswerTooEarly):
		log.Info("bus answer names a request notify has not recorded yet; will retry", zap.Uint64("delivery", delivered))
		_ = msg.NakWithDelay(answerUnknownDelay)
		return
	case err != nil:
		log.Error("record bus answer; will retry", zap.Error(err))
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	if dup {
		log.Info("bus answer already recorded; repeat dropped")
	} else {
		l.svc.relay.Wake()
		l.svc.metrics.answers.Inc()
		log.Info("bus answer received")
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		log.Warn("ack of bus answer failed after commit; a redelivery is recognised by the inbox", zap.Error(err))
	}
}

var errAnswerTooEarly = errors.New("no notification of the information request yet")

// parseAnswer validates a reply's body; the error says what is wrong, never the content.
func parseAnswer(agency string, data []byte) (BusAnswer, error) {
	if agency == "" {
		return BusAnswer{}, answerFault{"subject names no agency"}
	}
	var b BusAnswer
	if err := json.Unmarshal(data, &b); err != nil {
		return BusAnswer{}, answerFault{`body is not JSON {"requestId": "...", "answer": "..."}`}
	}
	id, err := uuid.Parse(b.RequestID)
	if err != nil || len(b.RequestID) != 36 {
		return BusAnswer{}, answerFault{"requestId is missing or not a request id"}
	}
	b.RequestID = id.String()
	if strings.TrimSpace(b.Answer) == "" {
		return b, answerFault{`answer is missing or empty ("nothing known" is an answer)`}
	}
	if n := utf8.RuneCountInString(b.Answer); n > MaxAnswerChars {
		return b, answerFault{fmt.Sprintf("answer is %d characters: at most %d", n, MaxAnswerChars)}
	}
	// The API refuses such text naming the field; the bus refuses it the same way, rather
	// than let triage fail to store it.
	if p := text.Problem(b.Answer, true); p != "" {
		return b, answerFault{"answer " + p}
	}
	return b, nil
}

// record validates one reply and, in one transaction, writes its inbox row, the
// answer_received event and the request notification's acknowledgement. dup reports a
// reply recorded before. It returns the request id once known.
func (l *answerListener) record(ctx context.Context, msg jetstream.Msg, agency string, delivered uint64) (requestID string, dup bool, err error) {
	b, err := parseAnswer(agency, msg.Data())
	if err != nil {
		return b.RequestID, false, err
	}
	s := l.svc
	err = pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		ns, err := store.ResearchNotifications(ctx, tx, b.RequestID, agency)
		if err != nil {
			return err
		}
		if len(ns) == 0 {
			known, err := store.ResearchRequested(ctx, tx, b.RequestID)
			switch {
			case err != nil:
				return err
			case known:
				return answerFault{"the information request was not sent to this agency"}
			case delivered < answerUnknownTries:
				return errAnswerTooEarly
			}
			return answerFault{"no such information request"}
		}
		// The answer rests on the agency stream in clear: under the case's lock, an answer
		// about an erased case is deleted and refused (its event could never be sealed, and a
		// retry would never end), any other has its place recorded for a later erasure.
		place := agencyMessagePlace(msg)
		erased, err := events.CaseErased(ctx, tx, store.Schema, ns[0].ReferralID)
		if err != nil {
			return err
		}
		if erased {
			if place.Seq > 0 {
				if err := s.deleteAgencyMessage(ctx, place); err != nil {
					return err
				}
			}
			return answerFault{"the case was erased"}
		}
		if place.Seq > 0 {
			if err := store.RecordAgencyMessage(ctx, tx, ns[0].ID, ns[0].ReferralID, place, s.now().UTC()); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO notify.inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			answerInbox, answerKey(agency, b.RequestID, b.Answer))
		if err != nil {
			return fmt.Errorf("record answer in inbox: %w", err)
		}
		if tag.RowsAffected() == 0 {
			dup = true
			return nil
		}
		n := ns[0]
		env, raw, err := events.NewEnvelope(EventAnswerReceived, n.Partnership, n.ReferralID, 0, s.now().UTC(), events.AgencyActor(agency),
			&eventsv1.InformationAnswerReceived{RequestId: b.RequestID, Agency: agency, Answer: b.Answer, Channel: channel.KindNATS})
		if err != nil {
			return err
		}
		if raw, err = events.Seal(ctx, s.cipher, env); err != nil {
			return err
		}
		if err := events.InsertOutbox(ctx, tx, store.Schema, env, raw); err != nil {
			return err
		}
		for _, n := range ns {
			if err := store.MarkAnswered(ctx, tx, n.ID, s.now().UTC()); err != nil {
				return err
			}
			if err := s.acknowledgeIn(ctx, tx, n.ID, agencyActor(agency, "bus answer"), "answered on the bus"); err != nil {
				return err
			}
		}
		return nil
	})
	return b.RequestID, dup, err
}
