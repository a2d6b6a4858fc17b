package events

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/failpoint"
	"github.com/mash-hub/mash/pkg/tracing"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// ConsumerDDL returns the statements creating schema.inbox and schema.dead_letter. It is
// idempotent and meant to be embedded in the consuming service's migrations.
func ConsumerDDL(schema string) string {
	s := pgx.Identifier{schema}.Sanitize()
	return `CREATE TABLE IF NOT EXISTS ` + s + `.inbox (
	consumer    text NOT NULL,
	event_id    uuid NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer, event_id)
);
CREATE TABLE IF NOT EXISTS ` + s + `.dead_letter (
	id          bigserial PRIMARY KEY,
	consumer    text NOT NULL,
	event_id    uuid NOT NULL,
	subject     text NOT NULL,
	payload     bytea NOT NULL,
	error       text NOT NULL,
	attempts    integer NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	replayed_at timestamptz,
	replays     integer NOT NULL DEFAULT 0,
	UNIQUE (consumer, event_id)
);
`
}

// Handler applies one event inside tx, the transaction that also records the event id in
// the inbox. It must do all its database work through tx and must not commit it. An error
// (or a panic) rolls everything back and the event is retried later.
//
// With ConsumerConfig.BatchSize above 1, tx may also hold other events' work, applied
// before this one by the same handler: a handler may leave transaction-scoped settings (SET
// LOCAL, advisory locks) to the next event of the batch, and an error rolls back the whole
// batch, whose events are then applied one per transaction as without batching.
type Handler func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error

// ConsumerConfig configures a Consumer. Zero values take the defaults.
type ConsumerConfig struct {
	// Schema owns the inbox and dead_letter tables. Required.
	Schema string
	// Durable names the JetStream consumer and is the consumer column of inbox and
	// dead_letter rows. Required; letters, digits, '-' and '_'.
	Durable string
	// FilterSubjects selects the events, e.g. "mash.referral.>". Required.
	FilterSubjects []string
	// AckWait is how long the broker waits for an ack before redelivering; set it above the
	// handler's p99. Long handlers are kept alive with InProgress. Default 10s: a delivery
	// lost in transit (a broker node dying mid-delivery) comes again that soon.
	AckWait time.Duration
	// MaxDeliver is the number of deliveries before an event is dead-lettered. Default 8.
	MaxDeliver int
	// Backoff is the delay before delivery n+1 after delivery n failed; the last value
	// repeats. Default 1s, 2s, 5s, 10s, 30s, 1m, 2m.
	Backoff []time.Duration
	// MaxAckPending bounds unacknowledged deliveries. Default 64.
	MaxAckPending int
	// Concurrency is the number of events handled at once. Default 4.
	Concurrency int
	// SkipSubjectPrefixes are subjects inside FilterSubjects that carry no envelope for this
	// consumer (agency channel traffic on mash.notify.>, say): they are acknowledged unread
	// rather than dead-lettered as undecodable.
	SkipSubjectPrefixes []string
	// AfterCommit, if set, runs after a handler's transaction committed, e.g. to wake the
	// service's outbox relay for the events the handler wrote.
	AfterCommit func()
	// Cipher opens sealed payloads before the handler sees them. An event whose case was
	// erased is acknowledged without running the handler. Without a Cipher a sealed event
	// fails like any other and ends as a dead letter.
	Cipher PayloadCipher
	// BatchSize, above 1, lets one worker apply up to that many deliveries already received
	// in one transaction: an inbox row per event, one commit, then an ack per event. A batch
	// is only what is waiting when a worker is free, so a quiet consumer still handles each
	// event at once. A failing batch is rolled back and its events are applied one by one, so
	// a poison event retries and ends as a dead letter alone. Redeliveries and erasure events
	// are always applied one by one. Turn it on only for handlers that allow it (see Handler);
	// MaxAckPending should be at least Concurrency × BatchSize. Default 1 (off).
	BatchSize int
	// BatchScope, if set, runs around the handlers of one batch (BatchSize above 1), inside
	// its transaction: it calls apply, which runs every handler of the batch with the ctx it
	// is given, and may then finish their work before the commit. A handler may thus queue
	// its writes on ctx and BatchScope send them all in one round trip. An error from either
	// rolls the batch back, as a handler's error does. Events applied one by one are not
	// wrapped: a handler finds nothing queued on its ctx and writes at once.
	BatchScope func(ctx context.Context, tx pgx.Tx, apply func(context.Context) error) error
	// SkipErased acknowledges, unhandled, every event of a case the service erased (its
	// schema's erased_cases, ErasureDDL), except the erasure event itself: a payload opened
	// with a key cached before the erasure must not bring the case's data back.
	SkipErased bool
	// Erased, if set, records the events of an erased case instead of acknowledging them
	// unhandled: an event whose payload can never be read (its case key destroyed, or its
	// outbox row stripped by EraseCase), and, with SkipErased, any event of a case the
	// service erased. It runs in place of the handler, in the same transaction with the
	// inbox row, on the envelope alone (neither payload nor sealed payload). The audit log
	// sets it: the trail lists every event of a case, erased or not, and an event that was
	// still in an outbox when its case was erased must not vanish from it.
	Erased Handler
}

// Consumer defaults.
const (
	DefaultAckWait       = 10 * time.Second
	DefaultMaxDeliver    = 8
	DefaultMaxAckPending = 64
	DefaultConcurrency   = 4
)

// DefaultBackoff is the default retry schedule.
var DefaultBackoff = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute}

func (cfg ConsumerConfig) withDefaults() ConsumerConfig {
	if cfg.AckWait == 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = DefaultMaxDeliver
	}
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = DefaultMaxAckPending
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 1
	}
	return cfg
}

func (cfg ConsumerConfig) validate() error {
	var errs []error
	if cfg.Schema == "" {
		errs = append(errs, errors.New("Schema is empty: name the schema that owns the inbox"))
	}
	if cfg.Durable == "" || strings.ContainsFunc(cfg.Durable, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) {
		errs = append(errs, fmt.Errorf("Durable %q: use letters, digits, '-' and '_'", cfg.Durable))
	}
	if len(cfg.FilterSubjects) == 0 {
		errs = append(errs, errors.New("FilterSubjects is empty: name the subjects to consume, e.g. mash.referral.>"))
	}
	if cfg.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("AckWait %s: use at least 1s", cfg.AckWait))
	}
	if cfg.MaxDeliver < 1 || cfg.MaxAckPending < 1 || cfg.Concurrency < 1 || cfg.BatchSize < 1 {
		errs = append(errs, errors.New("MaxDeliver, MaxAckPending, Concurrency and BatchSize must be positive"))
	}
	for _, d := range cfg.Backoff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("Backoff %v: every delay must be positive", cfg.Backoff))
			break
		}
	}
	return errors.Join(errs...)
}

// Consumer handles the events of one durable JetStream consumer, each in a Postgres
// transaction that records its event id in the inbox.
type Consumer struct {
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	stream string
	cfg    ConsumerConfig
	h      Handler
	log    *zap.Logger
	m      *Metrics

	inboxSQL, inboxBatchSQL, deadLetterSQL string
}

// NewConsumer checks cfg and returns a consumer of stream; Run creates or updates the
// JetStream consumer.
func NewConsumer(pool *pgxpool.Pool, js jetstream.JetStream, stream string, cfg ConsumerConfig, h Handler, log *zap.Logger, m *Metrics) (*Consumer, error) {
	if pool == nil || js == nil || h == nil || stream == "" {
		return nil, errors.New("new consumer: pool, JetStream, stream and handler are required")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new consumer %s: %w", cfg.Durable, err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := pgx.Identifier{cfg.Schema}.Sanitize()
	m.trackDeadLetters(pool, cfg.Schema)
	m.trackLag(js, stream, cfg.Durable)
	return &Consumer{
		pool: pool, js: js, stream: stream, cfg: cfg, h: h, m: m,
		log:      log.With(zap.String("consumer", cfg.Durable)),
		inboxSQL: `INSERT INTO ` + s + `.inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		// The ids come back as text in the canonical form uuid.Parse(...).String() gives.
		inboxBatchSQL: `INSERT INTO ` + s + `.inbox (consumer, event_id) SELECT $1, id FROM unnest($2::uuid[]) id
			ON CONFLICT DO NOTHING RETURNING event_id::text`,
		// A letter that fails again after a replay is the same letter: count on, and show it
		// as not replayed.
		deadLetterSQL: `INSERT INTO ` + s + `.dead_letter (consumer, event_id, subject, payload, error, attempts)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (consumer, event_id) DO UPDATE SET subject = EXCLUDED.subject, payload = EXCLUDED.payload,
				error = EXCLUDED.error, attempts = dead_letter.attempts + EXCLUDED.attempts, replayed_at = NULL`,
	}, nil
}

// jetStreamConfig is the durable consumer's configuration.
//
// The retry schedule is applied with NakWithDelay, not the consumer's BackOff field: a
// BackOff list overrides AckWait with BackOff[0] (nats-server consumer.go, "If BackOff was
// specified that will override the AckWait"), so a handler running longer than the first
// delay would be redelivered while it still runs.
func (c *Consumer) jetStreamConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        c.cfg.Durable,
		Description:    "mash consumer " + c.cfg.Durable + " (inbox in schema " + c.cfg.Schema + ")",
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.cfg.AckWait,
		MaxDeliver:     c.cfg.MaxDeliver,
		MaxAckPending:  c.cfg.MaxAckPending,
		FilterSubjects: c.cfg.FilterSubjects,
	}
}

// Run creates or updates the durable consumer and handles events until ctx is cancelled.
// It then stops pulling, finishes the events already received (handlers get AckWait more
// before their context is cancelled) and returns nil. It returns an error when the
// consumer cannot be set up or the broker ends it (consumer deleted, connection closed).
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.stream, c.jetStreamConfig())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consumer %s: create on stream %s: %w", c.cfg.Durable, c.stream, err)
	}
	// Short pull requests: after a broker node dies (or a consumer leader moves) a new
	// request goes out within seconds instead of the default 30 s expiry.
	// Batching workers take what is buffered, so buffer enough to fill a batch.
	it, err := cons.Messages(jetstream.PullMaxMessages(max(2*c.cfg.Concurrency, 2*c.cfg.BatchSize)), jetstream.PullExpiry(5*time.Second),
		jetstream.WithMessagesErrOnMissingHeartbeat(false))
	if err != nil {
		return fmt.Errorf("consumer %s: start pulling: %w", c.cfg.Durable, err)
	}
	c.log.Info("consumer started", zap.String("stream", c.stream), zap.Strings("subjects", c.cfg.FilterSubjects))

	// Handlers outlive ctx so in-flight events commit and ack; after a grace period they
	// are cancelled too, so shutdown is bounded.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	var grace atomic.Pointer[time.Timer]
	stopGrace := context.AfterFunc(ctx, func() { grace.Store(time.AfterFunc(c.cfg.AckWait, hcancel)) })
	defer func() {
		stopGrace()
		if t := grace.Load(); t != nil {
			t.Stop()
		}
	}()

	// Without batching one unbuffered queue feeds every worker: a delivery waits in the
	// iterator, not here. With batching each worker has its own queue, and every event of a
	// case goes to the same worker (partition): two batches running at once then never
	// lock the same case's rows in opposite orders (a deadlock costs deadlock_timeout and
	// the batch), and one case's events are applied in the order they arrived. A queue's
	// buffer is what its worker finds waiting and takes as one batch.
	queues := make([]chan jetstream.Msg, 1)
	if c.cfg.BatchSize > 1 {
		queues = make([]chan jetstream.Msg, c.cfg.Concurrency)
	}
	for i := range queues {
		queues[i] = make(chan jetstream.Msg, c.cfg.BatchSize-1)
	}
	dispatch := func(msg jetstream.Msg) { queues[partition(msg.Data(), len(queues))] <- msg }
	var wg sync.WaitGroup
	for i := range c.cfg.Concurrency {
		work := queues[i%len(queues)]
		wg.Go(func() {
			for msg := range work {
				if c.cfg.BatchSize == 1 {
					c.process(hctx, ctx, msg)
					continue
				}
				c.processBatch(hctx, ctx, takeWaiting(work, msg, c.cfg.BatchSize))
			}
		})
	}
	var runErr, lastErr error
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err == nil {
			dispatch(msg)
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			runErr = fmt.Errorf("consumer %s: message iterator closed: %w", c.cfg.Durable, errors.Join(err, lastErr))
			break
		}
		lastErr = err
		c.log.Warn("consumer pull failed", zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	// Hand the buffered messages to the workers rather than leave them to AckWait.
	it.Drain()
	for runErr == nil {
		msg, err := it.Next(jetstream.NextMaxWait(c.cfg.AckWait))
		if err != nil {
			break
		}
		dispatch(msg)
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if runErr == nil {
		c.log.Info("consumer stopped")
	}
	return runErr
}

// process handles one delivery to its end: ack, nak with delay, or dead letter and term.
// ctx is the handlers' context; run is Run's, whose end stops waiting for the database.
func (c *Consumer) process(ctx, run context.Context, msg jetstream.Msg) {
	start := time.Now()
	attempt := 1
	if md, err := msg.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	if failpoint.Armed("consumer.lose." + c.cfg.Durable) {
		// Tests only: this consumer never sees the event, as if the broker lost it for
		// this consumer alone; only a reconciler can make up for it.
		c.ack(ctx, msg, c.log)
		return
	}
	for _, p := range c.cfg.SkipSubjectPrefixes {
		if strings.HasPrefix(msg.Subject(), p) {
			c.ack(ctx, msg, c.log)
			c.m.consumedOne(c.cfg.Durable, resultSkipped, time.Since(start))
			return
		}
	}
	stopBeat := c.keepAlive(msg)
	defer stopBeat()

	env, err := decodeEnvelope(msg.Data())
	if err != nil {
		eventID := poisonEventID(msg)
		c.log.Warn("undecodable event", zap.String("event_id", eventID), zap.String("subject", msg.Subject()), zap.Error(err))
		c.deadLetterAndTerm(ctx, run, msg, eventID, attempt, fmt.Errorf("undecodable envelope: %w", err), start)
		return
	}
	log := c.log.With(zap.String("event_id", env.EventId), zap.String("subject", msg.Subject()))
	ctx, span := c.startSpan(ctx, msg, env, attempt)
	defer span.End()
	err = open(ctx, c.cfg.Cipher, env)
	erased := errors.Is(err, ErrPayloadErased)
	if erased && c.cfg.Erased == nil {
		// Nothing can ever read it again: retrying would only end in a dead letter that
		// can never be replayed either.
		log.Info("event of an erased case acknowledged unread", zap.String("referral_id", env.GetReferralId()))
		c.ack(ctx, msg, log)
		c.m.consumedOne(c.cfg.Durable, resultErased, time.Since(start))
		return
	}
	var dup bool
	if erased {
		// Recorded without its payload; a failure here (the database) is retried like any.
		log.Info("event of an erased case recorded without its payload", zap.String("referral_id", env.GetReferralId()))
		dup, err = c.apply(ctx, run, env, true)
	} else if err == nil {
		dup, err = c.apply(ctx, run, env, false)
	}
	if err != nil {
		span.SetStatus(codes.Error, "handler failed")
	}
	switch {
	case err == nil:
		c.ack(ctx, msg, log)
		result := resultOK
		if dup {
			result = resultDuplicate
			log.Debug("duplicate event acknowledged")
		}
		c.m.consumedOne(c.cfg.Durable, result, time.Since(start))
	case attempt >= c.cfg.MaxDeliver:
		log.Warn("event failed its last delivery", zap.Int("attempt", attempt), zap.Error(err))
		c.deadLetterAndTerm(ctx, run, msg, env.EventId, attempt, err, start)
	default:
		delay := c.cfg.Backoff[min(attempt, len(c.cfg.Backoff))-1]
		log.Info("event failed; will retry", zap.Int("attempt", attempt), zap.Duration("delay", delay), zap.Error(err))
		if err := msg.NakWithDelay(delay); err != nil {
			log.Warn("nak failed; the broker redelivers after AckWait", zap.Error(err))
		}
		c.m.consumedOne(c.cfg.Durable, resultRetry, time.Since(start))
	}
}

// startSpan starts the consumer span of one delivery, a child of the producer span whose
// context came in the message's headers (a root when none did), as the service whose
// tracer provider Run's context carries. Attributes are ids only.
func (c *Consumer) startSpan(ctx context.Context, msg jetstream.Msg, env *eventsv1.Envelope, attempt int) (context.Context, trace.Span) {
	if !tracing.On(ctx) {
		// Tracing off: no header is read and nothing is allocated; the span is ctx's no-op.
		return ctx, trace.SpanFromContext(ctx)
	}
	return tracing.Tracer(ctx).Start(tracing.Extract(ctx, msg.Headers()), "consume "+msg.Subject(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.operation", "process"),
			attribute.String("messaging.destination.name", msg.Subject()), attribute.String("messaging.message.id", env.GetEventId()),
			attribute.String("messaging.consumer.group.name", c.cfg.Durable), tracing.AttrConsumer.String(c.cfg.Durable),
			tracing.AttrEventID.String(env.GetEventId()), tracing.AttrReferralID.String(env.GetReferralId()),
			attribute.Int("mash.attempt", attempt)))
}

// apply runs the handler and records the event in the inbox, in one transaction. It
// reports dup when the inbox already had the event, in which case the handler did not run.
// With erased (the payload could not be opened) it runs the Erased handler instead.
func (c *Consumer) apply(ctx, run context.Context, env *eventsv1.Envelope, erased bool) (dup bool, err error) {
	tx, err := c.begin(ctx, run)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // no-op after Commit
	tag, err := tx.Exec(ctx, c.inboxSQL, c.cfg.Durable, env.EventId)
	if err != nil {
		return false, fmt.Errorf("record event in inbox: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return true, tx.Commit(ctx)
	}
	if c.cfg.SkipErased && !erased && env.GetReferralId() != "" && env.GetType() != CaseErasedSubject {
		var err error
		erased, err = CaseErased(ctx, tx, c.cfg.Schema, env.GetReferralId())
		if err != nil {
			return false, err
		}
		if erased && c.cfg.Erased == nil {
			// The inbox row stays: a redelivery stops there.
			return true, tx.Commit(ctx)
		}
	}
	h := c.h
	if erased {
		h = c.cfg.Erased
		env = stripPayload(env)
	}
	if err := callHandler(ctx, h, tx, env); err != nil {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	failpoint.InjectFor("consumer.after-commit", c.cfg.Durable)
	if c.cfg.AfterCommit != nil {
		c.cfg.AfterCommit()
	}
	return false, nil
}

// callHandler turns a handler's panic into an error, so one bad event cannot crash the
// process.
func callHandler(ctx context.Context, h Handler, tx pgx.Tx, env *eventsv1.Envelope) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return h(ctx, tx, env)
}

// begin starts a transaction, waiting out a database outage while Run is running: an
// unreachable database must not use up an event's deliveries.
func (c *Consumer) begin(ctx, run context.Context) (pgx.Tx, error) {
	delay := 100 * time.Millisecond
	for {
		tx, err := c.pool.Begin(ctx)
		if err == nil {
			return tx, nil
		}
		if ctx.Err() != nil || run.Err() != nil {
			return nil, fmt.Errorf("begin: %w", err)
		}
		c.log.Warn("database unavailable; waiting", zap.Duration("retry_in", delay), zap.Error(err))
		select {
		case <-run.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// deadLetterAndTerm records the delivery in dead_letter, then terminates it. Without the
// row the message is not terminated: it is nakked so the record is retried.
func (c *Consumer) deadLetterAndTerm(ctx, run context.Context, msg jetstream.Msg, eventID string, attempt int, cause error, start time.Time) {
	log := c.log.With(zap.String("event_id", eventID), zap.String("subject", msg.Subject()))
	err := c.writeDeadLetter(ctx, run, eventID, msg.Subject(), msg.Data(), cause.Error(), attempt)
	if err != nil {
		log.Error("could not write dead letter; event left for redelivery (or the reconciler when deliveries are used up)", zap.Error(err))
		_ = msg.NakWithDelay(c.cfg.Backoff[0])
		c.m.consumedOne(c.cfg.Durable, resultRetry, time.Since(start))
		return
	}
	reason := cause.Error()
	if i := strings.IndexByte(reason, '\n'); i >= 0 {
		reason = reason[:i]
	}
	if err := msg.TermWithReason(truncate(reason, 200)); err != nil {
		log.Warn("term failed after dead letter was written", zap.Error(err))
	}
	log.Warn("event dead-lettered", zap.Int("attempts", attempt))
	c.m.consumedOne(c.cfg.Durable, resultDeadLetter, time.Since(start))
}

func (c *Consumer) writeDeadLetter(ctx, run context.Context, eventID, subject string, payload []byte, errText string, attempts int) error {
	tx, err := c.begin(ctx, run)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, c.deadLetterSQL, c.cfg.Durable, eventID, subject, payload, errText, attempts); err != nil {
		return fmt.Errorf("insert dead letter: %w", err)
	}
	return tx.Commit(ctx)
}

func (c *Consumer) ack(ctx context.Context, msg jetstream.Msg, log *zap.Logger) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		// The effect is committed; a redelivery finds the inbox row.
		log.Warn("ack failed after commit; a redelivery will be skipped as duplicate", zap.Error(err))
	}
}

// keepAlive tells the broker the deliveries are in progress every AckWait/3 until stopped.
func (c *Consumer) keepAlive(msgs ...jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, msg := range msgs {
					_ = msg.InProgress()
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// poisonEventID names an undecodable message: its Nats-Msg-Id up to the first '.' (a
// replay's id starts with the event id) if that is a UUID, else a new one.
func poisonEventID(msg jetstream.Msg) string {
	id, _, _ := strings.Cut(msg.Headers().Get(jetstream.MsgIDHeader), ".")
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	if u, err := uuid.NewV7(); err == nil {
		return u.String()
	}
	return uuid.NewString()
}
