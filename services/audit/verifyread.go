package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/mash-hub/mash/services/audit/store"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// entryReads is how verification reads the entries. One connection cannot keep up: the
// server reads, joins, formats and sends a row more slowly than this process checks and
// hashes it. So the log is cut into ranges of chunkRows entries, read on up to readers
// connections at once, each reader checking its rows as they arrive.
type entryReads struct {
	readers   int
	chunkRows int64
}

// defaultEntryReads is what VerifyDatabaseWith uses. Measured on two cores shared with the
// server, one reader takes about 40% longer than four and two about 15%, while three to six
// are alike (a reader waiting for its rows leaves the core to one checking its own); four
// leaves some room for a server with more cores. The ranges are small enough that the rows
// waiting to be put in the tree stay a few megabytes, and large enough that a query per
// range is nothing beside its rows.
var defaultEntryReads = entryReads{readers: 4, chunkRows: 8192}

// entryChunk is one range of entries as a reader checked them: each row against its leaf,
// each leaf hashed. Positions are the rows' indexes in the chunk; the chunk's first
// position is known only once every earlier range is counted.
type entryChunk struct {
	index   int // of the range read
	rows    []checkedRow
	first   chunkNote        // the first problem beside the tree; row -1 if none
	shreds  []auditlog.Entry // the case-shredded entries, in order
	missing []missingRow     // entries whose committed payload is not stored (pos: the row)
	err     error            // what stopped the read after rows
}

// checkedRow is what building the tree needs of an entry.
type checkedRow struct {
	seq      int64
	leaf     auditlog.PreparedLeaf
	redacted bool
	full     bool // decoded in full: something differs, or the entry needs more than its row
}

type chunkNote struct {
	row    int64
	reason string
}

func (c *entryChunk) reset() {
	c.rows, c.shreds, c.missing = c.rows[:0], c.shreds[:0], c.missing[:0]
	c.first, c.err = chunkNote{row: -1}, nil
}

// note records a problem with the current row if it is the chunk's first.
func (c *entryChunk) note(reason string) {
	if c.first.row < 0 {
		c.first = chunkNote{row: int64(len(c.rows)), reason: reason}
	}
}

// readEntries reads ranges with up to readers readers, each taking the next range not yet
// taken, checking its rows and hashing their leaves as they arrive, while apply is given the
// chunks in range order on the caller's goroutine. The first reader reads in tx; each other
// one in a transaction of its own from open, opened when it starts, so that connecting
// overlaps reading (nil open: tx reads everything). A reader that gets no connection only
// leaves its share to the others: ranges are taken after connecting, so every range taken
// is read. apply's error, or the first chunk's that has one, is returned: the one an ordered
// read would meet first. Every reader has stopped, and rolled back what it opened, when
// readEntries returns.
func readEntries(ctx context.Context, tx pgx.Tx, open func(context.Context) (pgx.Tx, error), readers int,
	ranges []store.SeqRange, masterKey []byte, apply func(*entryChunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	k := max(1, min(readers, len(ranges)))
	if open == nil {
		k = 1
	}
	// At most window ranges are taken and not yet applied: a few per reader keep each busy
	// while the caller catches up, and bound what waits in memory. A reader holds a token
	// per range it takes; apply gives it back.
	window := 3 * k
	tokens := make(chan struct{}, window)
	done := make(chan *entryChunk, window)
	// Chunks go back to the readers once applied, so a long log allocates only a few.
	free := make(chan *entryChunk, window)
	var next atomic.Int64
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rtx := tx
			if i > 0 {
				var err error
				rtx, err = openReader(ctx, open)
				if rtx != nil {
					defer func() { _ = rtx.Rollback(context.WithoutCancel(ctx)) }()
				}
				if err != nil {
					return // fewer readers: the others read its share
				}
			}
			ec := entryChecker{masterKey: masterKey, keyCache: map[string][]byte{}}
			for {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
				j := int(next.Add(1) - 1)
				if j >= len(ranges) {
					return
				}
				var c *entryChunk
				select {
				case c = <-free:
				default:
					c = &entryChunk{}
				}
				c.reset()
				c.index = j
				err := store.StreamEntryRange(ctx, rtx, masterKey != nil, ranges[j], func(raw *store.RawRow) error {
					return ec.check(raw, c)
				})
				c.err = err
				// c is the caller's once sent (and then another reader's to reuse).
				select {
				case done <- c:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	err := func() error {
		waiting := make(map[int]*entryChunk, window)
		for applied := 0; applied < len(ranges); {
			c, ok := waiting[applied]
			if !ok {
				select {
				case c = <-done:
					waiting[c.index] = c
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
					// The caller's cancellation, whatever a reader met because of it.
					return fmt.Errorf("stream entries: %w", context.Cause(ctx))
				}
				continue
			}
			delete(waiting, applied)
			if err := apply(c); err != nil {
				return err
			}
			applied++
			<-tokens
			select {
			case free <- c:
			default:
			}
		}
		return nil
	}()
	cancel()
	wg.Wait()
	return err
}

// openReader opens a reader's transaction and sets it up for StreamEntryRange (its
// settings need no putting back: the transaction is rolled back when the reader is done).
func openReader(ctx context.Context, open func(context.Context) (pgx.Tx, error)) (pgx.Tx, error) {
	tx, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream entries: %w", err)
	}
	if _, err := store.BeginEntryStream(ctx, tx); err != nil {
		return tx, err
	}
	return tx, nil
}

// entryChecker checks rows against their leaves for one reader.
type entryChecker struct {
	masterKey []byte
	keyCache  map[string][]byte // referral id -> unwrapped case key
}

// check checks the row against its leaf, hashes the leaf, and adds the result to c.
func (ec *entryChecker) check(raw *store.RawRow, c *entryChunk) error {
	leaf := raw.Values[store.ColLeaf]
	seq, _ := raw.Int64(store.ColSeq)
	redacted, fast := fastRow(raw, ec.masterKey != nil)
	if !fast {
		// Something differs, or the entry needs more than its own row (a shredding, a
		// missing payload, the master key): decode it and check it field by field.
		r, err := raw.Scan()
		if err != nil {
			return err
		}
		seq, leaf, redacted = r.Seq, r.Leaf, false
		le, lerr := auditlog.UnmarshalLeaf(r.Leaf)
		if lerr == nil {
			if bad := columnMismatches(&r.Entry, le); len(bad) > 0 {
				c.note(fmt.Sprintf("stored %s differ from what the leaf commits to", strings.Join(bad, ", ")))
			}
			if le.EventType == EventCaseShredded {
				c.shreds = append(c.shreds, le)
			}
			if !r.HasPayload && le.PayloadSHA256 != ([32]byte{}) {
				// Legitimate only if the case was shredded: checked once every key is read.
				c.missing = append(c.missing, missingRow{pos: int64(len(c.rows)), referral: le.ReferralID})
				redacted = true
			} else {
				var problem string
				redacted, problem = payloadState(&r.Entry, le, nil)
				if problem != "" {
					c.note(problem)
				}
				if problem == "" && !redacted && r.HasPayload && ec.masterKey != nil {
					if p := openCheck(ec.masterKey, ec.keyCache, r, le); p != "" {
						c.note(p)
					}
				}
			}
		}
	}
	c.rows = append(c.rows, checkedRow{seq: seq, leaf: auditlog.PrepareLeaf(leaf), redacted: redacted, full: !fast})
	return nil
}
