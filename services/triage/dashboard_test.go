package triage_test

import (
	"context"
	"encoding/csv"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

func day(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }

// dashboardFixture writes a small read model by hand (the projection has its own tests), so
// every figure below can be worked out on paper. The window is 2 to 16 November 2026 (ISO
// weeks 45 and 46) for partnership p1.
func dashboardFixture(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	childX, childY, childZ := uuid.NewString(), uuid.NewString(), uuid.NewString()
	type kase struct {
		child, partnership, source          string
		state, level, recLevel, rag, status int16
		outcome                             int16
		received, decisionDue               time.Time
		ragDue, decided                     *time.Time
	}
	ptr := func(t time.Time) *time.Time { return &t }
	cases := []kase{
		// c0: outside the window; the earlier referral of child Z, closed with advice.
		{childZ, "p1", "health", 4, 2, 2, 2, 2, 2, time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC), time.Date(2026, 1, 11, 9, 0, 0, 0, time.UTC), nil, ptr(time.Date(2026, 1, 10, 10, 0, 0, 0, time.UTC))},
		// c1: Red, overridden up from 3a to 4 in 60 minutes, on time; closed s47.
		{childX, "p1", "police", 4, 5, 3, 4, 3, 7, day(2, 9, 0), day(3, 9, 0), ptr(day(2, 13, 0)), ptr(day(2, 10, 0))},
		// c2: Amber, overridden down from 3a to 2 after 27 hours: late on both clocks; closed NFA.
		{childY, "p1", "health", 4, 2, 3, 3, 3, 1, day(3, 9, 0), day(4, 9, 0), ptr(day(4, 9, 0)), ptr(day(4, 12, 0))},
		// c3: Green, confirmed in 120 minutes; child Y again (after NFA).
		{childY, "p1", "police", 3, 2, 2, 2, 2, 0, day(10, 9, 0), day(11, 9, 0), ptr(day(13, 9, 0)), ptr(day(10, 11, 0))},
		// c4: Red, still awaiting a decision, RAG due long past; child X again (after s47).
		{childX, "p1", "education", 2, 5, 5, 4, 1, 0, day(11, 9, 0), day(12, 9, 0), ptr(day(11, 13, 0)), nil},
		// c7: awaiting the rules; child Z again (after advice), within 12 months.
		{childZ, "p1", "health", 1, 0, 0, 0, 0, 0, day(12, 9, 0), day(13, 9, 0), nil, nil},
		// Outside the window, and another partnership: not counted.
		{uuid.NewString(), "p1", "police", 2, 5, 5, 4, 1, 0, day(20, 9, 0), day(21, 9, 0), ptr(day(20, 13, 0)), nil},
		{uuid.NewString(), "p2", "police", 2, 5, 5, 4, 1, 0, day(5, 9, 0), day(6, 9, 0), ptr(day(5, 13, 0)), nil},
	}
	for _, c := range cases {
		var decidedBy string
		if c.decided != nil {
			decidedBy = "client:x (rct-mash, practitioner)"
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO triage.cases (referral_id, partnership, child_id, source_agency, received, state, level,
			recommended_level, rag, decision_status, outcome, received_at, decision_due, rag_due, decided_at, decided_by, decision_version)
			VALUES ($1, $2, $3, $4, true, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1)`,
			uuid.NewString(), c.partnership, c.child, c.source, c.state, c.level, c.recLevel, c.rag, c.status, c.outcome,
			c.received, c.decisionDue, c.ragDue, c.decided, decidedBy); err != nil {
			t.Fatal(err)
		}
	}
	ref := uuid.NewString() // notices and requests need not belong to a case in the window
	for _, n := range []struct {
		agency, kind string
		sent, ackDue time.Time
		ack          *time.Time
	}{
		{"police", "ACTION", day(2, 10, 5), day(2, 11, 5), ptr(day(2, 10, 35))},       // 30 min, on time
		{"police", "ACTION", day(3, 10, 0), day(3, 11, 0), ptr(day(3, 12, 0))},        // 120 min, late
		{"school-a", "ENCOMPASS", day(10, 20, 0), day(11, 8, 30), ptr(day(11, 8, 0))}, // 720 min, on time
		{"school-b", "ENCOMPASS", day(11, 21, 0), day(12, 8, 30), nil},                // never acknowledged
	} {
		state := "DELIVERED"
		if n.ack != nil {
			state = "ACKNOWLEDGED"
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO triage.notices (notification_id, referral_id, partnership, agency, kind, state, state_at,
			sent_at, acknowledged_at, ack_due) VALUES ($1, $2, 'p1', $3, $4, $5, $6, $6, $7, $8)`,
			uuid.NewString(), ref, n.agency, n.kind, state, n.sent, n.ack, n.ackDue); err != nil {
			t.Fatal(err)
		}
	}
	var anyCase string
	if err := e.pool.QueryRow(ctx, `SELECT referral_id::text FROM triage.cases LIMIT 1`).Scan(&anyCase); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		requested, due, answered time.Time
	}{
		{day(2, 10, 0), day(3, 17, 0), day(3, 10, 0)},    // 1440 min, on time
		{day(10, 10, 0), day(11, 17, 0), day(12, 10, 0)}, // 2880 min, late
	} {
		if _, err := e.pool.Exec(ctx, `INSERT INTO triage.information_requests (id, referral_id, partnership, agency, question, due, state,
			answer, requested_by, requested_at, answered_by, answered_at) VALUES ($1, $2, 'p1', 'health-x', 'q', $3, 2, 'a', 'x', $4, 'y', $5)`,
			uuid.NewString(), anyCase, r.due, r.requested, r.answered); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct {
		raised   time.Time
		resolved *time.Time
	}{{day(5, 9, 0), ptr(day(20, 9, 0))}, {time.Date(2026, 10, 20, 9, 0, 0, 0, time.UTC), ptr(day(6, 9, 0))}} {
		if _, err := e.pool.Exec(ctx, `INSERT INTO triage.disagreements (id, referral_id, partnership, raised_by_agency, raised_by, reason,
			stage, stage_due, resolved, raised_at, resolved_at) VALUES ($1, $2, 'p1', 'police', 'x', 'r', 1, $3, $4, $3, $5)`,
			uuid.NewString(), anyCase, d.raised, d.resolved != nil, d.resolved); err != nil {
			t.Fatal(err)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.01 }

func tallies(ts []*triagev1.Tally) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.GetLabel()+"="+strconv.FormatInt(t.GetCount(), 10))
	}
	return strings.Join(parts, ",")
}

func TestDashboardFigures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	dashboardFixture(t, e)
	manager := e.staff(t, auth.RoleManager)
	req := &triagev1.GetDashboardRequest{Partnership: "p1", From: timestamppb.New(day(2, 0, 0)), To: timestamppb.New(day(16, 0, 0))}
	d, err := e.client.GetDashboard(manager.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// c1, c2, c3, c4, c7.
	if d.GetReferrals() != 5 {
		t.Fatalf("referrals %d, want 5", d.GetReferrals())
	}
	if got := tallies(d.GetBySourceAgency()); got != "health=2,police=2,education=1" {
		t.Errorf("by source %s", got)
	}
	// Human decisions c1 (on time), c2 (late), c3 (on time): 2 of 3; minutes 60, 1620, 120.
	if !near(d.GetDecidedWithinOneWorkingDayPercent(), 200.0/3) || !near(d.GetMedianMinutesToDecision(), 120) {
		t.Errorf("decided on time %v, median %v", d.GetDecidedWithinOneWorkingDayPercent(), d.GetMedianMinutesToDecision())
	}
	if got := tallies(d.GetRagDistribution()); got != "RAG_RED=2,RAG_AMBER=1,RAG_GREEN=1" {
		t.Errorf("RAG %s", got)
	}
	// Judged: c1 yes, c2 no, c3 yes, c4 (undecided, past due) no.
	if !near(d.GetWithinRagTimePercent(), 50) {
		t.Errorf("within RAG %v, want 50", d.GetWithinRagTimePercent())
	}
	if len(d.GetOutcomesByLevel()) != 2 || d.GetOutcomesByLevel()[0].GetLevel() != rulesv1.Level_LEVEL_2 ||
		tallies(d.GetOutcomesByLevel()[0].GetOutcomes()) != "NO_FURTHER_ACTION=1" ||
		d.GetOutcomesByLevel()[1].GetLevel() != rulesv1.Level_LEVEL_4 || tallies(d.GetOutcomesByLevel()[1].GetOutcomes()) != "SECTION_47_ENQUIRY=1" {
		t.Errorf("outcomes by level %v", d.GetOutcomesByLevel())
	}
	// Re-referrals: c3 (after c2, NFA), c4 (after c1, s47), c7 (after c0, advice): 3 of 5;
	// after NFA or advice: 2 of 3.
	if !near(d.GetReReferralPercent(), 60) || !near(d.GetReReferralAfterNfaPercent(), 200.0/3) {
		t.Errorf("re-referrals %v, after NFA %v", d.GetReReferralPercent(), d.GetReReferralAfterNfaPercent())
	}
	if d.GetStepUps() != 1 || d.GetStepDowns() != 1 {
		t.Errorf("step-ups %d, step-downs %d", d.GetStepUps(), d.GetStepDowns())
	}
	if d.GetDisagreementsRaised() != 1 || d.GetDisagreementsResolved() != 1 {
		t.Errorf("disagreements raised %d, resolved %d", d.GetDisagreementsRaised(), d.GetDisagreementsResolved())
	}
	acks := map[string]*triagev1.AgencyTurnaround{}
	for _, a := range d.GetAcknowledgementTimes() {
		acks[a.GetAgency()] = a
	}
	if a := acks["police"]; a.GetCount() != 2 || !near(a.GetMedianMinutes(), 75) || !near(a.GetOnTimePercent(), 50) {
		t.Errorf("police acknowledgements %v", a)
	}
	if a := acks["school-a"]; a.GetCount() != 1 || !near(a.GetMedianMinutes(), 720) || !near(a.GetOnTimePercent(), 100) {
		t.Errorf("school-a acknowledgements %v", a)
	}
	if a := acks["school-b"]; a.GetCount() != 1 || a.GetMedianMinutes() != 0 || a.GetOnTimePercent() != 0 {
		t.Errorf("school-b acknowledgements %v", a)
	}
	if d.GetEncompassNotifications() != 2 || !near(d.GetEncompassOnTimePercent(), 50) {
		t.Errorf("encompass %d, on time %v", d.GetEncompassNotifications(), d.GetEncompassOnTimePercent())
	}
	if ir := d.GetInformationRequestTurnaround(); len(ir) != 1 || ir[0].GetAgency() != "health-x" || ir[0].GetCount() != 2 ||
		!near(ir[0].GetMedianMinutes(), 2160) || !near(ir[0].GetOnTimePercent(), 50) {
		t.Errorf("information requests %v", ir)
	}
	if got := tallies(d.GetReferralsByWeek()); got != "2026-W45=2,2026-W46=3" {
		t.Errorf("weeks %s", got)
	}

	// Every partnership: the p2 case is counted too.
	all, err := e.client.GetDashboard(manager.ctx, &triagev1.GetDashboardRequest{From: req.GetFrom(), To: req.GetTo()})
	if err != nil || all.GetReferrals() != 6 {
		t.Fatalf("all partnerships: %v %v", all.GetReferrals(), err)
	}
	// Managers, auditors and admins only.
	p := e.staff(t, auth.RolePractitioner)
	if _, err := e.client.GetDashboard(p.ctx, req); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("practitioner reading the dashboard: %v", err)
	}
	auditor := e.staff(t, auth.RoleAuditor)
	if _, err := e.client.GetDashboard(auditor.ctx, req); err != nil {
		t.Fatalf("auditor reading the dashboard: %v", err)
	}
	if _, err := e.client.GetDashboard(auditor.ctx, &triagev1.GetDashboardRequest{From: req.GetTo(), To: req.GetFrom()}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("reversed range: %v", err)
	}
}

func TestDashboardCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	dashboardFixture(t, e)
	auditor := e.staff(t, auth.RoleAuditor)
	code, hdr, body := httpDo(t, "GET", e.httpURL+"/v1/dashboard.csv?partnership=p1&from=2026-11-02&to=2026-11-16T00:00:00Z", auditor.token, "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		if len(r) != 3 {
			t.Fatalf("row %v", r)
		}
		got[r[0]+","+r[1]] = r[2]
	}
	for k, v := range map[string]string{
		"section,label":                                           "value",
		"summary,referrals":                                       "5",
		"summary,within_rag_time_percent":                         "50",
		"summary,step_ups":                                        "1",
		"summary,encompass_notifications":                         "2",
		"by_source_agency,police":                                 "2",
		"rag_distribution,RAG_RED":                                "2",
		"outcomes_by_level,LEVEL_4/SECTION_47_ENQUIRY":            "1",
		"acknowledgement_times,police/median_minutes":             "75",
		"information_request_turnaround,health-x/on_time_percent": "50",
		"referrals_by_week,2026-W46":                              "3",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// The JSON dashboard answers on its route too; a practitioner is refused either way.
	code, _, body = httpDo(t, "GET", e.httpURL+"/v1/dashboard?partnership=p1&from=2026-11-02&to=2026-11-16", auditor.token, "")
	if d := fromJSON(t, code, body, &triagev1.GetDashboardResponse{}); d.GetReferrals() != 5 {
		t.Fatalf("JSON dashboard: %s", body)
	}
	p := e.staff(t, auth.RolePractitioner)
	if code, _, _ := httpDo(t, "GET", e.httpURL+"/v1/dashboard.csv", p.token, ""); code != 403 {
		t.Fatalf("practitioner CSV: %d", code)
	}
}
