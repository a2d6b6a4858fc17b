package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mash-hub/mash/pkg/events"
)

// The synthetic child of the erasure tests: names found nowhere else in the system.
const (
	erasedGiven  = "Zephyrine"
	erasedFamily = "Quillfeather"
	erasedNHS    = "9434765919"
)

// erasureReferral is the example referral about the synthetic child.
func erasureReferral(t *testing.T, externalRef string) []byte {
	t.Helper()
	var r map[string]any
	if err := json.Unmarshal(example(t), &r); err != nil {
		t.Fatal(err)
	}
	r["externalReference"] = externalRef
	child := r["child"].(map[string]any)
	child["givenName"], child["familyName"], child["nhsNumber"] = erasedGiven, erasedFamily, erasedNHS
	r["narrative"] = erasedGiven + " " + erasedFamily + " was awake and heard the incident."
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// casesCLI runs mash cases with a credential in MASH_TOKEN.
func (s *system) casesCLI(t *testing.T, token string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mashBinary, append([]string{"cases"}, args...)...)
	cmd.Env = s.env("MASH_TOKEN="+token, "MASH_API_URL=http://"+s.httpAddr)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// hubClient creates a hub credential of role serving rhondda-cynon-taf.
func (s *system) hubClient(t *testing.T, role string) string {
	t.Helper()
	out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", role, "--partnerships", "rhondda-cynon-taf")
	if code != 0 {
		t.Fatalf("clients create --role %s: %s", role, errOut)
	}
	return strings.TrimSpace(out)
}

// A case that went through every service (intake, rules, a practitioner's decision in
// triage, deliveries by notify on a webhook and on an agency's NATS subject, the audit log)
// is erased: a practitioner may not, a legal hold refuses it until lifted, then a manager
// erases it with mash cases erase. Afterwards no column of any table of any schema, no
// file of JetStream's store and no log line holds the child's name or NHS number; a dead
// letter of the case is gone; the audit log still verifies and the trail still lists the
// case's events.
func TestErasureReachesEveryCopy(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	referrer := s.credential(t, "south-wales-police")
	practitioner, manager := s.hubClient(t, "practitioner"), s.hubClient(t, "manager")
	out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "auditor", "--partnerships", "*")
	if code != 0 {
		t.Fatalf("clients create auditor: %s", errOut)
	}
	auditor := strings.TrimSpace(out)
	police, others := newAgencyEndpoint(t, fmt.Sprintf("%064d", 1)), newAgencyEndpoint(t, fmt.Sprintf("%064d", 5))
	// Social care takes its messages on its NATS subject: they rest on the agency stream in
	// clear (the agency must read them) until the erasure deletes them.
	dir := fmt.Sprintf(`partnerships:
  - id: rhondda-cynon-taf
    dutyManager: rct-csc
    consoleUrl: https://mash.example.test
agencies:
  - {id: south-wales-police, partnership: rhondda-cynon-taf, name: SWP PPU, roles: [police], channel: webhook, url: %q, secretEnv: E2E_SECRET_1}
  - {id: rct-csc, partnership: rhondda-cynon-taf, name: CSC duty, roles: [childrens_social_care, duty_manager], channel: nats}
  - {id: rct-partners, partnership: rhondda-cynon-taf, name: Partners, roles: [school_dsl, health, early_help, youth_justice, housing, education], channel: webhook, url: %q, secretEnv: E2E_SECRET_5}
`, police.srv.URL, others.srv.URL)
	dirFile := filepath.Join(t.TempDir(), "directory.yaml")
	if err := os.WriteFile(dirFile, []byte(dir), 0o600); err != nil {
		t.Fatal(err)
	}
	p := s.start(t, "MASH_NOTIFY_DIRECTORY="+dirFile, "E2E_SECRET_1="+fmt.Sprintf("%064d", 1), "E2E_SECRET_5="+fmt.Sprintf("%064d", 5))
	code, body, err := s.submit(referrer, erasureReferral(t, "SWP-ERASE-1"))
	if err != nil || code != 201 {
		t.Fatalf("submit: %d %s %v", code, body, err)
	}
	var ack struct {
		ReferralID string `json:"referralId"`
	}
	if err := json.Unmarshal([]byte(body), &ack); err != nil {
		t.Fatal(err)
	}
	id := ack.ReferralID
	ctx := context.Background()
	pool := s.pool(t)

	// A practitioner decides and closes the case.
	api := func(token string) apiCall { return apiCall{t, "http://" + s.httpAddr, token} }
	var claimed map[string]any
	var raw string
	waitUntil(t, "the rules' recommendation in triage", func() bool {
		_, got, _ := api(practitioner).do("GET", "/v1/cases/"+id, nil)
		return str(got, "case", "state") == "AWAITING_DECISION"
	})
	code, claimed, raw = api(practitioner).do("POST", "/v1/cases/"+id+"/claim", map[string]any{})
	if code != 200 {
		t.Fatalf("claim: %d %s", code, raw)
	}
	code, _, raw = api(practitioner).do("POST", "/v1/cases/"+id+"/decide", map[string]any{"expectedVersion": str(claimed, "case", "version"),
		"confirm": true, "reason": "Agreed: strategy discussion today."})
	if code != 200 {
		t.Fatalf("decide: %d %s", code, raw)
	}
	if code, _, raw := api(manager).do("POST", "/v1/cases/"+id+"/sharing-authorisation", map[string]any{
		"lawfulBasis": "UK GDPR Art 6(1)(e); DPA 2018 Sch 1 para 18", "reason": "Risk of significant harm."}); code != 200 {
		t.Fatalf("authorise sharing: %d %s", code, raw)
	}
	waitUntil(t, "deliveries to the police and, on its NATS subject, social care", func() bool {
		var sent int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM notify.notifications WHERE referral_id = $1 AND agency = 'rct-csc' AND kind = 'ACTION'
			AND state IN ('DELIVERED', 'ACKNOWLEDGED')`, id).Scan(&sent); err != nil {
			t.Fatal(err)
		}
		return police.count("ACTION") > 0 && sent > 0
	})
	code, got, raw := api(practitioner).do("GET", "/v1/cases/"+id, nil)
	if code != 200 {
		t.Fatalf("read case: %d %s", code, raw)
	}
	code, _, raw = api(practitioner).do("POST", "/v1/cases/"+id+"/close", map[string]any{"expectedVersion": str(got, "case", "version"),
		"outcome": "NO_FURTHER_ACTION", "note": "Closed: " + erasedGiven + " is safe with the mother."})
	if code != 200 {
		t.Fatalf("close: %d %s", code, raw)
	}
	// A dead letter of the case, as one written before payloads were sealed: in clear.
	env, rawEnv, err := events.NewEnvelope("mash.referral.received", "rhondda-cynon-taf", id, 1, time.Now(), events.System("test"),
		wrapperspb.String(erasedGiven+" "+erasedFamily+" "+erasedNHS))

	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO notify.dead_letter (consumer, event_id, subject, payload, error, attempts)
		VALUES ('notify', $1, $2, $3, 'test', 8)`, env.GetEventId(), env.GetType(), rawEnv); err != nil {
		t.Fatal(err)
	}
	// Every event of the case on the trail before the erasure.
	var before int
	waitUntil(t, "the closure on the audit trail", func() bool {
		var closed int
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE event_type = 'mash.case.closed'), count(*) FROM audit.entries WHERE referral_id = $1`, id).
			Scan(&closed, &before); err != nil {
			t.Fatal(err)
		}
		return closed == 1
	})

	// The scan finds the child in each service's own tables before the erasure.
	personal := []string{erasedGiven, erasedFamily, erasedNHS}
	found := strings.Join(scanDatabase(ctx, t, pool, personal), "\n")
	for _, want := range []string{"intake.referrals.submission " + erasedFamily, "triage.cases.child_name " + erasedFamily,
		"rules.children.nhs_number " + erasedNHS, "notify.referrals.referral " + erasedNHS, "notify.dead_letter.payload " + erasedGiven} {
		if !strings.Contains(found, want) {
			t.Fatalf("before the erasure the scan did not find %s; it found:\n%s", want, found)
		}
	}

	// Social care's message rests on the agency stream in clear: the JetStream store holds
	// the child's name before the erasure.
	if held := jetStreamHolds(t, filepath.Join(s.dataDir, "jetstream"), personal); len(held) == 0 {
		t.Fatal("before the erasure no JetStream file holds the child's name or NHS number: the scan after it proves nothing")
	}

	// A practitioner may not erase; a legal hold refuses a manager, naming it.
	if _, errOut, code := s.casesCLI(t, practitioner, "erase", id, "--reason", "retention ended"); code == 0 || !strings.Contains(errOut, "403") {
		t.Fatalf("practitioner erase: exit %d, %s; want 403", code, errOut)
	}
	if _, errOut, code := s.casesCLI(t, manager, "hold", id, "--reason", "Family court order to preserve records"); code != 0 {
		t.Fatalf("hold: %s", errOut)
	}
	if _, errOut, code := s.casesCLI(t, manager, "erase", id, "--reason", "retention ended"); code == 0 || !strings.Contains(errOut, "409") ||
		!strings.Contains(errOut, "legal hold placed by") {
		t.Fatalf("erase under a hold: exit %d, %s; want 409 naming the hold", code, errOut)
	}
	if _, errOut, code := s.casesCLI(t, manager, "erase", id); code == 0 || !strings.Contains(errOut, "--reason") {
		t.Fatalf("erase without a reason: exit %d, %s", code, errOut)
	}
	if _, errOut, code := s.casesCLI(t, manager, "unhold", id, "--reason", "Proceedings concluded"); code != 0 {
		t.Fatalf("unhold: %s", errOut)
	}
	out, errOut, code = s.casesCLI(t, manager, "erase", id, "--reason", "Erasure request upheld by the DPO")
	if code != 0 || !strings.Contains(out, `"erasedNow":true`) {
		t.Fatalf("erase: exit %d: %s %s", code, out, errOut)
	}
	if out, _, code := s.casesCLI(t, manager, "erase", id, "--reason", "again"); code != 0 || strings.Contains(out, `"erasedNow":true`) {
		t.Fatalf("second erase: exit %d: %s; want the first erasure answered again", code, out)
	}

	// Every service applies the erasure; the audit log shreds the case.
	applied := func() string {
		var got []string
		for _, q := range []string{"intake.erased_cases", "rules.erased_cases", "notify.erased_cases", "triage.erased_cases", "audit.erased_cases"} {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+q+` WHERE referral_id = $1`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %d", q, n))
		}
		for _, typ := range []string{"mash.case.erased", "mash.audit.case-shredded"} {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit.entries WHERE referral_id = $1 AND event_type = $2`, id, typ).Scan(&n); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %d", typ, n))
		}
		return strings.Join(got, ", ")
	}
	const allApplied = "intake.erased_cases 1, rules.erased_cases 1, notify.erased_cases 1, triage.erased_cases 1, audit.erased_cases 1, " +
		"mash.case.erased 1, mash.audit.case-shredded 1"
	if !poll(30*time.Second, func() bool { return applied() == allApplied }) {
		t.Fatalf("the erasure applied: %s\n%s", applied(), p.out)
	}
	entry := waitForEntry(t, s, auditor, "mash.admin.case", "case.erase "+id)
	if entry.ActorRole != "manager" {
		t.Errorf("erasure entry %+v: want the manager as actor", entry)
	}
	waitUntil(t, "every outbox published and audited", func() bool {
		var pending int
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM intake.outbox WHERE published_at IS NULL) + (SELECT count(*) FROM rules.outbox WHERE published_at IS NULL)
			+ (SELECT count(*) FROM notify.outbox WHERE published_at IS NULL) + (SELECT count(*) FROM triage.outbox WHERE published_at IS NULL)
			+ (SELECT count(*) FROM audit.pending)`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		return pending == 0
	})
	if out, errOut, code := s.run(t, "audit", "verify"); code != 0 {
		t.Fatalf("audit verify after the erasure: %s %s", out, errOut)
	}
	// The trail still lists the case's events: ids, types and times.
	code, trail, raw := api(auditor).do("GET", "/v1/audit/trail?pageSize=200&referralId="+url.QueryEscape(id), nil)
	if code != 200 {
		t.Fatalf("trail: %d %s", code, raw)
	}
	types := map[string]bool{}
	for _, e := range anyList(trail["entries"]) {
		if m, ok := e.(map[string]any); ok {
			types[fmt.Sprint(m["eventType"])] = true
		}
	}
	for _, want := range []string{"mash.referral.received", "mash.recommendation.made", "mash.decision.made", "mash.notification.delivered",
		"mash.case.closed", "mash.case.erased", "mash.audit.case-shredded"} {
		if !types[want] {
			t.Errorf("the trail after erasure lacks %s; it has %v", want, types)
		}
	}
	var after int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit.entries WHERE referral_id = $1`, id).Scan(&after); err != nil || after < before {
		t.Fatalf("audit entries of the case: %d before, %d after (%v)", before, after, err)
	}
	var letters int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM notify.dead_letter WHERE event_id = $1`, env.GetEventId()).Scan(&letters); err != nil || letters != 0 {
		t.Fatalf("the case's dead letter: %d left (%v)", letters, err)
	}
	// A practitioner can change nothing of it any more.
	if code, _, raw := api(practitioner).do("POST", "/v1/cases/"+id+"/claim", map[string]any{}); code != 409 {
		t.Errorf("claim of an erased case: %d %s, want 409", code, raw)
	}

	if found := scanDatabase(ctx, t, pool, personal); len(found) > 0 {
		t.Errorf("after the erasure the database still holds:\n%s", strings.Join(found, "\n"))
	}
	p.stop(t)
	scanJetStream(t, filepath.Join(s.dataDir, "jetstream"), personal)
	for _, v := range personal {
		if strings.Contains(strings.ToLower(p.out.String()), strings.ToLower(v)) {
			t.Errorf("the logs hold %q", v)
		}
	}
}

// scanDatabase searches every text, bytea, jsonb and array column of every table of every
// schema for each value, case-insensitively, and returns where it found each
// ("schema.table.column value").
func scanDatabase(ctx context.Context, t *testing.T, pool *pgxpool.Pool, values []string) []string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT c.table_schema, c.table_name, c.column_name, c.data_type FROM information_schema.columns c
		JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name AND tb.table_type = 'BASE TABLE'
		WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') AND c.data_type IN ('text', 'character varying', 'bytea', 'jsonb', 'json', 'ARRAY')
		ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Schema, Table, Column, Type string }])
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) < 50 {
		t.Fatalf("only %d columns to scan: the scan proves nothing", len(cols))
	}
	var found []string
	for _, c := range cols {
		col := pgx.Identifier{c.Column}.Sanitize()
		expr := col + `::text`
		if c.Type == "bytea" {
			// Escaped bytes keep printable ASCII as it is, so a value is found wherever it
			// sits among binary data.
			expr = `encode(` + col + `, 'escape')`
		}
		for _, v := range values {
			var n int
			q := `SELECT count(*) FROM ` + pgx.Identifier{c.Schema, c.Table}.Sanitize() + ` WHERE ` + expr + ` ILIKE '%' || $1 || '%'`
			if err := pool.QueryRow(ctx, q, v).Scan(&n); err != nil {
				t.Fatalf("scan %s.%s.%s: %v", c.Schema, c.Table, c.Column, err)
			}
			if n > 0 {
				found = append(found, fmt.Sprintf("%s.%s.%s %s", c.Schema, c.Table, c.Column, v))
			}
		}
	}
	return found
}

// scanJetStream searches every file under dir for each value, case-insensitively.
func scanJetStream(t *testing.T, dir string, values []string) {
	t.Helper()
	for _, f := range jetStreamHolds(t, dir, values) {
		t.Errorf("JetStream %s", f)
	}
}

// jetStreamHolds lists which files under dir hold which values ("file <path> holds <value>").
func jetStreamHolds(t *testing.T, dir string, values []string) []string {
	t.Helper()
	var found []string
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		lower := bytes.ToLower(b)
		for _, v := range values {
			if bytes.Contains(lower, []byte(strings.ToLower(v))) {
				found = append(found, fmt.Sprintf("file %s holds %q", path, v))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no JetStream files under the data directory")
	}
	return found
}

// mash retention run (without --dry-run) erases exactly the cases due, never one under a
// legal hold or one not yet due, and leaves an audit entry per case it erased naming the
// rule; each case's key is destroyed.
func TestRetentionRunErasesExactlyTheCasesDue(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "auditor", "--partnerships", "*")
	if code != 0 {
		t.Fatalf("clients create auditor: %s", errOut)
	}
	auditor := strings.TrimSpace(out)
	ctx := context.Background()
	pool := s.pool(t)
	due1, due2, held, kept := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO triage.cases (referral_id, partnership, child_name, state, outcome, received, received_at, closed_at, outcome_note) VALUES
		($1, 'rct', 'Zephyrine Quillfeather', 4, 1, true, '2027-05-01', '2027-06-01', 'nothing further'),
		($2, 'rct', 'Zephyrine Quillfeather', 4, 2, true, '2027-05-01', '2027-06-01', 'advice given'),
		($3, 'rct', 'Zephyrine Quillfeather', 4, 1, true, '2027-05-01', '2027-06-01', 'held'),
		($4, 'rct', 'Zephyrine Quillfeather', 4, 4, true, '2027-05-01', '2027-06-01', 'early help')`, due1, due2, held, kept); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO triage.legal_holds (referral_id, reason, placed_by, placed_at) VALUES ($1, 'inquiry', 'manager-1', now())`, held); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	out, errOut, code = s.run(t, "retention", "run", "--at", "2030-01-01")
	if code != 0 {
		t.Fatalf("retention run: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, due1) || !strings.Contains(out, due2) || strings.Contains(out, held) || strings.Contains(out, kept) ||
		!strings.Contains(errOut, "2 cases erased at 2030-01-01") {
		t.Fatalf("retention run printed:\n%s\n%s\nwant %s and %s erased, %s (held) and %s (not due) kept", out, errOut, due1, due2, held, kept)
	}
	rows, err := pool.Query(ctx, `SELECT referral_id::text, erased_at IS NOT NULL, child_name, outcome_note,
		coalesce((SELECT erased_at IS NOT NULL FROM keys.case_key k WHERE k.case_id = c.referral_id::text), false)
		FROM triage.cases c WHERE referral_id IN ($1, $2, $3, $4)`, due1, due2, held, kept)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, name, note string
		var erased, keyErased bool
		if err := rows.Scan(&id, &erased, &name, &note, &keyErased); err != nil {
			t.Fatal(err)
		}
		wantErased := id == due1 || id == due2
		if erased != wantErased || keyErased != wantErased || (wantErased && (name != "" || note != "")) || (!wantErased && name == "") {
			t.Errorf("case %s: erased %t, key destroyed %t, name %q, note %q; want erased %t", id, erased, keyErased, name, note, wantErased)
		}
	}
	rows.Close()
	for _, id := range []string{due1, due2} {
		e := waitForEntry(t, s, auditor, "mash.admin.case", "case.erase "+id)
		if e.ActorRole != "operator" {
			t.Errorf("erasure entry of %s: %+v, want the operator", id, e)
		}
	}
	var entries int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit.entries WHERE event_type = 'mash.admin.case'`).Scan(&entries); err != nil || entries != 2 {
		t.Fatalf("%d erasure entries on the trail (%v), want one per erased case", entries, err)
	}
	// A second run finds nothing more due.
	if _, errOut, code := s.run(t, "retention", "run", "--at", "2030-01-01"); code != 0 || !strings.Contains(errOut, "0 cases erased") {
		t.Fatalf("second retention run: exit %d: %s", code, errOut)
	}
}

// With MASH_RETENTION_DAILY=true, mash serve erases the cases due by itself, as the actor
// "retention", each with its audit entry; a case not yet due is kept.
func TestServeRunsRetentionWhenEnabled(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	ctx := context.Background()
	pool := s.pool(t)
	// Closed over two years ago with no further action: due today under the default schedule.
	due, kept := uuid.NewString(), uuid.NewString()
	closed := time.Now().AddDate(-3, 0, 0)
	if _, err := pool.Exec(ctx, `INSERT INTO triage.cases (referral_id, partnership, child_name, state, outcome, received, received_at, closed_at) VALUES
		($1, 'rct', 'Zephyrine Quillfeather', 4, 1, true, $3, $3), ($2, 'rct', 'Zephyrine Quillfeather', 4, 1, true, now(), now())`,
		due, kept, closed); err != nil {
		t.Fatal(err)
	}
	p := s.start(t, "MASH_RETENTION_DAILY=true", "MASH_RETENTION_FIRST_RUN=1s")
	waitUntil(t, "the daily retention run to erase the case due", func() bool {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit.entries WHERE event_type = 'mash.admin.case' AND actor = 'retention'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	var dueErased, keptErased bool
	if err := pool.QueryRow(ctx, `SELECT (SELECT erased_at IS NOT NULL FROM triage.cases WHERE referral_id = $1),
		(SELECT erased_at IS NOT NULL FROM triage.cases WHERE referral_id = $2)`, due, kept).Scan(&dueErased, &keptErased); err != nil {
		t.Fatal(err)
	}
	if !dueErased || keptErased {
		t.Fatalf("due case erased %t, case not yet due erased %t:\n%s", dueErased, keptErased, p.out)
	}
}
