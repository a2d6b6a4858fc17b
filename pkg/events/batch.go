package events

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mash-hub/mash/pkg/failpoint"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// partition picks one of n workers for an event: by its envelope's referral id, so every
// event of a case goes to the same worker, else by its event id (else the first). It reads
// only the envelope's top-level fields, without decoding the payload.
func partition(data []byte, n int) int {
	if n <= 1 {
		return 0
	}
	var key []byte
	for len(data) > 0 {
		num, typ, l := protowire.ConsumeTag(data)
		if l < 0 {
			break
		}
		data = data[l:]
		if typ == protowire.BytesType && (num == envelopeReferralID || num == envelopeEventID) {
			v, l := protowire.ConsumeBytes(data)
			if l < 0 {
				break
			}
			if num == envelopeReferralID && len(v) > 0 {
				key = v
				break
			}
			if key == nil {
				key = v
			}
			data = data[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(num, typ, data)
		if l < 0 {
			break
		}
		data = data[l:]
	}
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % uint32(n))
}

// Field numbers of mash.events.v1.Envelope that partition reads.
const (
	envelopeEventID    protowire.Number = 1
	envelopeReferralID protowire.Number = 5
)

// takeWaiting returns first and up to size-1 more deliveries already waiting on work,
// without waiting for any: a batch is what piled up while the worker was busy.
func takeWaiting(work <-chan jetstream.Msg, first jetstream.Msg, size int) []jetstream.Msg {
	batch := []jetstream.Msg{first}
	for len(batch) < size {
		select {
		case msg, ok := <-work:
			if !ok {
				return batch
			}
			batch = append(batch, msg)
		default:
			return batch
		}
	}
	return batch
}

// batchItem is one delivery of a batch, decoded and opened.
type batchItem struct {
	msg jetstream.Msg
	env *eventsv1.Envelope
	id  string // env.EventId in canonical form
	// result, once the batch committed: resultOK, or resultDuplicate for an event already in
	// the inbox (or earlier in the batch) or of an erased case when the consumer has no
	// Erased handler.
	result string
}

// processBatch applies msgs in one transaction and acks them after it commits. Deliveries
// a batch must not hold go through process one by one: redeliveries (the event failed
// before, so it may fail again and should not take others with it), undecodable or erased
// payloads, skipped subjects and erasure events (a later event of the case must see the
// erasure committed). If the batch fails, nothing of it committed and every event goes
// through process, so one bad event neither loses nor duplicates the others.
func (c *Consumer) processBatch(ctx, run context.Context, msgs []jetstream.Msg) {
	if len(msgs) == 1 {
		c.process(ctx, run, msgs[0])
		return
	}
	start := time.Now()
	var items []*batchItem
	var single []jetstream.Msg
	for _, msg := range msgs {
		if it := c.batchable(ctx, msg); it != nil {
			items = append(items, it)
		} else {
			single = append(single, msg)
		}
	}
	defer func() {
		for _, msg := range single {
			c.process(ctx, run, msg)
		}
	}()
	if len(items) < 2 {
		for _, it := range items {
			single = append(single, it.msg)
		}
		return
	}
	stopBeat := c.keepAlive(itemMsgs(items)...)
	err := c.applyBatch(ctx, run, items)
	stopBeat()
	if err != nil {
		c.log.Info("batch failed; applying its events one by one", zap.Int("events", len(items)), zap.Error(err))
		for _, it := range items {
			single = append(single, it.msg)
		}
		return
	}
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Go(func() {
			log := c.log.With(zap.String("event_id", it.env.EventId), zap.String("subject", it.msg.Subject()))
			c.ack(ctx, it.msg, log)
			c.m.consumedOne(c.cfg.Durable, it.result, time.Since(start))
		})
	}
	wg.Wait()
}

func itemMsgs(items []*batchItem) []jetstream.Msg {
	out := make([]jetstream.Msg, len(items))
	for i, it := range items {
		out[i] = it.msg
	}
	return out
}

// batchable decodes and opens msg for a batch, or returns nil when msg must be handled
// alone (process then decides what becomes of it).
func (c *Consumer) batchable(ctx context.Context, msg jetstream.Msg) *batchItem {
	if md, err := msg.Metadata(); err != nil || md.NumDelivered > 1 {
		return nil
	}
	if failpoint.Armed("consumer.lose." + c.cfg.Durable) {
		return nil
	}
	for _, p := range c.cfg.SkipSubjectPrefixes {
		if strings.HasPrefix(msg.Subject(), p) {
			return nil
		}
	}
	env, err := decodeEnvelope(msg.Data())
	if err != nil || env.GetType() == CaseErasedSubject {
		return nil
	}
	id, err := uuid.Parse(env.GetEventId())
	if err != nil {
		return nil
	}
	if err := open(ctx, c.cfg.Cipher, env); err != nil {
		return nil
	}
	return &batchItem{msg: msg, env: env, id: id.String()}
}

// applyBatch records every item in the inbox and runs the handler for each new one, in
// order, in one transaction, setting each item's result. Any error rolls it all back.
func (c *Consumer) applyBatch(ctx, run context.Context, items []*batchItem) error {
	tx, err := c.begin(ctx, run)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // no-op after Commit
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.id
	}
	rows, err := tx.Query(ctx, c.inboxBatchSQL, c.cfg.Durable, ids)
	if err != nil {
		return fmt.Errorf("record batch in inbox: %w", err)
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("record batch in inbox: %w", err)
	}
	isFresh := make(map[string]bool, len(fresh))
	for _, id := range fresh {
		isFresh[id] = true
	}
	var apply []*batchItem
	var cases []string
	for _, it := range items {
		// The same event twice in a batch (a redelivery racing the first) runs once.
		if !isFresh[it.id] {
			it.result = resultDuplicate
			continue
		}
		delete(isFresh, it.id)
		it.result = resultOK
		apply = append(apply, it)
		if c.cfg.SkipErased && it.env.GetReferralId() != "" {
			cases = append(cases, it.env.GetReferralId())
		}
	}
	erased, err := casesErased(ctx, tx, c.cfg.Schema, cases)
	if err != nil {
		return err
	}
	handleAll := func(ctx context.Context) error {
		for _, it := range apply {
			caseErased := erased[it.env.GetReferralId()]
			if caseErased && c.cfg.Erased == nil {
				// The inbox row stays: a redelivery stops there.
				it.result = resultDuplicate
				continue
			}
			// An event of an erased case goes to the Erased handler on its envelope alone,
			// as apply does for one event.
			if err := c.handleInBatch(ctx, tx, it, caseErased); err != nil {
				return fmt.Errorf("event %s: %w", it.env.EventId, err)
			}
		}
		return nil
	}
	if c.cfg.BatchScope != nil {
		err = c.cfg.BatchScope(ctx, tx, handleAll)
	} else {
		err = handleAll(ctx)
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	failpoint.InjectFor("consumer.after-commit", c.cfg.Durable)
	if c.cfg.AfterCommit != nil {
		c.cfg.AfterCommit()
	}
	return nil
}

// handleInBatch runs the handler for one item of a batch in that item's consumer span;
// for an item of an erased case (caseErased), the Erased handler on the envelope without
// its payload.
func (c *Consumer) handleInBatch(ctx context.Context, tx pgx.Tx, it *batchItem, caseErased bool) error {
	ctx, span := c.startSpan(ctx, it.msg, it.env, 1)
	defer span.End()
	h, env := c.h, it.env
	if caseErased {
		h, env = c.cfg.Erased, stripPayload(it.env)
	}
	err := callHandler(ctx, h, tx, env)
	if err != nil {
		span.SetStatus(codes.Error, "handler failed")
	}
	return err
}

// casesErased takes the shared case lock of every case in referralIDs (as CaseErased
// does for one) and returns those schema's service erased. Shared locks never wait for one
// another, so their order does not matter.
func casesErased(ctx context.Context, tx pgx.Tx, schema string, referralIDs []string) (map[string]bool, error) {
	if len(referralIDs) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(hashtextextended($1 || '.case.' || r, 0)) FROM unnest($2::text[]) r`,
		schema, referralIDs); err != nil {
		return nil, fmt.Errorf("lock %d cases in %s: %w", len(referralIDs), schema, err)
	}
	rows, err := tx.Query(ctx, `SELECT referral_id FROM `+pgx.Identifier{schema}.Sanitize()+`.erased_cases WHERE referral_id = ANY($1)`, referralIDs)
	if err != nil {
		return nil, fmt.Errorf("which of %d cases are erased in %s: %w", len(referralIDs), schema, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("which of %d cases are erased in %s: %w", len(referralIDs), schema, err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
