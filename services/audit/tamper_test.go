package audit_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/audit"
)

// notServed are the audit schema's work tables: events accepted but not yet in the log, and
// the event plumbing. No audit API, export or console page reads them, and nothing in
// them is part of the log yet (a pending row is a claim the sequencer has still to commit).
var notServed = map[string]string{
	"pending":           "events waiting for the sequencer; not part of the log until appended",
	"inbox":             "consumer idempotency keys",
	"outbox":            "events the audit service publishes (checkpoints, recorded batches)",
	"dead_letter":       "events the consumer could not handle",
	"erased_cases":      "cases whose erasure the consumer applied: it stops later events of them, and no API serves it",
	"schema_migrations": "which migrations ran",
}

// masterKeyOnly are the columns whose alteration only verification with the master key
// detects (by opening the payload): the leaf commits to the ciphertext's digest only.
var masterKeyOnly = map[string]bool{"payloads.nonce": true, "case_keys.wrapped_key": true}

var errRefused = errors.New("refused by a CHECK constraint")

// populate builds a log with every kind of row: entries with and without payloads, an
// access entry with a reason, a shredded case (a destroyed key and the entry recording
// it), two signed checkpoints and entries newer than the last one.
func populate(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	_, envs, _ := story(t, e.now)
	e.record(t, envs...)
	victim, envs2, _ := story(t, e.now)
	e.record(t, envs2...)
	acc, _, err := legacyEnvelope(t, "mash.access.case", "rct", envs[0].GetReferralId(), 0, e.now,
		&eventsv1.RecordAccessed{ClientId: "user-17", Role: "practitioner", Agency: "rct-mash", Action: "GetCase",
			ReferralId: envs[0].GetReferralId(), Reason: "strategy discussion at 3pm"})

	if err != nil {
		t.Fatal(err)
	}
	e.record(t, acc)
	e.sequenceAll(t)
	e.sign(t)
	if err := e.svc.ShredCase(ctx, victim, "dpo-1", "retention period ended"); err != nil {
		t.Fatal(err)
	}
	_, envs3, _ := story(t, e.now)
	e.record(t, envs3[:2]...)
	e.sequenceAll(t)
	e.sign(t)
	e.record(t, envs3[2:]...)
	e.sequenceAll(t) // past the last checkpoint: proven against the head
}

// alteration is an expression giving a column a different value of its type.
func alteration(t *testing.T, dataType string) string {
	switch dataType {
	case "text":
		return `%s || '~'`
	case "uuid":
		return `gen_random_uuid()`
	case "bigint", "integer":
		return `%s + 1000000`
	case "timestamp with time zone":
		return `%s + interval '1 second'`
	case "bytea":
		return `set_byte(%s, 0, get_byte(%s, 0) # 1)`
	case "boolean":
		return `NOT %s`
	}
	t.Fatalf("no alteration for columns of type %s: add one so the column is tested", dataType)
	return ""
}

// rowOrder picks which row of a table is altered: one whose alteration verification can
// see, preferring rows tied to an entry (payloads and keys of live cases, an interior tree
// hash, the first checkpoint).
var rowOrder = map[string]string{
	"entries":     "seq",
	"tree_hashes": "idx = 2 DESC, idx", // the interior node over leaves 0 and 1
	"checkpoints": "tree_size",
	"head":        "tree_size",
	"case_keys":   "destroyed_at IS NOT NULL, referral_id",
	"payloads":    "(SELECT k.destroyed_at IS NOT NULL FROM audit.case_keys k WHERE k.id = case_key_id), event_id",
}

// expectedEntry is the entry verification must name for an altered row of table, or -1
// when the row belongs to no entry (the head, a checkpoint).
func expectedEntry(t *testing.T, tx pgx.Tx, table, column string, ctid pgtype) int64 {
	t.Helper()
	ctx := context.Background()
	var q string
	switch table {
	case "entries":
		q = `SELECT seq FROM audit.entries WHERE ctid = $1`
	case "payloads":
		q = `SELECT e.seq FROM audit.payloads p JOIN audit.entries e ON e.event_id = p.event_id WHERE p.ctid = $1`
	case "case_keys":
		if strings.HasPrefix(column, "destroy") {
			q = `SELECT e.seq FROM audit.case_keys k JOIN audit.entries e ON e.referral_id = k.referral_id
				AND e.event_type = '` + audit.EventCaseShredded + `' WHERE k.ctid = $1`
		} else {
			q = `SELECT min(e.seq) FROM audit.case_keys k JOIN audit.payloads p ON p.case_key_id = k.id
				JOIN audit.entries e ON e.event_id = p.event_id WHERE k.ctid = $1`
		}
	case "tree_hashes":
		var idx int64
		if err := tx.QueryRow(ctx, `SELECT idx FROM audit.tree_hashes WHERE ctid = $1`, ctid).Scan(&idx); err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		for tlog.StoredHashIndex(0, n+1) <= idx {
			n++
		}
		return n
	default:
		return -1
	}
	var seq int64
	if err := tx.QueryRow(ctx, q, ctid).Scan(&seq); err != nil {
		t.Fatalf("%s.%s: the entry of the altered row: %v", table, column, err)
	}
	return seq
}

type pgtype = string // a ctid, as text

// Every column of every table of the log, altered one at a time as a superuser could
// (triggers and foreign keys off), is caught by verification, which names the entry the
// row belongs to. Columns are read from information_schema, so a column or table added
// later is tested (or the test asks for an alteration of its type) without editing this.
func TestVerifyCatchesEveryColumnAltered(t *testing.T) {
	e := newEnv(t)
	populate(t, e)
	ctx := context.Background()
	opts := audit.VerifyOptions{MasterKey: e.master}
	if rep, err := audit.VerifyDatabaseWith(ctx, e.pool, e.vkey, origin, opts); err != nil {
		t.Fatalf("the untouched log does not verify: %+v, %v", rep, err)
	}
	rows, err := e.pool.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = 'audit' AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	type col struct{ table, column, dataType string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var c col
		return c, r.Scan(&c.table, &c.column, &c.dataType)
	})
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, c := range cols {
		if _, skip := notServed[c.table]; skip {
			continue
		}
		order, ok := rowOrder[c.table]
		if !ok {
			t.Fatalf("table audit.%s is new: say which row to alter in rowOrder (or why it is not served in notServed)", c.table)
		}
		tested[c.table] = true
		t.Run(c.table+"."+c.column, func(t *testing.T) {
			expr := strings.ReplaceAll(alteration(t, c.dataType), "%s", pgx.Identifier{c.column}.Sanitize())
			col := pgx.Identifier{c.column}.Sanitize()
			tbl := "audit." + pgx.Identifier{c.table}.Sanitize()
			var orig *string
			var ctid string
			var want int64
			refused := false
			err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				// A superuser can switch off triggers (append-only) and foreign keys.
				if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
					return err
				}
				var old string
				if err := tx.QueryRow(ctx, `SELECT ctid::text, `+col+`::text FROM `+tbl+` WHERE `+col+` IS NOT NULL ORDER BY `+order+` LIMIT 1`).
					Scan(&old, &orig); err != nil {
					return err
				}
				want = expectedEntry(t, tx, c.table, c.column, old)
				err := tx.QueryRow(ctx, `UPDATE `+tbl+` SET `+col+` = `+expr+` WHERE ctid = $1::tid RETURNING ctid::text`, old).Scan(&ctid)
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "23514" {
					return errRefused // a CHECK constraint, which no session setting turns off
				}
				return err
			})
			refused = errors.Is(err, errRefused)
			if err != nil && !refused {
				t.Fatal(err)
			}
			if refused {
				t.Logf("%s.%s: the database refuses any other value (CHECK constraint)", c.table, c.column)
				return
			}
			rep, verr := audit.VerifyDatabaseWith(ctx, e.pool, e.vkey, origin, opts)
			// The public check (no master key) compares most rows on their raw bytes rather
			// than decoded: it must name the same entry, unless only the master key can tell.
			prep, perr := audit.VerifyDatabase(ctx, e.pool, e.vkey, origin)
			// Read in small ranges on several connections, the log is judged the same.
			sameInRanges(t, e, opts, rep, verr)
			sameInRanges(t, e, audit.VerifyOptions{}, prep, perr)
			// Put the value back for the next column, and prove it verifies again.
			if _, err := e.pool.Exec(ctx, `SET session_replication_role = replica; `+
				`UPDATE `+tbl+` SET `+col+` = '`+strings.ReplaceAll(*orig, "'", "''")+`'::`+c.dataType+` WHERE ctid = '`+ctid+`'::tid; `+
				`SET session_replication_role = origin`); err != nil {
				t.Fatal(err)
			}
			if verr == nil {
				t.Fatalf("altering %s.%s went unnoticed: %+v", c.table, c.column, rep)
			}
			if want >= 0 && rep.FirstMismatch != want {
				t.Fatalf("altering %s.%s: verification named entry %d, want %d (%v)", c.table, c.column, rep.FirstMismatch, want, verr)
			}
			t.Logf("%s.%s: %v", c.table, c.column, verr)
			switch {
			case perr == nil && !masterKeyOnly[c.table+"."+c.column]:
				t.Fatalf("altering %s.%s went unnoticed without the master key: %+v", c.table, c.column, prep)
			case perr != nil && want >= 0 && prep.FirstMismatch != want:
				t.Fatalf("altering %s.%s: verification without the master key named entry %d, want %d (%v)", c.table, c.column, prep.FirstMismatch, want, perr)
			}
			if rep, err := audit.VerifyDatabaseWith(ctx, e.pool, e.vkey, origin, opts); err != nil {
				t.Fatalf("restored %s.%s does not verify: %+v, %v", c.table, c.column, rep, err)
			}
		})
	}
	for table := range rowOrder {
		if !tested[table] {
			t.Errorf("table audit.%s is listed but has no columns: is the schema right?", table)
		}
	}
}

// TestVerifyDecodesOnlyRowsThatNeedIt: the public check compares an ordinary entry with its
// leaf on the raw column bytes; only a shredding (its key is checked against it) and an
// entry whose payload went with its case key are decoded in full.
func TestVerifyDecodesOnlyRowsThatNeedIt(t *testing.T) {
	e := newEnv(t)
	populate(t, e)
	ctx := context.Background()
	var full []int64
	audit.OnFullCheck(func(pos int64) { full = append(full, pos) })
	defer audit.OnFullCheck(nil)
	rep, err := audit.VerifyDatabase(ctx, e.pool, e.vkey, origin)
	if err != nil {
		t.Fatalf("%+v, %v", rep, err)
	}
	if len(full) == 0 {
		t.Fatal("no entry was decoded in full, but the log has a shredded case")
	}
	for _, pos := range full {
		var typ string
		var payloadGone bool
		if err := e.pool.QueryRow(ctx, `SELECT e.event_type, e.payload_sha256 <> '\x'::bytea || decode(repeat('00', 32), 'hex')
			AND NOT EXISTS (SELECT 1 FROM audit.payloads p WHERE p.event_id = e.event_id) FROM audit.entries e WHERE e.seq = $1`, pos).
			Scan(&typ, &payloadGone); err != nil {
			t.Fatal(err)
		}
		if typ != audit.EventCaseShredded && !payloadGone {
			t.Errorf("entry %d (%s) was decoded in full, but nothing about it differs", pos, typ)
		}
	}
	t.Logf("%d of %d entries decoded in full", len(full), rep.Entries)
}

// A falsified column is never served as true: the trail serves the entry with an integrity
// error and none of its fields, and the access report flags it; the untouched entries are
// served from their leaves, with the reason the reader gave.
func TestServedFieldsComeFromTheLeaf(t *testing.T) {
	e := newEnv(t)
	populate(t, e)
	ctx := context.Background()
	api := e.svc.API()
	var referral string
	var seq int64
	if err := e.pool.QueryRow(ctx, `SELECT referral_id, seq FROM audit.entries WHERE event_type = 'mash.decision.made' ORDER BY seq LIMIT 1`).
		Scan(&referral, &seq); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `SET session_replication_role = replica;
		UPDATE audit.entries SET decision = 'LEVEL_2/RAG_GREEN from LEVEL_3A/RAG_AMBER' WHERE seq = `+strconv.FormatInt(seq, 10)+`;
		SET session_replication_role = origin`); err != nil {
		t.Fatal(err)
	}
	trail, err := api.GetTrail(auditor, &auditv1.GetTrailRequest{ReferralId: referral})
	if err != nil {
		t.Fatal(err)
	}
	var flagged int
	for _, en := range trail.GetEntries() {
		if strings.Contains(en.GetDecision(), "RAG_GREEN") {
			t.Fatalf("the falsified decision was served: %v", en)
		}
		if en.GetSeq() == seq {
			flagged++
			if en.GetIntegrityError() == "" || en.GetDecision() != "" || en.GetEventType() != "" {
				t.Fatalf("entry %d served without its integrity error: %v", seq, en)
			}
		} else if en.GetIntegrityError() != "" {
			t.Fatalf("an untouched entry is flagged: %v", en)
		}
	}
	if flagged != 1 {
		t.Fatalf("entry %d not in the trail", seq)
	}
	acc, err := api.WhoAccessed(auditor, &auditv1.WhoAccessedRequest{ReferralId: referral})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, a := range acc.GetAccesses() {
		reasons = append(reasons, a.GetReason())
	}
	if !slices.Contains(reasons, "strategy discussion at 3pm") {
		t.Fatalf("the access reason is not shown: %q", reasons)
	}
	// An access entry falsified: the report flags it as an integrity error.
	if _, err := e.pool.Exec(ctx, `SET session_replication_role = replica;
		UPDATE audit.entries SET actor = 'someone-else' WHERE event_type = 'mash.access.case';
		SET session_replication_role = origin`); err != nil {
		t.Fatal(err)
	}
	un, err := api.UnusualAccess(auditor, &auditv1.UnusualAccessRequest{From: timestamppb.New(e.now.Add(-time.Hour)), To: timestamppb.New(e.now.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range un.GetAccesses() {
		if slices.Contains(f.GetReasons(), audit.ReasonIntegrity) {
			found = f.GetAccess().GetActor() == "" && f.GetAccess().GetIntegrityError() != ""
		}
	}
	if !found {
		t.Fatalf("the falsified access entry is not reported as an integrity error: %v", un)
	}
}

// A read of a list (a queue page) is one access entry; the access APIs show the records it
// listed, from the sealed payload.
func TestListedReadShowsItsRecords(t *testing.T) {
	e := newEnv(t)
	env, _, err := legacyEnvelope(t, "mash.access.queue", "rct", "", 0, e.now, &eventsv1.RecordAccessed{ClientId: "user:p1",
		Role: "practitioner", Agency: "rct-mash", Action: "ListQueue", Listed: []*eventsv1.ListedRecord{
			{ReferralId: "r-1", ChildId: "c-1"}, {ReferralId: "r-2", ChildId: "c-2"}}})

	if err != nil {
		t.Fatal(err)
	}
	e.record(t, env)
	e.sequenceAll(t)
	resp, err := e.svc.API().UserActivity(auditor, &auditv1.UserActivityRequest{Actor: "user:p1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetAccesses()) != 1 {
		t.Fatalf("accesses %v", resp.GetAccesses())
	}
	a := resp.GetAccesses()[0]
	if a.GetWhat() != "read: ListQueue (2 listed)" || len(a.GetListed()) != 2 || a.GetListed()[1].GetChildId() != "c-2" {
		t.Fatalf("access %v", a)
	}
}

// entryOfHash (through verification) names the leaf whose append stored a hash: checked
// here against the definition for the first thousand indexes.
func TestEntryOfHash(t *testing.T) {
	for n := int64(0); n < 1000; n++ {
		for idx := tlog.StoredHashIndex(0, n); idx < tlog.StoredHashIndex(0, n+1); idx++ {
			if got := audit.EntryOfHash(idx); got != n {
				t.Fatalf("EntryOfHash(%d) = %d, want %d", idx, got, n)
			}
		}
	}
}
