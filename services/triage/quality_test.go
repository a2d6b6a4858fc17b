package triage_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// decidedBy publishes a practitioner's (or manager's) confirmation of referralID's
// recommendation, made by actor, and waits for the case to show it decided.
func (e *env) decidedBy(t testing.TB, referralID, partnership, actor string) {
	t.Helper()
	d := decision(referralID, partnership, 2, rulesv1.DecisionStatus_CONFIRMED, rulesv1.Level_LEVEL_2, rulesv1.Rag_RAG_GREEN,
		start.Add(24*time.Hour), start.Add(72*time.Hour))
	d.ReviewedBy = actor
	e.decided(t, d)
	e.waitCase(t, referralID, func(c store.Case) bool { return c.DecidedAt != nil && c.DecidedBy == actor })
}

// actorOf is how triage names a (non-person) client that acted: Identity.Actor.
func actorOf(c caller, role auth.Role) string {
	return fmt.Sprintf("client:%s (%s, %s)", c.id, "rct-mash", role)
}

// Managers review decided cases from the period's sample: agree, or disagree with a
// reason, once each, never their own decision; practitioners may not review; each review
// is an event on the trail, and the agreement rate counts them per partnership and month.
func TestQualityReviews(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{qaPercent: 100})
	qa := triagev1.NewQualityServiceClient(e.conn)
	m1 := e.hubCaller(t, auth.RoleManager, "rct")
	m2 := e.hubCaller(t, auth.RoleManager, "rct")
	p := e.hubCaller(t, auth.RolePractitioner, "rct")

	byPractitioner := e.about(t, kid{"Alys", "Test", "2016-01-01", "", "CF37 1AA"}, "rct", uuid.NewString(), "", start)
	byManager := e.about(t, kid{"Bryn", "Test", "2016-02-02", "", "CF37 1AB"}, "rct", uuid.NewString(), "", start.Add(time.Minute))
	undecided := e.about(t, kid{"Cai", "Test", "2016-03-03", "", "CF37 1AC"}, "rct", uuid.NewString(), "", start.Add(2*time.Minute))
	e.decidedBy(t, byPractitioner, "rct", actorOf(p, auth.RolePractitioner))
	e.decidedBy(t, byManager, "rct", actorOf(m1, auth.RoleManager))

	period := &triagev1.ListQualitySampleRequest{From: timestamppb.New(start.Add(-time.Hour)), To: timestamppb.New(start.Add(time.Hour))}
	if _, err := qa.ListQualitySample(p.ctx, period); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a practitioner's sample: %v, want PERMISSION_DENIED", err)
	}
	if _, err := qa.RecordQualityReview(p.ctx, &triagev1.RecordQualityReviewRequest{ReferralId: byManager, Verdict: triagev1.QualityVerdict_AGREE}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a practitioner's review: %v, want PERMISSION_DENIED", err)
	}
	sample, err := qa.ListQualitySample(m1.ctx, period)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range sample.GetCases() {
		ids = append(ids, c.GetReferralId())
		if c.GetReferralId() == byManager && !c.GetDecidedByMe() {
			t.Errorf("the sample does not say %s is the manager's own decision", byManager)
		}
	}
	if !slices.Contains(ids, byPractitioner) || !slices.Contains(ids, byManager) || slices.Contains(ids, undecided) || sample.GetDecided() != 2 ||
		sample.GetSamplePercent() != 100 {
		t.Fatalf("sample %v (of %d decided, %d%%), want the two decided cases", ids, sample.GetDecided(), sample.GetSamplePercent())
	}

	review := func(c caller, id string, v triagev1.QualityVerdict, reason string) error {
		_, err := qa.RecordQualityReview(c.ctx, &triagev1.RecordQualityReviewRequest{ReferralId: id, Verdict: v, Reason: reason,
			LearningPoint: "Synthetic learning point."})
		return err
	}
	for _, c := range []struct {
		who    caller
		id     string
		v      triagev1.QualityVerdict
		reason string
		code   codes.Code
		field  string
	}{
		{m1, byManager, triagev1.QualityVerdict_AGREE, "", codes.FailedPrecondition, "decided by you"},
		{m1, undecided, triagev1.QualityVerdict_AGREE, "", codes.FailedPrecondition, "not been decided"},
		{m1, byPractitioner, triagev1.QualityVerdict_DISAGREE, "", codes.InvalidArgument, "reason"},
		{m1, byPractitioner, triagev1.QualityVerdict_QUALITY_VERDICT_UNSPECIFIED, "", codes.InvalidArgument, "verdict"},
		{m1, "not-a-case", triagev1.QualityVerdict_AGREE, "", codes.InvalidArgument, "referralId"},
	} {
		if err := review(c.who, c.id, c.v, c.reason); status.Code(err) != c.code || !strings.Contains(err.Error(), c.field) {
			t.Errorf("review of %s (%v): %v, want %v naming %q", c.id, c.v, err, c.code, c.field)
		}
	}
	if err := review(m1, byPractitioner, triagev1.QualityVerdict_AGREE, ""); err != nil {
		t.Fatal(err)
	}
	if err := review(m1, byPractitioner, triagev1.QualityVerdict_DISAGREE, "Second thoughts."); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("a second review by the same manager: %v, want ALREADY_EXISTS", err)
	}
	if err := review(m2, byPractitioner, triagev1.QualityVerdict_DISAGREE, "Level 3a: the school's earlier concerns."); err != nil {
		t.Fatal(err)
	}
	// Over HTTP, through the routes the contract declares.
	code, _, body := httpDo(t, http.MethodPost, e.httpURL+"/v1/cases/"+byManager+"/quality-reviews", m2.token, `{"verdict":"AGREE"}`)
	if code != http.StatusOK || !strings.Contains(body, `"AGREE"`) {
		t.Fatalf("HTTP review: %d %s", code, body)
	}
	code, _, body = httpDo(t, http.MethodGet, e.httpURL+"/v1/quality/agreement", m1.token, "")
	agreement := fromJSON(t, code, body, &triagev1.GetQualityAgreementResponse{})
	if len(agreement.GetPeriods()) != 1 || len(agreement.GetTotals()) != 1 {
		t.Fatalf("agreement %v, want one partnership in one month", agreement)
	}
	a := agreement.GetPeriods()[0]
	if a.GetPartnership() != "rct" || a.GetPeriod() != "2026-11" || a.GetReviewed() != 3 || a.GetAgreed() != 2 ||
		math.Abs(a.GetAgreementPercent()-200.0/3) > 0.01 {
		t.Fatalf("agreement %v, want rct 2026-11: 2 of 3 agreed", a)
	}
	// The sample says what the manager has reviewed.
	sample, err = qa.ListQualitySample(m1.ctx, period)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range sample.GetCases() {
		if c.GetReferralId() == byPractitioner && (!c.GetReviewedByMe() || c.GetReviews() != 2) {
			t.Errorf("sampled case after reviews: %v", c)
		}
	}
	reviews, err := qa.ListQualityReviews(m1.ctx, &triagev1.ListQualityReviewsRequest{ReferralId: byPractitioner})
	if err != nil || len(reviews.GetReviews()) != 2 {
		t.Fatalf("reviews of %s: %v %v", byPractitioner, reviews, err)
	}
	// The case page carries them, for the practitioner whose decision was reviewed too.
	page, err := e.client.GetCase(p.ctx, &triagev1.GetCaseRequest{ReferralId: byPractitioner})
	if err != nil || len(page.GetQualityReviews()) != 2 || !slices.ContainsFunc(page.GetQualityReviews(), func(r *triagev1.QualityReview) bool {
		return r.GetVerdict() == triagev1.QualityVerdict_DISAGREE && r.GetReason() != ""
	}) {
		t.Fatalf("case page of %s: reviews %v %v", byPractitioner, page.GetQualityReviews(), err)
	}
	// Every review is on the trail, with the reviewer in their role.
	rows, err := e.pool.Query(context.Background(), `SELECT payload FROM triage.outbox WHERE subject = $1 ORDER BY id`, eventsv1.SubjectQualityReviewed)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		env, ev := decode(t, raw, &eventsv1.QualityReviewRecorded{})
		if env.GetActor().GetRole() != string(auth.RoleManager) || ev.GetReview().GetReviewer() == "" || ev.GetActorRole() != "manager" {
			t.Errorf("review event %v by %v", ev, env.GetActor())
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d review events, want 3", n)
	}
}

// The sample of a period is the same every time it is asked for, holds about the share
// configured, and a case is in or out whatever else was decided.
func TestQualitySampleIsReproducible(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t, migrationsKey(t), migrateAll)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO triage.cases (referral_id, partnership, decided_at, decided_by, state)
		SELECT gen_random_uuid(), 'rct', $1::timestamptz + n * interval '1 minute', 'someone', 3 FROM generate_series(1, 400) n`, start); err != nil {
		t.Fatal(err)
	}
	f := store.SampleFilter{From: start, To: start.Add(24 * time.Hour), Percent: 25, Seed: start.Format(time.RFC3339), Limit: 1000}
	first, decided, err := store.QualitySample(ctx, pool, f)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := store.QualitySample(ctx, pool, f)
	if err != nil {
		t.Fatal(err)
	}
	idsOf := func(cs []store.SampleCase) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ReferralID)
		}
		return out
	}
	if decided != 400 || len(first) < 60 || len(first) > 140 || !slices.Equal(idsOf(first), idsOf(again)) {
		t.Fatalf("25%% of 400 sampled %d (%d decided); same again: %v", len(first), decided, slices.Equal(idsOf(first), idsOf(again)))
	}
	// More cases decided in the period leave the sampled ones sampled.
	if _, err := pool.Exec(ctx, `INSERT INTO triage.cases (referral_id, partnership, decided_at, decided_by, state)
		SELECT gen_random_uuid(), 'rct', $1::timestamptz + n * interval '1 minute', 'someone', 3 FROM generate_series(1, 100) n`, start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	later, _, err := store.QualitySample(ctx, pool, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range idsOf(first) {
		if !slices.Contains(idsOf(later), id) {
			t.Fatalf("case %s left the sample when others were decided", id)
		}
	}
	f.Percent = 100
	if all, _, err := store.QualitySample(ctx, pool, f); err != nil || len(all) != 500 {
		t.Fatalf("100%% sampled %d of 500: %v", len(all), err)
	}
}
