package main_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A referral that went through intake, rules, triage, notify and the audit log rests, outside
// the services that read it, only under its case key: no outbox row, no dead letter, no file
// of JetStream's store and no log line holds the child's name or NHS number in clear.
func TestReferralRestsSealedOutsideItsServices(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	referrer := s.credential(t, "south-wales-police")
	p := s.start(t)
	if code, body, err := s.submit(referrer, example(t)); err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	ctx := context.Background()
	pool := s.pool(t)
	// Recommended, and both events (received, recommended) in the audit log, decrypted there.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending, audited int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM intake.outbox WHERE published_at IS NULL)
			+ (SELECT count(*) FROM rules.outbox WHERE published_at IS NULL) + (SELECT count(*) FROM audit.pending),
			(SELECT count(*) FROM audit.entries WHERE event_type IN ('mash.referral.received', 'mash.recommendation.made'))`).Scan(&pending, &audited); err != nil {
			t.Fatal(err)
		}
		if pending == 0 && audited >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events unpublished or unaudited, %d audited:\n%s", pending, audited, p.out)
		}
		select {
		case <-p.exited:
			t.Fatalf("mash exited: %v\n%s", p.err, p.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if out, errOut, code := s.run(t, "audit", "verify"); code != 0 {
		t.Fatalf("audit verify: %s %s", out, errOut)
	}

	// Synthetic values of services/intake/testdata/referral.example.json.
	personal := [][]byte{[]byte("9434765919"), []byte("Morgan"), []byte("12 Example Street")}
	rows, err := pool.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_name IN ('outbox', 'dead_letter') AND table_type = 'BASE TABLE' ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Schema, Name string }])
	if err != nil {
		t.Fatal(err)
	}
	var sealedRows int
	for _, tb := range tables {
		name := pgx.Identifier{tb.Schema, tb.Name}.Sanitize()
		for _, v := range personal {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+name+` WHERE position($1::bytea IN payload) > 0`, v).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				t.Errorf("%s: %d rows hold %q in clear", name, n, v)
			}
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		sealedRows += n
	}
	if sealedRows == 0 {
		t.Fatal("no outbox rows at all: the scan proves nothing")
	}

	p.stop(t)
	var files int
	err = filepath.WalkDir(filepath.Join(s.dataDir, "jetstream"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, v := range personal {
			if bytes.Contains(b, v) {
				t.Errorf("JetStream file %s holds %q in clear", path, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no JetStream files found under the data directory")
	}
	for _, v := range personal {
		if bytes.Contains([]byte(p.out.String()), v) {
			t.Errorf("the logs hold %q", v)
		}
	}
}

// The case key-encryption key is checked before any connection: a malformed one is refused,
// and none at all is refused once an API listens beyond loopback.
func TestCaseKEKSettingIsChecked(t *testing.T) {
	t.Parallel()
	s := &system{dbURL: "postgres://postgres@127.0.0.1:1/none", dataDir: t.TempDir(), httpAddr: "127.0.0.1:0", grpcAddr: "127.0.0.1:0", nats: "127.0.0.1:0"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"MASH_CASE_KEK=not-base64!"}, "MASH_CASE_KEK: must be base64 of 32"},
		{[]string{"MASH_CASE_KEK=c2hvcnQ="}, "MASH_CASE_KEK: must be base64 of 32"},
		{[]string{"MASH_CASE_KEK=", "MASH_HTTP_ADDR=0.0.0.0:0"}, "MASH_CASE_KEK: required when MASH_HTTP_ADDR"},
	} {
		cmd := exec.CommandContext(ctx, mashBinary, "serve")
		cmd.Env = s.env(tc.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "postgres") {
			t.Errorf("mash serve with %v: %v, output %q; want a failure with %q before any connection", tc.env, err, out, tc.want)
		}
	}
}
