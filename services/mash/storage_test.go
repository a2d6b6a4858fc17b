package main

import (
	"context"
	"testing"

	"github.com/mash-hub/mash/pkg/db"
)

// The large values the pipeline writes at every referral are compressed with LZ4 where the
// server has it, and the audit log's ciphertext, which does not compress, is not tried.
func TestLargeValuesOnThePipelineAreStoredWithoutPglz(t *testing.T) {
	ctx := context.Background()
	pool, err := db.Open(ctx, newMigratedURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var hasLZ4 bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_settings
		WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals))`).Scan(&hasLZ4); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT c.oid::regclass::text || '.' || a.attname, a.attcompression::text, a.attstorage::text
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname IN ('intake', 'rules', 'triage', 'notify', 'audit', 'auth')
			AND (c.relname, a.attname) IN (('outbox', 'payload'), ('notifications', 'payload'), ('decisions', 'decision'),
				('cases', 'decision'), ('decisions', 'recommended'), ('decisions', 'current'), ('payloads', 'ciphertext'))`)
	if err != nil {
		t.Fatal(err)
	}
	type column struct{ compression, storage string }
	got := map[string]column{}
	for rows.Next() {
		var name string
		var c column
		if err := rows.Scan(&name, &c.compression, &c.storage); err != nil {
			t.Fatal(err)
		}
		got[name] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	lz4 := "l"
	if !hasLZ4 {
		lz4 = "" // the server's default, pglz
	}
	want := map[string]column{
		"intake.outbox.payload": {lz4, "x"}, "rules.outbox.payload": {lz4, "x"}, "triage.outbox.payload": {lz4, "x"},
		"notify.outbox.payload": {lz4, "x"}, "audit.outbox.payload": {lz4, "x"}, "auth.outbox.payload": {lz4, "x"},
		"notify.notifications.payload": {lz4, "x"}, "notify.decisions.decision": {lz4, "x"},
		"triage.cases.decision": {lz4, "x"}, "rules.decisions.recommended": {lz4, "x"}, "rules.decisions.current": {lz4, "x"},
		"audit.payloads.ciphertext": {"", "e"},
	}
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: no such column", name)
		case g != w:
			t.Errorf("%s: compression %q, storage %q; want %q, %q (server has LZ4: %v)", name, g.compression, g.storage, w.compression, w.storage, hasLZ4)
		}
	}
}
