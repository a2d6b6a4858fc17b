package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

const demoDirectory = "MASH_NOTIFY_DIRECTORY=../../scripts/demo/directory.yaml"

// runDemo runs mash demo to completion; the demo plays a whole history, so it gets longer
// than an admin command.
func (s *system) runDemo(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mashBinary, append([]string{"demo"}, args...)...)
	cmd.Env = s.env(demoDirectory)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// mash demo writes a history through the services' APIs on a simulated clock; the mash
// serve that follows shows it: referrals spread over the period, a live queue, closed cases
// with outcomes, re-referrals, and nothing in the future.
func TestDemoLoadsHistoryThroughTheAPIs(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	began := time.Now()
	out, code := s.runDemo(t, "--referrals", "40", "--days", "30", "--seed", "1")
	if code != 0 {
		t.Fatalf("mash demo: exit %d\n%s", code, out)
	}
	t.Logf("mash demo took %s: %s", time.Since(began).Round(time.Millisecond), lastLine(out))
	if !strings.Contains(out, "mash demo: done") {
		t.Fatalf("no summary line:\n%s", out)
	}
	// Loaded once: scripts/run's --once does nothing more, and a plain run refuses.
	if out, code := s.runDemo(t, "--once"); code != 0 || !strings.Contains(out, "no demo data loaded") {
		t.Fatalf("mash demo --once after a demo: exit %d\n%s", code, out)
	}
	if out, code := s.runDemo(t); code == 0 || !strings.Contains(out, "already has referrals") {
		t.Fatalf("mash demo on a loaded database: exit %d, want a refusal\n%s", code, out)
	}

	stdout, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", "manager", "--partnerships", "rhondda-cynon-taf,merthyr-tydfil")
	if code != 0 {
		t.Fatalf("clients create: %s", errOut)
	}
	manager := strings.TrimSpace(stdout)
	// The checks below read every referral's decision, case and notifications with one
	// credential as fast as the machine answers; on a fast machine that passes the
	// per-credential limit, which this test is not about.
	s.start(t, demoDirectory, "MASH_RATE_CREDENTIAL=0")
	now := time.Now()
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+manager)

	var refs []*intakev1.ReferralSummary
	for page := ""; ; {
		resp, err := intakev1.NewIntakeServiceClient(conn).ListReferrals(ctx, &intakev1.ListReferralsRequest{PageSize: 200, PageToken: page})
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, resp.GetReferrals()...)
		if page = resp.GetNextPageToken(); page == "" {
			break
		}
	}
	if len(refs) != 40 {
		t.Fatalf("%d referrals, want 40", len(refs))
	}
	weeks := map[int]bool{}
	for _, r := range refs {
		at := r.GetReceivedAt().AsTime()
		if at.After(now) || at.Before(now.Add(-31*24*time.Hour)) {
			t.Fatalf("referral %s received %s, outside the 30 days before %s", r.GetId(), at, now)
		}
		weeks[int(now.Sub(at)/(7*24*time.Hour))] = true
	}
	if len(weeks) < 4 {
		t.Errorf("referrals fall in %d weeks of the last 30 days, want them spread over the period", len(weeks))
	}

	rules := rulesv1.NewRulesServiceClient(conn)
	children := map[string]int{}
	recommended := 0
	for _, r := range refs {
		resp, err := rules.GetDecision(ctx, &rulesv1.GetDecisionRequest{ReferralId: r.GetId()})
		if err != nil {
			t.Fatalf("decision of %s: %v", r.GetId(), err)
		}
		d := resp.GetDecision()
		children[d.GetChildId()]++
		if d.GetStatus() == rulesv1.DecisionStatus_RECOMMENDED {
			recommended++
		}
		for what, ts := range map[string]time.Time{"decided": d.GetDecidedAt().AsTime(), "reviewed": d.GetReviewedAt().AsTime(),
			"decision due": d.GetDecisionDue().AsTime()} {
			if what != "decision due" && ts.After(now) {
				t.Fatalf("referral %s %s at %s, after %s", r.GetId(), what, ts, now)
			}
		}
	}
	repeats := 0
	for _, n := range children {
		repeats += n - 1
	}
	if repeats == 0 {
		t.Error("no child was referred twice; want re-referrals")
	}
	if recommended == 0 || recommended == len(refs) {
		t.Errorf("%d of %d referrals await a practitioner's decision; want some, not all", recommended, len(refs))
	}

	triage := triagev1.NewTriageServiceClient(conn)
	queue, err := triage.ListQueue(ctx, &triagev1.ListQueueRequest{PageSize: 200})
	if status.Code(err) == codes.Unimplemented {
		t.Log("the triage service is not in this build: closures and the queue are not checked")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(queue.GetCases()) == 0 {
		t.Error("the triage queue is empty; want the newest referrals waiting")
	}
	closed, authorised, leads, undated, siblings := 0, 0, 0, 0, 0
	records := map[string]bool{}
	notify := notifyv1.NewNotifyServiceClient(conn)
	for _, r := range refs {
		resp, err := triage.GetCase(ctx, &triagev1.GetCaseRequest{ReferralId: r.GetId()})
		if err != nil {
			t.Fatalf("case %s: %v", r.GetId(), err)
		}
		c := resp.GetCase()
		records[c.GetChildId()] = true
		if c.GetFamilyGroup() != "" && len(resp.GetFamily()) > 0 {
			siblings++
		}
		// A child referred with an estimated age instead of a date of birth.
		if ch := resp.GetReferral().GetSubmission().GetChild(); ch.GetDateOfBirth() == "" && !ch.GetUnborn() && ch.EstimatedAgeYears != nil {
			undated++
		}
		// A case held back for want of consent that a manager authorised: the authorisation
		// names its basis and reason, and the agencies were told on it.
		if a := c.GetSharingAuthorisation(); a != nil {
			authorised++
			if a.GetLawfulBasis() == "" || a.GetReason() == "" || a.GetAuthorisedBy() == "" || c.GetConsentStatus() == "GIVEN" {
				t.Errorf("case %s: authorisation %v with consent %s", r.GetId(), a, c.GetConsentStatus())
			}
			ns, err := notify.ListNotifications(ctx, &notifyv1.ListNotificationsRequest{ReferralId: r.GetId(), PageSize: 200})
			if err != nil {
				t.Fatal(err)
			}
			shared := false
			for _, n := range ns.GetNotifications() {
				if n.GetKind() == notifyv1.NotificationKind_ACTION && n.GetAuthorisedBy() == a.GetAuthorisedBy() && n.GetShare().GetLawfulBasis() == a.GetLawfulBasis() {
					shared = true
				}
			}
			if !shared {
				t.Errorf("case %s: authorised by %s, but no agency was told on the authorisation", r.GetId(), a.GetAuthorisedBy())
			}
		}
		// A lead professional named after the decision: on the case, and its agency told.
		if l := c.GetLeadProfessional(); l != nil {
			leads++
			if l.GetAgency() == "" || l.GetTeam() == "" || l.GetPerson() == "" || c.GetDecidedAt() == nil || l.GetNamedAt().AsTime().Before(c.GetDecidedAt().AsTime()) {
				t.Errorf("case %s: lead professional %v, decided at %s", r.GetId(), l, c.GetDecidedAt().AsTime())
			}
			ns, err := notify.ListNotifications(ctx, &notifyv1.ListNotificationsRequest{ReferralId: r.GetId(), PageSize: 200})
			if err != nil {
				t.Fatal(err)
			}
			told := false
			for _, n := range ns.GetNotifications() {
				told = told || n.GetKind() == notifyv1.NotificationKind_LEAD_PROFESSIONAL && n.GetAgency() == l.GetAgency()
			}
			if !told {
				t.Errorf("case %s: lead professional %s named, but the agency was not told", r.GetId(), l.GetAgency())
			}
		}
		if c.GetState() == triagev1.CaseState_CLOSED {
			closed++
			if c.GetOutcome() == triagev1.CaseOutcome_CASE_OUTCOME_UNSPECIFIED || c.GetClosedAt().AsTime().After(now) {
				t.Errorf("case %s closed at %s with outcome %s", r.GetId(), c.GetClosedAt().AsTime(), c.GetOutcome())
			}
		}
	}
	if closed == 0 {
		t.Error("no case closed; want most of the older ones closed with an outcome")
	}
	if leads == 0 || !strings.Contains(out, "lead professionals named") {
		t.Errorf("%d cases with a lead professional; want the demo to name at least one (summary: %s)", leads, lastLine(out))
	}
	if authorised == 0 || !strings.Contains(out, "authorised by a manager") {
		t.Errorf("%d cases authorised to share without consent; want the demo to show a manager authorising one (summary: %s)", authorised, lastLine(out))
	}
	if siblings < 2 {
		t.Errorf("%d cases shown with siblings; want the demo to send two children of one family together", siblings)
	}
	if undated == 0 {
		t.Error("no child referred without a date of birth; want the demo to show an estimated age")
	}
	// A duplicate child record (a referral without the NHS number from a new address) merged
	// by a practitioner into the earlier record the child index offered, with its reason.
	merges := 0
	recordsAPI := triagev1.NewRecordsServiceClient(conn)
	for id := range records {
		if id == "" {
			continue
		}
		rec, err := recordsAPI.GetChild(ctx, &triagev1.GetChildRequest{ChildId: id, Reason: "Checking the demo's child records"})
		if err != nil {
			t.Fatalf("child %s: %v", id, err)
		}
		for _, k := range rec.GetCorrections() {
			if k.GetKind() == "MERGE" && k.GetToChildId() == id && k.GetReason() != "" && k.GetUndoneAt() == nil {
				merges++
			}
		}
	}
	if merges == 0 || !strings.Contains(out, "child records merged") {
		t.Errorf("%d child records merged; want the demo to merge a duplicate (summary: %s)", merges, lastLine(out))
	}
	// A manager reviewed decisions for quality assurance, and the rate shows.
	agreement, err := triagev1.NewQualityServiceClient(conn).GetQualityAgreement(ctx, &triagev1.GetQualityAgreementRequest{})
	if err != nil {
		t.Fatal(err)
	}
	reviewed := int64(0)
	for _, a := range agreement.GetTotals() {
		reviewed += a.GetReviewed()
	}
	if reviewed == 0 || !strings.Contains(out, "reviewed for quality assurance") {
		t.Errorf("%d decisions reviewed for quality assurance; want the demo to show at least one (summary: %s)", reviewed, lastLine(out))
	}
}

// A demo killed midway, as a stopped scripts/run would leave it, is resumed by the next
// scripts/run (mash demo --once): it goes on with the same plan, sends no referral twice, and
// every referral of the plan ends up decided.
func TestDemoResumesAfterBeingKilled(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// One connection, so "every other backend" below means the demo's.
	db, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	count := func(query string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}

	const referrals = 40
	cmd := exec.CommandContext(ctx, mashBinary, "demo", "--referrals", strconv.Itoa(referrals), "--days", "30", "--seed", "2")
	cmd.Env = s.env(demoDirectory)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	for count(`SELECT count(*) FROM intake.referrals`) < 5 {
		select {
		case <-exited:
			t.Fatalf("demo ended before it was killed:\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	// A statement the demo sent just before it died still runs to its end on the server:
	// count once its connections are gone, so none commits after the count.
	for count(`SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	before := count(`SELECT count(*) FROM intake.referrals`)
	if before >= referrals {
		t.Fatalf("all %d referrals were in before the kill; the test needs the demo stopped midway", before)
	}

	again, code := s.runDemo(t, "--once")
	if code != 0 {
		t.Fatalf("mash demo --once after a kill: exit %d\n%s", code, again)
	}
	// The resumed run takes the killed run's plan (seed 2, 40 referrals), not --once's defaults.
	want := fmt.Sprintf("%d referrals over 30 days (seed 2; %d new, %d already there)", referrals, referrals-before, before)
	if !strings.Contains(again, want) {
		t.Fatalf("resumed demo: want %q in its summary:\n%s", want, again)
	}
	if n := count(`SELECT count(*) FROM intake.referrals`); n != referrals {
		t.Errorf("%d referrals after the resumed demo, want %d", n, referrals)
	}
	if n := count(`SELECT count(*) FROM rules.decisions`); n != referrals {
		t.Errorf("%d referrals decided, want %d", n, referrals)
	}
	// Loaded now: the next scripts/run loads nothing more.
	if out, code := s.runDemo(t, "--once"); code != 0 || !strings.Contains(out, "no demo data loaded") {
		t.Fatalf("mash demo --once after the resumed demo: exit %d\n%s", code, out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
