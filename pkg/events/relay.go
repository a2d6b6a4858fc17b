package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/failpoint"
	"github.com/mash-hub/mash/pkg/tracing"
)

// RelayConfig configures a Relay. Zero values take the defaults.
type RelayConfig struct {
	// Schema owns the outbox table. Required.
	Schema string
	// BatchSize is the most rows one round claims. Default 256.
	BatchSize int
	// PollInterval is the fallback when no Wake comes (another process wrote the row, or a
	// Wake was lost in a crash). Default 1s.
	PollInterval time.Duration
	// PublishTimeout bounds the wait for a round's acks. Default 5s.
	PublishTimeout time.Duration
	// Retention is how long published rows are kept for the reconciler and replays; pruned
	// hourly. Default 7 days; negative keeps them forever.
	Retention time.Duration
	// Linger is how long the relay waits, after a round big enough for an atomic batch,
	// before it claims again, so that under load rows gather into fewer, larger batches.
	// Staging a batch costs the broker about 1.5 ms of CPU whatever its size; at 5,000
	// rows/s, back to back rounds of about 40 rows spent more of it staging batches than
	// storing events.
	// Quiet rounds never linger, so at ordinary rates events go at once. Default 20ms;
	// negative turns it off.
	Linger time.Duration
	// VacuumEvery is how many rows the relay marks published between its own VACUUMs of
	// the outbox. Marking a row leaves a dead entry in the partial index the claim scans in
	// id order, and every claim walks all of them until a vacuum removes them: measured
	// with autovacuum off, a claim took 7 ms at a million published rows, 0.05 ms after a
	// vacuum. The relay does not count on autovacuum being on, or prompt on a queue this
	// busy. Default 100,000 (claims then walk at most about 250 index pages); negative
	// turns it off.
	VacuumEvery int
}

// Relay defaults and fixed limits.
const (
	DefaultRelayBatchSize      = 256
	DefaultRelayPollInterval   = time.Second
	DefaultRelayPublishTimeout = 5 * time.Second
	DefaultRelayRetention      = 7 * 24 * time.Hour
	DefaultRelayLinger         = 20 * time.Millisecond
	DefaultRelayVacuumEvery    = 100_000

	// relayDrainTimeout bounds the final rounds after Run's context is cancelled.
	relayDrainTimeout = 5 * time.Second
	// relayDBTimeout is the time a round gets for its SQL on top of PublishTimeout.
	relayDBTimeout     = 10 * time.Second
	relayPruneInterval = time.Hour
	// relayVacuumTimeout bounds one vacuum of the outbox, which goes at autovacuum's pace.
	relayVacuumTimeout = 15 * time.Minute
	// publishWindow bounds the publishes awaiting an ack at once.
	publishWindow = 128
	// atomicBatchMin is the smallest round published as one atomic batch. The server stores a
	// batch with one fsync instead of one per event, but stages it first at a cost of about
	// two milliseconds of CPU; measured on the embedded server with SyncAlways, a batch costs
	// less than single publishes from about 16 events (at 32, 61 against 124 µs of CPU per
	// event; at 256, 21 against 144). Below this, rounds are published event by event.
	atomicBatchMin = 32
)

// Atomic batch publishing (nats-server 2.12 and later): headers and the error the server
// answers when the stream does not allow it.
const (
	batchIDHeader           = "Nats-Batch-Id"
	batchSequenceHeader     = "Nats-Batch-Sequence"
	batchCommitHeader       = "Nats-Batch-Commit"
	errCodeAtomicPublishOff = 10174
)

var (
	// errAtomicUnsupported means the server or stream does not take atomic batches.
	errAtomicUnsupported = errors.New("the server does not take atomic batches")
	// errBatchRefused means the server answered and refused the batch, say for an event it
	// already holds.
	errBatchRefused = errors.New("atomic batch refused")
)

// Relay publishes the rows of one outbox table to JetStream. Any number of relays may run
// on the same table, in one process or many: each round claims rows with SKIP LOCKED.
type Relay struct {
	pool *pgxpool.Pool
	pub  jetstream.JetStream
	cfg  RelayConfig
	log  *zap.Logger
	m    *Metrics
	wake chan struct{}

	claimSQL, markSQL, backlogSQL, pruneSQL, vacuumSQL string
	// sinceVacuum counts rows marked since the last vacuum was asked for; only the
	// goroutine running rounds touches it. vacuumDue asks the vacuum goroutine for one.
	sinceVacuum int
	vacuumDue   chan struct{}

	degraded bool // only Run's goroutine touches it
	// atomicOff is set once the server refused an atomic batch as unsupported (an older
	// server, or a stream created without it); every round then goes event by event.
	atomicOff atomic.Bool
}

type outboxRow struct {
	id      int64
	eventID string
	subject string
	payload []byte
	// trace is the trace context of the request or event that wrote the row ("" when
	// tracing was off).
	trace string
}

type roundResult struct{ claimed, acked int }

// NewRelay checks cfg and returns a relay for cfg.Schema's outbox. It publishes through a
// JetStream handle of its own on js's connection, so its ack timeouts and pending window
// do not mix with other publishers.
func NewRelay(pool *pgxpool.Pool, js jetstream.JetStream, cfg RelayConfig, log *zap.Logger, m *Metrics) (*Relay, error) {
	if pool == nil || js == nil || js.Conn() == nil {
		return nil, errors.New("new relay: pool and JetStream connection are required")
	}
	if cfg.Schema == "" {
		return nil, errors.New("new relay: Schema is empty: name the schema that owns the outbox")
	}
	if cfg.BatchSize < 0 || cfg.PollInterval < 0 || cfg.PublishTimeout < 0 {
		return nil, fmt.Errorf("new relay %s: BatchSize, PollInterval and PublishTimeout must not be negative", cfg.Schema)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultRelayBatchSize
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultRelayPollInterval
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = DefaultRelayPublishTimeout
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRelayRetention
	}
	if cfg.Linger == 0 {
		cfg.Linger = DefaultRelayLinger
	}
	if cfg.VacuumEvery == 0 {
		cfg.VacuumEvery = DefaultRelayVacuumEvery
	}
	if log == nil {
		log = zap.NewNop()
	}
	pub, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout),
		jetstream.WithPublishAsyncMaxPending(4*publishWindow))
	if err != nil {
		return nil, fmt.Errorf("new relay %s: jetstream publisher: %w", cfg.Schema, err)
	}
	t := pgx.Identifier{cfg.Schema}.Sanitize() + ".outbox"
	return &Relay{
		pool:      pool,
		pub:       pub,
		cfg:       cfg,
		log:       log.With(zap.String("schema", cfg.Schema)),
		m:         m,
		wake:      make(chan struct{}, 1),
		vacuumDue: make(chan struct{}, 1),
		// Never a cursor on id: a row with a lower id can commit after a higher one.
		claimSQL:   `SELECT id, event_id::text, subject, payload, coalesce(trace_context, '') FROM ` + t + ` WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
		markSQL:    `UPDATE ` + t + ` SET published_at = now() WHERE id = ANY($1)`,
		backlogSQL: `SELECT count(*) FROM ` + t + ` WHERE published_at IS NULL`,
		pruneSQL:   `DELETE FROM ` + t + ` WHERE id IN (SELECT id FROM ` + t + ` WHERE published_at < now() - make_interval(secs => $2) LIMIT $1)`,
		// SKIP_LOCKED: if autovacuum is already at it, this one is not needed. TRUNCATE
		// false: cutting the table's tail would take a lock that stops intake's inserts.
		vacuumSQL: `VACUUM (SKIP_LOCKED, TRUNCATE false) ` + t,
	}, nil
}

// Wake asks the relay to run a round now. It never blocks; wakes that arrive while one is
// pending coalesce. Call it right after committing a transaction that wrote outbox rows.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx is cancelled, then drains: final rounds on a fresh context until
// nothing is pending or 5s have passed. It returns nil; failures are logged and retried.
func (r *Relay) Run(ctx context.Context) error {
	r.log.Info("outbox relay started")
	// Vacuuming takes from milliseconds to seconds; it runs beside the rounds, not in
	// their way.
	vacuumCtx, stopVacuum := context.WithCancel(ctx)
	vacuumDone := make(chan struct{})
	go func() {
		defer close(vacuumDone)
		r.vacuumLoop(vacuumCtx)
	}()
	defer func() {
		stopVacuum()
		<-vacuumDone
	}()
	timer := time.NewTimer(r.cfg.PollInterval)
	defer timer.Stop()
	lastPrune := time.Time{}
	lastBacklog := time.Time{}
	for {
		healthy, last := r.catchUp(ctx)
		// Counting the backlog is a query of its own: under load, wakes come every few
		// hundred microseconds, so the gauge is refreshed at most once per poll interval.
		if !healthy || time.Since(lastBacklog) >= r.cfg.PollInterval {
			r.updateBacklog(ctx)
			lastBacklog = time.Now()
		}
		if time.Since(lastPrune) >= relayPruneInterval && ctx.Err() == nil {
			r.prune(ctx)
			lastPrune = time.Now()
		}
		if healthy && r.lingers(last) {
			// Wakes keep arriving meanwhile and coalesce; the next round takes what gathered.
			select {
			case <-ctx.Done():
				return r.drain(ctx)
			case <-time.After(r.cfg.Linger):
			}
		}
		timer.Reset(r.cfg.PollInterval)
		wake := r.wake
		if !healthy {
			// During a broker or database outage wakes would only repeat the failure.
			wake = nil
		}
		select {
		case <-ctx.Done():
			return r.drain(ctx)
		case <-wake:
		case <-timer.C:
		}
	}
}

// catchUp runs rounds while they come back full and fully acknowledged. It reports false
// when a round failed or left rows unacknowledged, and returns the last round's result.
func (r *Relay) catchUp(ctx context.Context) (bool, roundResult) {
	var res roundResult
	for ctx.Err() == nil {
		// A round runs to its end even if ctx is cancelled meanwhile, so what was published
		// is also marked.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.PublishTimeout+relayDBTimeout)
		var err error
		res, err = r.round(rctx, r.cfg.PublishTimeout)
		cancel()
		if err != nil || res.acked < res.claimed {
			r.setDegraded(err, res)
			return false, res
		}
		r.setDegraded(nil, res)
		if res.claimed < r.cfg.BatchSize {
			return true, res
		}
	}
	return true, res
}

// lingers reports whether the relay waits before its next round after last: only after a
// round that went as an atomic batch, since waiting saves batch staging and nothing else.
func (r *Relay) lingers(last roundResult) bool {
	return r.cfg.Linger > 0 && last.claimed >= atomicBatchMin && !r.atomicOff.Load()
}

func (r *Relay) setDegraded(err error, res roundResult) {
	failed := err != nil || res.acked < res.claimed
	switch {
	case failed && !r.degraded:
		r.log.Warn("outbox relay round incomplete; unpublished rows stay for the next round",
			zap.Int("claimed", res.claimed), zap.Int("acked", res.acked), zap.Error(err))
	case failed:
		r.log.Debug("outbox relay round incomplete", zap.Int("claimed", res.claimed), zap.Int("acked", res.acked), zap.Error(err))
	case r.degraded:
		r.log.Info("outbox relay recovered", zap.Int("acked", res.acked))
	}
	r.degraded = failed
}

// drain runs final rounds after Run's context is cancelled.
func (r *Relay) drain(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), relayDrainTimeout)
	defer cancel()
	for {
		deadline, _ := ctx.Deadline()
		remaining := time.Until(deadline)
		if remaining <= 0 {
			break
		}
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), remaining+time.Second)
		res, err := r.round(rctx, min(r.cfg.PublishTimeout, remaining))
		rcancel()
		if err != nil {
			r.log.Warn("outbox relay drain round failed", zap.Error(err))
			break
		}
		if res.claimed == 0 || res.acked == 0 {
			break // nothing pending, or no progress to be had
		}
	}
	n, err := r.Backlog(ctx)
	if err == nil {
		r.m.setBacklog(r.cfg.Schema, n)
	}
	r.log.Info("outbox relay stopped", zap.Int64("backlog", n))
	return nil
}

// round claims up to BatchSize unpublished rows, publishes them, and marks the acked ones,
// all in one transaction: the row locks keep other relays off these rows meanwhile.
func (r *Relay) round(ctx context.Context, publishTimeout time.Duration) (roundResult, error) {
	var res roundResult
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("relay %s: begin: %w", r.cfg.Schema, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // no-op after Commit
	rows, err := tx.Query(ctx, r.claimSQL, r.cfg.BatchSize)
	if err != nil {
		return res, fmt.Errorf("relay %s: claim rows: %w", r.cfg.Schema, err)
	}
	batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
		var o outboxRow
		err := row.Scan(&o.id, &o.eventID, &o.subject, &o.payload, &o.trace)
		return o, err
	})
	if err != nil {
		return res, fmt.Errorf("relay %s: claim rows: %w", r.cfg.Schema, err)
	}
	res.claimed = len(batch)
	if len(batch) == 0 {
		return res, tx.Commit(ctx)
	}
	acked, pubErr := r.publish(ctx, batch, publishTimeout)
	failpoint.InjectFor("relay.after-publish", r.cfg.Schema)
	if len(acked) > 0 {
		if _, err := tx.Exec(ctx, r.markSQL, acked); err != nil {
			return res, fmt.Errorf("relay %s: mark %d rows published: %w", r.cfg.Schema, len(acked), err)
		}
	}
	failpoint.InjectFor("relay.after-mark", r.cfg.Schema)
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("relay %s: commit: %w", r.cfg.Schema, err)
	}
	res.acked = len(acked)
	r.countForVacuum(res.acked)
	r.m.addPublished(r.cfg.Schema, res.acked)
	r.m.addPublishErrors(r.cfg.Schema, res.claimed-res.acked)
	if pubErr != nil {
		return res, pubErr
	}
	return res, nil
}

// publish sends a round and returns the ids of the rows JetStream acknowledged (duplicates
// included), and the first failure if any row was not acknowledged. A round of at least
// atomicBatchMin rows goes as one atomic batch: all stored, with one fsync, or none. When
// the batch is refused (an event of it already stored, as after a relay killed between
// publish and mark; or no support on the server), the round goes event by event, which is
// always correct: the stream's Msg-Id dedupe absorbs what is already stored. When the broker
// does not answer, nothing is acknowledged and the round is retried later.
func (r *Relay) publish(ctx context.Context, batch []outboxRow, timeout time.Duration) ([]int64, error) {
	if len(batch) >= atomicBatchMin && !r.atomicOff.Load() && !failpoint.Armed("relay.lose."+r.cfg.Schema) {
		err := r.publishAtomic(ctx, batch, timeout)
		if err == nil {
			acked := make([]int64, len(batch))
			for i, row := range batch {
				acked[i] = row.id
			}
			return acked, nil
		}
		switch {
		case errors.Is(err, errAtomicUnsupported):
			r.atomicOff.Store(true)
			r.log.Info("outbox relay publishes event by event", zap.Error(err))
		case errors.Is(err, errBatchRefused):
			r.log.Debug("atomic batch refused; publishing its events one by one", zap.Int("events", len(batch)), zap.Error(err))
		default:
			// No answer from the broker: publishing one by one would only wait as long
			// again. Nothing is marked; the round is retried as the relay recovers.
			return nil, err
		}
	}
	return r.publishEach(ctx, batch, timeout)
}

// publishAtomic sends batch as one atomic batch and waits for the server to commit it.
func (r *Relay) publishAtomic(ctx context.Context, batch []outboxRow, timeout time.Duration) error {
	nc := r.pub.Conn()
	id := uuid.NewString()
	spans := make([]trace.Span, len(batch))
	msg := func(i int) *nats.Msg {
		m := nats.NewMsg(batch[i].subject)
		m.Data = batch[i].payload
		spans[i] = startPublish(ctx, batch[i], m.Header)
		m.Header.Set(jetstream.MsgIDHeader, batch[i].eventID)
		m.Header.Set(batchIDHeader, id)
		m.Header.Set(batchSequenceHeader, strconv.Itoa(i+1))
		return m
	}
	var err error
	defer func() {
		for _, sp := range spans {
			endPublish(sp, err)
		}
	}()
	last := len(batch) - 1
	for i := range last {
		if err = nc.PublishMsg(msg(i)); err != nil {
			return fmt.Errorf("atomic batch of %d: publish event %s: %w", len(batch), batch[i].eventID, err)
		}
	}
	commit := msg(last)
	commit.Header.Set(batchCommitHeader, "1")
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := nc.RequestMsgWithContext(wctx, commit)
	if err != nil {
		return fmt.Errorf("atomic batch of %d: commit: %w", len(batch), err)
	}
	var ack batchAck
	if err = json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("atomic batch of %d: read the commit's ack: %w", len(batch), err)
	}
	switch {
	case ack.Error != nil && ack.Error.ErrCode == errCodeAtomicPublishOff:
		err = fmt.Errorf("%w: %s", errAtomicUnsupported, ack.Error.Description)
	case ack.Error != nil:
		err = fmt.Errorf("%w: %d events: %s (%d)", errBatchRefused, len(batch), ack.Error.Description, ack.Error.ErrCode)
	case ack.Batch != id || ack.Count != len(batch):
		// A server without atomic batches stores each message as it comes and acks the last
		// alone; the round is then republished event by event, deduplicated.
		err = fmt.Errorf("%w: the commit was acknowledged as a single message", errAtomicUnsupported)
	}
	return err
}

// startPublish starts the producer span of row, a child of the span that wrote it, and
// writes its context into h, so the consumers' spans are its children. A row written with
// no trace context (tracing off) gets neither span nor header: nil.
func startPublish(ctx context.Context, row outboxRow, h nats.Header) trace.Span {
	if row.trace == "" {
		return nil
	}
	ctx, sp := tracing.Tracer(ctx).Start(tracing.Decode(ctx, row.trace), "publish "+row.subject, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.operation", "publish"),
			attribute.String("messaging.destination.name", row.subject), attribute.String("messaging.message.id", row.eventID),
			tracing.AttrEventID.String(row.eventID)))
	tracing.Inject(ctx, h)
	return sp
}

// endPublish ends a producer span once its event was acknowledged (err nil) or not.
func endPublish(sp trace.Span, err error) {
	if sp == nil {
		return
	}
	if err != nil {
		sp.SetStatus(codes.Error, "not acknowledged")
	}
	sp.End()
}

// batchAck is the server's answer to an atomic batch's commit.
type batchAck struct {
	Error *struct {
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Batch string `json:"batch"`
	Count int    `json:"count"`
}

// publishEach sends batch event by event, asynchronously with at most publishWindow acks
// outstanding.
func (r *Relay) publishEach(ctx context.Context, batch []outboxRow, timeout time.Duration) ([]int64, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, len(batch))
	spans := make([]trace.Span, len(batch))
	acked := make([]int64, 0, len(batch))
	var firstErr error
	fail := func(i int, err error) {
		endPublish(spans[i], err)
		spans[i] = nil
		if firstErr == nil {
			firstErr = fmt.Errorf("publish event %s on %s: %w", batch[i].eventID, batch[i].subject, err)
		}
	}
	wait := func(i int) {
		if futures[i] == nil {
			return
		}
		select {
		case <-futures[i].Ok():
			acked = append(acked, batch[i].id)
			endPublish(spans[i], nil)
		case err := <-futures[i].Err():
			fail(i, err)
		case <-wctx.Done():
			fail(i, fmt.Errorf("no ack: %w", wctx.Err()))
		}
	}
	next := 0
	for i, row := range batch {
		for ; i-next >= publishWindow; next++ {
			wait(next)
		}
		if err := wctx.Err(); err != nil {
			fail(i, err)
			continue
		}
		if failpoint.Armed("relay.lose." + r.cfg.Schema) {
			// Tests only: behave as a broker that acknowledged the event and then lost it,
			// the fault the reconciler exists for.
			acked = append(acked, row.id)
			continue
		}
		m := &nats.Msg{Subject: row.subject, Data: row.payload}
		if row.trace != "" {
			m.Header = nats.Header{}
			spans[i] = startPublish(ctx, row, m.Header)
		}
		f, err := r.pub.PublishMsgAsync(m, jetstream.WithMsgID(row.eventID))
		if err != nil {
			fail(i, err)
			continue
		}
		futures[i] = f
	}
	for ; next < len(batch); next++ {
		wait(next)
	}
	return acked, firstErr
}

// countForVacuum adds n marked rows and asks for a vacuum when VacuumEvery have gathered.
func (r *Relay) countForVacuum(n int) {
	if r.cfg.VacuumEvery < 0 {
		return
	}
	r.sinceVacuum += n
	if r.sinceVacuum < r.cfg.VacuumEvery {
		return
	}
	r.sinceVacuum = 0
	select {
	case r.vacuumDue <- struct{}{}:
	default: // one is already due
	}
}

// vacuumLoop vacuums the outbox each time one is due, until ctx ends.
func (r *Relay) vacuumLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.vacuumDue:
		}
		start := time.Now()
		if err := r.vacuum(ctx); err != nil {
			if ctx.Err() == nil {
				r.log.Warn("outbox vacuum failed; claims slow down as published rows gather", zap.Error(err))
			}
			continue
		}
		r.log.Debug("outbox vacuumed", zap.Duration("took", time.Since(start)))
	}
}

// vacuum runs one VACUUM of the outbox at autovacuum's pace: unthrottled, it takes a core
// for up to a second and the acknowledgements queue behind it. It runs on a connection of
// its own, opened with that pace, so it neither holds a pool slot for seconds nor leaves a
// setting behind on a pooled connection.
func (r *Relay) vacuum(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, relayVacuumTimeout)
	defer cancel()
	cfg := r.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["vacuum_cost_delay"] = "2ms"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("relay %s: vacuum: connect: %w", r.cfg.Schema, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	// VACUUM may not run in a transaction or as a prepared statement.
	if _, err := conn.Exec(ctx, r.vacuumSQL, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("relay %s: vacuum: %w", r.cfg.Schema, err)
	}
	return nil
}

// Backlog counts the outbox rows not yet published.
func (r *Relay) Backlog(ctx context.Context) (int64, error) {
	var n int64
	if err := r.pool.QueryRow(ctx, r.backlogSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("relay %s: count backlog: %w", r.cfg.Schema, err)
	}
	return n, nil
}

func (r *Relay) updateBacklog(ctx context.Context) {
	if r.m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if n, err := r.Backlog(ctx); err == nil {
		r.m.setBacklog(r.cfg.Schema, n)
	}
}

// Prune deletes rows published longer ago than Retention, in batches, and returns how many
// it deleted. Run calls it hourly.
func (r *Relay) Prune(ctx context.Context) (int64, error) {
	if r.cfg.Retention < 0 {
		return 0, nil
	}
	n, err := db.DeleteInBatches(ctx, r.pool, r.pruneSQL, r.cfg.Retention.Seconds())
	if err != nil {
		return n, fmt.Errorf("relay %s: prune published rows: %w", r.cfg.Schema, err)
	}
	return n, nil
}

func (r *Relay) prune(ctx context.Context) {
	n, err := r.Prune(ctx)
	if err != nil {
		r.log.Warn("outbox prune failed", zap.Error(err))
		return
	}
	if n > 0 {
		r.log.Info("outbox pruned", zap.Int64("rows", n))
	}
}
