package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"github.com/mash-hub/mash/services/intake"
	"github.com/mash-hub/mash/services/intake/store"
)

// pgbenchBinary finds pgbench where scripts/lib/postgres.sh finds the server's tools: in
// PG_BIN (the highest installed PostgreSQL, which scripts/test exports), else on PATH.
func pgbenchBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("PG_BIN"); dir != "" {
		if p := filepath.Join(dir, "pgbench"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p
	}
	t.Skip("pgbench is not in PG_BIN or on PATH: it comes with the PostgreSQL packages scripts/test installs")
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// The bench's denominator must be intake's own statement with intake's bytes, bound on
// every transaction: run the script through pgbench against intake's schema and read back
// what it stored.
func TestPgbenchScriptStoresIntakesRowsWithBytesBoundPerTransaction(t *testing.T) {
	pgbench := pgbenchBinary(t)
	migs, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	url := dbtest.NewURL(t, "loadgen_"+db.Checksum(migs), func(ctx context.Context, url string) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		return intake.Migrate(ctx, pool)
	})

	raw, err := os.ReadFile("../../services/intake/testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(raw, sub); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	varsPath := filepath.Join(dir, "vars")
	var script bytes.Buffer
	if err := pgbenchScript(&script, sub, varsPath); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(script.String(), `'\x`) {
		t.Error("the script carries a byte string as a literal; it would cross the wire once, not per transaction")
	}
	scriptPath := filepath.Join(dir, "intake.sql")
	if err := os.WriteFile(scriptPath, script.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	vars, err := os.ReadFile(varsPath)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", "-M", "prepared", "-f", scriptPath, "-c", "2", "-t", "3"}
	for _, line := range strings.Split(strings.TrimSpace(string(vars)), "\n") {
		args = append(args, "-D", line)
	}
	if out, err := exec.Command(pgbench, append(args, url)...).CombinedOutput(); err != nil {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}

	probed, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer probed.Close()
	content, err := proto.MarshalOptions{Deterministic: true}.Marshal(sub)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(content)
	rows, err := probed.Query(context.Background(), `SELECT r.submission, r.content_hash, length(o.payload)
		FROM intake.referrals r JOIN intake.outbox o ON o.referral_id = r.id::text`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var submission, contentHash []byte
		var payloadLen int
		if err := rows.Scan(&submission, &contentHash, &payloadLen); err != nil {
			t.Fatal(err)
		}
		n++
		if !bytes.Equal(submission, content) || !bytes.Equal(contentHash, hash[:]) {
			t.Errorf("row %d: submission or hash differ from what intake stores for this referral", n)
		}
		if payloadLen < len(content) {
			t.Errorf("row %d: event payload of %d bytes is smaller than the submission it wraps (%d)", n, payloadLen, len(content))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("pgbench stored %d referrals with their outbox rows; want 6 (2 clients x 3 transactions)", n)
	}
}

func TestRefusesFewerThanOneThread(t *testing.T) {
	err := run([]string{"health", "-procs", "0"})
	if err == nil || !strings.Contains(err.Error(), "-procs must be at least 1, not 0") {
		t.Fatalf("run -procs 0: got %v, want the refusal naming -procs", err)
	}
}
