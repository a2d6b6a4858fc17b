package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/failpoint"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// EventCheckpoint is the subject of the event carrying each signed checkpoint out of the
// database. Its envelope payload is a google.protobuf.BytesValue holding the signed note
// (C2SP tlog-checkpoint text, a blank line, signature lines), exactly as stored in
// audit.checkpoints; open it with auditlog.OpenCheckpoint and the public key. No .proto of
// our own is needed for a byte string.
const EventCheckpoint = eventsv1.SubjectAuditCheckpoint

// EventCaseShredded is the event type of the entry recording a destroyed case key.
const EventCaseShredded = eventsv1.SubjectAuditCaseShredded

// sequencerLock is the session advisory lock held by the one running sequencer.
const sequencerLock = "mash.audit.sequencer"

// AppendBatch integrates up to limit pending entries into the tree in one transaction on
// conn: seq = tree size, leaves marshalled, stored hashes appended, root recomputed, entries
// inserted, pending rows deleted, and the head advanced with compare-and-swap. It returns
// the number appended (0 when nothing is pending) and store.ErrRaced when another sequencer
// moved the head first, in which case nothing was written.
//
// The sequencer runner calls it holding the advisory lock; it is exported so tests can run
// it without the lock and show that the compare-and-swap alone never forks the log.
func AppendBatch(ctx context.Context, conn interface {
	Begin(context.Context) (pgx.Tx, error)
}, limit int) (int, error) {
	var a appender
	r, err := a.append(ctx, conn, limit)
	return r.n, err
}

// appender appends batches, remembering the frontier of the tree it last left (the roots
// of its complete subtrees, all an append reads) so the next batch need not read it. The
// memory is only used when the head read in the batch's transaction is exactly the one it
// left (size and root), so an append by anyone else is never built on stale hashes.
type appender struct {
	head     store.Head
	frontier map[int64]tlog.Hash // nil until the first append
}

// appendResult is what one batch did.
type appendResult struct {
	n             int       // entries appended
	oldSize       int64     // the head's size before
	firstRecorded time.Time // recorded_at of the first entry appended
}

func (a *appender) append(ctx context.Context, conn interface {
	Begin(context.Context) (pgx.Tx, error)
}, limit int) (appendResult, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return appendResult{}, fmt.Errorf("append batch: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	head, pend, err := store.BeginAppend(ctx, tx, limit)
	if err != nil || len(pend) == 0 {
		return appendResult{oldSize: head.TreeSize}, err
	}
	var hashes *overlay
	if a.frontier != nil && a.head == head {
		hashes = &overlay{ctx: ctx, tx: tx, m: make(map[int64]tlog.Hash, len(a.frontier)+3*len(pend))}
		for k, v := range a.frontier {
			hashes.m[k] = v
		}
	} else if hashes, err = newOverlay(ctx, tx, head.TreeSize); err != nil {
		return appendResult{}, err
	}
	firstHash := tlog.StoredHashIndex(0, head.TreeSize)
	appended := make([]store.Appended, len(pend))
	added := make([][32]byte, 0, 2*len(pend)+64)
	for i, p := range pend {
		seq := head.TreeSize + int64(i)
		e := auditlog.Entry{Seq: seq, EventID: p.EventID, EventType: p.EventType, OccurredAt: p.OccurredAt,
			RecordedAt: p.ReceivedAt, Partnership: p.Partnership, ReferralID: p.ReferralID, ChildID: p.ChildID,
			Actor: p.Actor, ActorRole: p.ActorRole, Agency: p.Agency, PackVersion: p.PackVersion,
			Decision: p.Decision, PayloadSHA256: p.PayloadSHA256}
		if err := e.Validate(); err != nil {
			return appendResult{}, fmt.Errorf("append batch: pending event %s: %w", p.EventID, err)
		}
		leaf := e.MarshalLeaf()
		hs, err := tlog.StoredHashes(seq, leaf, hashes)
		if err != nil {
			return appendResult{}, fmt.Errorf("append batch: hashes of entry %d: %w", seq, err)
		}
		hashes.put(tlog.StoredHashIndex(0, seq), hs)
		for _, h := range hs {
			added = append(added, [32]byte(h))
		}
		appended[i] = store.Appended{Seq: seq, P: p, Leaf: leaf}
	}
	newSize := head.TreeSize + int64(len(pend))
	root, err := auditlog.Root(hashes, newSize)
	if err != nil {
		return appendResult{}, fmt.Errorf("append batch: %w", err)
	}
	if err := store.Append(ctx, tx, head, newSize, root, appended, firstHash, added); err != nil {
		return appendResult{}, err
	}
	// Tell the producers which of their events are now in the log (one event per batch).
	ids := make([]string, len(pend))
	for i, p := range pend {
		ids[i] = p.EventID
	}
	env, raw, err := events.NewEnvelope(events.SubjectAuditRecorded, "", "", 0, time.Now(), events.System("audit"), &eventsv1.AuditRecorded{EventIds: ids, TreeSize: newSize})
	if err != nil {
		return appendResult{}, fmt.Errorf("append batch: %w", err)
	}
	if err := events.InsertOutbox(ctx, tx, store.Schema, env, raw); err != nil {
		return appendResult{}, fmt.Errorf("append batch: %w", err)
	}
	failpoint.Inject("audit.sequencer.after-append")
	a.frontier = nil // unknown until this commit is known to have happened
	if err := tx.Commit(ctx); err != nil {
		return appendResult{}, fmt.Errorf("append batch: commit: %w", err)
	}
	frontier := make(map[int64]tlog.Hash, 64)
	for _, x := range frontierIndexes(newSize) {
		h, ok := hashes.m[x]
		if !ok { // cannot happen (the overlay holds every hash the batch made); read next time
			frontier = nil
			break
		}
		frontier[x] = h
	}
	a.head, a.frontier = store.Head{TreeSize: newSize, Root: root}, frontier
	return appendResult{n: len(pend), oldSize: head.TreeSize, firstRecorded: pend[0].ReceivedAt}, nil
}

// frontierIndexes are the stored-hash indexes of the roots of the complete subtrees of a
// tree of size leaves, largest first: all that appending to it reads.
func frontierIndexes(size int64) []int64 {
	var idx []int64
	for level := 62; level >= 0; level-- {
		if size&(1<<level) != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, size>>level-1))
		}
	}
	return idx
}

// overlay is a tlog.HashReader over the hashes a batch adds, on top of the tree's frontier
// (the roots of its complete subtrees, which are all an append reads) loaded in one query.
type overlay struct {
	ctx context.Context
	tx  pgx.Tx
	m   map[int64]tlog.Hash
}

func newOverlay(ctx context.Context, tx pgx.Tx, size int64) (*overlay, error) {
	o := &overlay{ctx: ctx, tx: tx, m: make(map[int64]tlog.Hash, 64)}
	idx := frontierIndexes(size)
	if len(idx) == 0 {
		return o, nil
	}
	hs, err := store.ReadHashes(ctx, tx, idx)
	if err != nil {
		return nil, fmt.Errorf("load frontier of %d: %w", size, err)
	}
	for i, x := range idx {
		o.m[x] = hs[i]
	}
	return o, nil
}

func (o *overlay) put(first int64, hs []tlog.Hash) {
	for i, h := range hs {
		o.m[first+int64(i)] = h
	}
}

// ReadHashes implements tlog.HashReader; hashes outside the overlay are read from the
// database (never needed in practice, kept for correctness).
func (o *overlay) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing []int64
	for i, x := range indexes {
		h, ok := o.m[x]
		if !ok {
			missing = append(missing, x)
			continue
		}
		out[i] = h
	}
	if len(missing) > 0 {
		hs, err := store.ReadHashes(o.ctx, o.tx, missing)
		if err != nil {
			return nil, err
		}
		for i, x := range missing {
			o.m[x] = hs[i]
		}
		for i, x := range indexes {
			out[i] = o.m[x]
		}
	}
	return out, nil
}

// sequencer runs AppendBatch and signs checkpoints, one at a time across every process:
// it holds a session advisory lock for as long as it runs; a second one waits for it.
type sequencer struct {
	pool      *pgxpool.Pool
	cfg       Config
	signer    *auditlog.Signer
	now       func() time.Time
	log       *zap.Logger
	wake      chan struct{}
	relayWake func()

	app appender // the lock holder's appender (runLocked only)
	// cp is what the lock holder knows of the head and the last checkpoint, so it opens a
	// checkpoint transaction only when one may be due. Guarded by cpMu: SignCheckpoint runs
	// on other goroutines.
	cpMu sync.Mutex
	cp   cpState
}

// cpState is what the sequencer knows of the head and the last checkpoint. A checkpoint
// signed elsewhere (SignCheckpoint) can only make it think one is due sooner than it is,
// never later: the transaction then reads the truth.
type cpState struct {
	known     bool
	head      int64     // the head's size
	signed    int64     // the last checkpoint's size
	uncovered time.Time // recorded_at of the first entry after it; zero when head == signed
}

// due reports whether a checkpoint may be due at now; false only when certainly not.
func (c cpState) due(now time.Time, every int64, interval time.Duration) bool {
	if !c.known {
		return true
	}
	if c.head == c.signed {
		return false
	}
	return c.head-c.signed >= every || c.uncovered.IsZero() || now.Sub(c.uncovered) >= interval
}

// Wake asks the sequencer to look for pending entries now.
func (q *sequencer) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run takes the lock, then sequences until ctx ends.
func (q *sequencer) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := q.runLocked(ctx)
		if ctx.Err() != nil {
			return nil
		}
		q.log.Warn("sequencer stopped; restarting", zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (q *sequencer) runLocked(ctx context.Context) error {
	conn, err := q.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("sequencer: acquire: %w", err)
	}
	// Never return a connection that may still hold the lock to the pool.
	defer func() { _ = conn.Conn().Close(context.WithoutCancel(ctx)); conn.Release() }()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, sequencerLock); err != nil {
		return fmt.Errorf("sequencer: take lock: %w", err)
	}
	q.log.Info("sequencer holds the lock")
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-q.wake:
		case <-timer.C:
		}
		for ctx.Err() == nil {
			r, err := q.app.append(ctx, conn, q.cfg.BatchSize)
			if errors.Is(err, store.ErrRaced) {
				// Only possible if someone appends without the lock; try again on the new head.
				q.log.Warn("sequencer lost a compare-and-swap on the head; retrying")
				q.forgetCheckpointState()
				continue
			}
			if err != nil {
				return err
			}
			if r.n > 0 && q.relayWake != nil {
				q.relayWake() // the batch's mash.audit.recorded event
			}
			if q.noteAppend(r) {
				if _, _, err := q.checkpoint(ctx, conn, false); err != nil {
					return err
				}
			}
			if r.n < q.cfg.BatchSize {
				break
			}
		}
		timer.Reset(q.cfg.PollInterval)
	}
}

// noteAppend updates what the sequencer knows after an append and reports whether a
// checkpoint may be due.
func (q *sequencer) noteAppend(r appendResult) bool {
	q.cpMu.Lock()
	defer q.cpMu.Unlock()
	switch {
	case !q.cp.known:
	case r.oldSize != q.cp.head:
		q.cp.known = false // someone else appended: read the truth
	case r.n > 0:
		if q.cp.head == q.cp.signed {
			q.cp.uncovered = r.firstRecorded
		}
		q.cp.head += int64(r.n)
	}
	return q.cp.due(q.now().UTC(), q.cfg.CheckpointEvery, q.cfg.CheckpointInterval)
}

func (q *sequencer) forgetCheckpointState() {
	q.cpMu.Lock()
	q.cp.known = false
	q.cpMu.Unlock()
}

// learn records what a checkpoint transaction read: the head, the last checkpoint and the
// recorded_at of the first entry it does not cover (zero if unknown).
func (q *sequencer) learn(head, signed int64, uncovered time.Time) {
	q.cpMu.Lock()
	defer q.cpMu.Unlock()
	q.cp = cpState{known: head == signed || !uncovered.IsZero(), head: head, signed: signed, uncovered: uncovered}
}

// checkpoint signs the head if it is due (CheckpointEvery entries since the last one, or
// the first entry it does not cover was recorded CheckpointInterval ago) or force is set, stores it and queues its event in the outbox, in
// one transaction. It returns the stored checkpoint and whether one was made.
func (q *sequencer) checkpoint(ctx context.Context, conn interface {
	Begin(context.Context) (pgx.Tx, error)
}, force bool) (store.Checkpoint, bool, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("checkpoint: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := store.AsWriter(ctx, tx); err != nil {
		return store.Checkpoint{}, false, err
	}
	head, err := store.ReadHead(ctx, tx)
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	last, err := store.LatestCheckpoint(ctx, tx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Checkpoint{}, false, err
	}
	// Microseconds, as Postgres keeps created_at: verification compares the two.
	now := q.now().UTC().Truncate(time.Microsecond)
	if head.TreeSize <= last.TreeSize { // nothing new to sign (or an empty log)
		q.learn(head.TreeSize, head.TreeSize, time.Time{})
		return store.Checkpoint{}, false, nil
	}
	due := force || head.TreeSize-last.TreeSize >= q.cfg.CheckpointEvery
	if !due {
		// No entry waits longer than CheckpointInterval to be covered by a signature.
		oldest, err := store.RecordedAt(ctx, tx, last.TreeSize)
		if err != nil {
			return store.Checkpoint{}, false, err
		}
		due = now.Sub(oldest) >= q.cfg.CheckpointInterval
		if !due {
			q.learn(head.TreeSize, last.TreeSize, oldest)
		}
	}
	if !due {
		return store.Checkpoint{}, false, nil
	}
	signed, err := q.signer.Sign(auditlog.Checkpoint{Origin: q.cfg.Origin, Size: head.TreeSize, Root: head.Root, Time: now})
	if err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("checkpoint: %w", err)
	}
	c := store.Checkpoint{TreeSize: head.TreeSize, Note: string(signed), CreatedAt: now}
	if ok, err := store.InsertCheckpoint(ctx, tx, c); err != nil || !ok {
		return store.Checkpoint{}, false, err
	}
	env, raw, err := events.NewEnvelope(EventCheckpoint, "", "", head.TreeSize, now, events.System("audit"), &eventsv1.CheckpointSigned{Note: signed})
	if err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("checkpoint: %w", err)
	}
	if err := events.InsertOutbox(ctx, tx, store.Schema, env, raw); err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("checkpoint: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("checkpoint: commit: %w", err)
	}
	q.learn(head.TreeSize, head.TreeSize, time.Time{})
	if q.relayWake != nil {
		q.relayWake()
	}
	q.log.Info("checkpoint signed", zap.Int64("tree_size", head.TreeSize))
	return c, true, nil
}
