package audit_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	auditv1 "github.com/mash-hub/mash/proto/mash/audit/v1"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/audit"
)

// accessWorld is one referral of one child, from agency-a, confirmed by user-17, and reads
// of it (and of an unknown referral) published through JetStream and integrated by the
// running consumer and sequencer, which are then stopped so the queries are deterministic.
type accessWorld struct {
	e                             *env
	referralID, childID, otherRef string
}

// Reads, by their action (unique; the entry's decision is "read: " + action). November is
// GMT, so UTC times are London times.
var accessReads = []struct {
	action, client, role, agency string
	at                           time.Time
	subject                      string
	withChild, otherReferral     bool
	reasons                      []string
}{
	{"r1-referrer-weekday", "c-a1", "practitioner", "agency-a", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), "mash.access.referral", false, false, nil},
	{"r2-uninvolved", "c-b", "practitioner", "agency-b", time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC), "mash.access.referral", false, false,
		[]string{audit.ReasonNotInvolved}},
	{"r3-saturday", "c-a1", "practitioner", "agency-a", time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC), "mash.access.referral", false, false,
		[]string{audit.ReasonOutOfHours}},
	{"r4-late-night", "c-a2", "practitioner", "agency-a", time.Date(2026, 11, 24, 23, 30, 0, 0, time.UTC), "mash.access.decision", true, false,
		[]string{audit.ReasonOutOfHours}},
	{"r5-auditor", "c-aud", "auditor", "hub", time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC), "mash.access.decision", true, false, nil},
	{"r6-reviewer", "user-17", "practitioner", "agency-c", time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), "mash.access.decision", true, false, nil},
	{"r7-reviewers-agency", "c-c2", "manager", "agency-c", time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), "mash.access.referral", false, false, nil},
	{"r9-admin", "c-adm", "admin", "hub", time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), "mash.access.referral", false, false,
		[]string{audit.ReasonNotInvolved}},
	// An unknown referral: never "not involved", but still out of hours.
	{"r8-unknown-referral", "c-b", "practitioner", "agency-b", time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC), "mash.access.referral", false, true,
		[]string{audit.ReasonOutOfHours}},
}

func newAccessWorld(t *testing.T) *accessWorld {
	t.Helper()
	e := newEnv(t)
	w := &accessWorld{e: e, referralID: uuid.NewString(), childID: uuid.NewString(), otherRef: uuid.NewString()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	var n int64
	pub := func(typ, referralID string, at time.Time, payload proto.Message) {
		t.Helper()
		n++
		ev, raw, err := legacyEnvelope(t, typ, "rct", referralID, n, at, payload)
		if err != nil {
			t.Fatal(err)
		}
		e.publish(t, ev, raw, ev.GetEventId())
	}
	received := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	pub("mash.referral.received", w.referralID, received, &eventsv1.ReferralReceived{Referral: &intakev1.Referral{
		Id: w.referralID, Agency: "agency-a", Partnership: "rct", AgencyKind: "police", ReceivedAt: timestamppb.New(received)}})
	outcome := &rulesv1.Outcome{Level: rulesv1.Level_LEVEL_3A, Rag: rulesv1.Rag_RAG_AMBER}
	pub("mash.triage.confirmed", w.referralID, received.Add(30*time.Minute), &eventsv1.TriageConfirmed{Decision: &rulesv1.Decision{
		Id: uuid.NewString(), ReferralId: w.referralID, Partnership: "rct", PackVersion: "2026.1", Recommended: outcome,
		Current: outcome, Status: rulesv1.DecisionStatus_CONFIRMED, ChildId: w.childID, ReviewedBy: "user-17"}})
	for _, r := range accessReads {
		ref, child := w.referralID, ""
		if r.withChild {
			child = w.childID
		}
		if r.otherReferral {
			ref = w.otherRef
		}
		pub(r.subject, ref, r.at, &eventsv1.RecordAccessed{ClientId: r.client, Role: r.role, Agency: r.agency, Action: r.action,
			ReferralId: ref, ChildId: child})
	}
	waitFor(t, "every event integrated", func() bool {
		var pending int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit.pending`).Scan(&pending)
		return pending == 0 && e.head(t).TreeSize == n
	})
	stop()
	return w
}

// actions returns the read actions of access records ("read: X" -> X; audit queries keep
// their description), checking they are newest first.
func actions(t *testing.T, recs []*auditv1.AccessRecord) []string {
	t.Helper()
	var out []string
	for i, r := range recs {
		if i > 0 && r.GetSeq() >= recs[i-1].GetSeq() {
			t.Errorf("records not newest first at %d: %d after %d", i, r.GetSeq(), recs[i-1].GetSeq())
		}
		out = append(out, strings.TrimPrefix(r.GetWhat(), "read: "))
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func readsWhere(keep func(i int) bool) []string {
	var out []string
	for i, r := range accessReads {
		if keep(i) {
			out = append(out, r.action)
		}
	}
	return out
}

func TestWhoAccessed(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t)
	e, api := w.e, w.e.svc.API()
	ofReferral := readsWhere(func(i int) bool { return !accessReads[i].otherReferral })

	byRef, err := api.WhoAccessed(auditor, &auditv1.WhoAccessedRequest{ReferralId: w.referralID})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(t, byRef.GetAccesses()); !sameSet(got, ofReferral) || byRef.GetNextPageToken() != "" {
		t.Fatalf("by referral: %v (next %q), want %v", got, byRef.GetNextPageToken(), ofReferral)
	}
	for _, r := range byRef.GetAccesses() {
		if r.GetWhat() == "read: r2-uninvolved" && (r.GetActor() != "c-b" || r.GetRole() != "practitioner" || r.GetAgency() != "agency-b" ||
			!r.GetOccurredAt().AsTime().Equal(accessReads[1].at) || r.GetEventType() != "mash.access.referral" || r.GetReferralId() != w.referralID) {
			t.Errorf("record = %+v", r)
		}
	}
	if n := e.accessCount(t); n != 1 {
		t.Fatalf("%d access entries after one WhoAccessed, want 1", n)
	}

	// By child: the reads that name the child and those of the child's referral that do
	// not (GetReferral does not know the child), in the same order.
	byChild, err := api.WhoAccessed(auditor, &auditv1.WhoAccessedRequest{ChildId: w.childID})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(t, byChild.GetAccesses()); !slices.Equal(got, actions(t, byRef.GetAccesses())) {
		t.Fatalf("by child: %v, want %v", got, ofReferral)
	}

	// Pages of 2 join up while the log grows (each page's own access entry is sequenced).
	var paged []*auditv1.AccessRecord
	token := ""
	for {
		p, err := api.WhoAccessed(auditor, &auditv1.WhoAccessedRequest{ChildId: w.childID, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.GetAccesses()) > 2 {
			t.Fatalf("page of %d", len(p.GetAccesses()))
		}
		paged = append(paged, p.GetAccesses()...)
		e.sequenceAll(t)
		if token = p.GetNextPageToken(); token == "" {
			break
		}
	}
	if got, want := actions(t, paged), actions(t, byChild.GetAccesses()); !slices.Equal(got, want) {
		t.Fatalf("paged: %v, want %v", got, want)
	}

	// The queries' own access entries are accesses of the child's record too.
	again, err := api.WhoAccessed(auditor, &auditv1.WhoAccessedRequest{ReferralId: w.referralID, PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	own := 0
	for _, r := range again.GetAccesses() {
		if r.GetEventType() == audit.EventAccessed {
			own++
			if r.GetActor() != "client-auditor" || !strings.HasPrefix(r.GetWhat(), "WhoAccessed") {
				t.Errorf("own access entry = %+v", r)
			}
		}
	}
	// Sequenced so far: the query by referral, the one by child and the 4 pages; only the
	// first names the referral, all name the child or one of its referrals.
	if own != 1 || len(again.GetAccesses()) != len(ofReferral)+1 {
		t.Errorf("by referral after the queries: %d own entries of %d, want 1 of %d", own, len(again.GetAccesses()), len(ofReferral)+1)
	}
	childAgain, err := api.WhoAccessed(auditor, &auditv1.WhoAccessedRequest{ChildId: w.childID, PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(childAgain.GetAccesses()); n != len(ofReferral)+6 {
		t.Errorf("by child after the queries: %d entries, want %d", n, len(ofReferral)+6)
	}
	if n := e.accessCount(t); n != 8 {
		t.Errorf("%d access entries after 8 queries", n)
	}

	for _, bad := range []*auditv1.WhoAccessedRequest{{}, {ChildId: "a", ReferralId: "b"}, {ChildId: "a", PageSize: 501},
		{ChildId: "a", PageToken: "x"}} {
		if _, err := api.WhoAccessed(auditor, bad); code(err) != codes.InvalidArgument {
			t.Errorf("WhoAccessed(%v) = %v, want InvalidArgument", bad, err)
		}
	}
}

func TestUserActivity(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t)
	e, api := w.e, w.e.svc.API()

	all, err := api.UserActivity(auditor, &auditv1.UserActivityRequest{Actor: "c-b"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := actions(t, all.GetAccesses()), []string{"r2-uninvolved", "r8-unknown-referral"}; !sameSet(got, want) {
		t.Fatalf("c-b: %v, want %v", got, want)
	}
	for _, r := range all.GetAccesses() {
		if r.GetActor() != "c-b" || r.GetAgency() != "agency-b" {
			t.Errorf("record %+v", r)
		}
	}
	inRange, err := api.UserActivity(auditor, &auditv1.UserActivityRequest{Actor: "c-b",
		From: timestamppb.New(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)), To: timestamppb.New(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(t, inRange.GetAccesses()); !slices.Equal(got, []string{"r2-uninvolved"}) {
		t.Fatalf("c-b in range: %v", got)
	}
	// Paging one at a time joins up.
	var paged []*auditv1.AccessRecord
	token := ""
	for {
		p, err := api.UserActivity(auditor, &auditv1.UserActivityRequest{Actor: "c-a1", PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, p.GetAccesses()...)
		if token = p.GetNextPageToken(); token == "" {
			break
		}
	}
	if got := actions(t, paged); !sameSet(got, []string{"r1-referrer-weekday", "r3-saturday"}) {
		t.Fatalf("c-a1 paged: %v", got)
	}
	// The auditor's own queries are its activity.
	before := e.accessCount(t)
	e.sequenceAll(t)
	mine, err := api.UserActivity(auditor, &auditv1.UserActivityRequest{Actor: "client-auditor"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine.GetAccesses()) != before || e.accessCount(t) != before+1 {
		t.Errorf("auditor's activity: %d entries, want %d; %d access entries", len(mine.GetAccesses()), before, e.accessCount(t))
	}
	for _, bad := range []*auditv1.UserActivityRequest{{}, {Actor: "x", PageSize: -1},
		{Actor: "x", From: timestamppb.New(e.now), To: timestamppb.New(e.now)}} {
		if _, err := api.UserActivity(auditor, bad); code(err) != codes.InvalidArgument {
			t.Errorf("UserActivity(%v) = %v, want InvalidArgument", bad, err)
		}
	}
}

func TestUnusualAccess(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t)
	e, api := w.e, w.e.svc.API()

	// The default range is the 7 days up to now (2026-11-26 10:00), which holds every read.
	rep, err := api.UnusualAccess(auditor, &auditv1.UnusualAccessRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, r := range accessReads {
		if len(r.reasons) > 0 {
			want[r.action] = r.reasons
		}
	}
	check := func(name string, items []*auditv1.FlaggedAccess) {
		t.Helper()
		got := map[string][]string{}
		for i, it := range items {
			if i > 0 && it.GetAccess().GetSeq() >= items[i-1].GetAccess().GetSeq() {
				t.Errorf("%s: not newest first at %d", name, i)
			}
			got[strings.TrimPrefix(it.GetAccess().GetWhat(), "read: ")] = it.GetReasons()
		}
		if len(got) != len(want) || len(items) != len(want) {
			t.Errorf("%s: flagged %v, want %v", name, got, want)
		}
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Errorf("%s: %s flagged %v, want %v", name, k, got[k], v)
			}
		}
	}
	check("default range", rep.GetAccesses())
	if rep.GetNextPageToken() != "" {
		t.Errorf("next page token %q on the only page", rep.GetNextPageToken())
	}
	if n := e.accessCount(t); n != 1 {
		t.Errorf("%d access entries after UnusualAccess, want 1", n)
	}

	// Pages of one join up; the report's own entries (at now, a weekday morning, by an
	// auditor, and outside the range) are never flagged.
	var paged []*auditv1.FlaggedAccess
	token := ""
	for pages := 0; ; pages++ {
		p, err := api.UnusualAccess(auditor, &auditv1.UnusualAccessRequest{From: timestamppb.New(e.now.Add(-7 * 24 * time.Hour)),
			To: timestamppb.New(e.now.Add(time.Hour)), PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.GetAccesses()) > 1 || pages > 10 {
			t.Fatalf("page %d of %d items", pages, len(p.GetAccesses()))
		}
		paged = append(paged, p.GetAccesses()...)
		e.sequenceAll(t)
		if token = p.GetNextPageToken(); token == "" {
			break
		}
	}
	check("paged", paged)

	// A narrower range: Saturday only.
	sat, err := api.UnusualAccess(auditor, &auditv1.UnusualAccessRequest{From: timestamppb.New(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)),
		To: timestamppb.New(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	if len(sat.GetAccesses()) != 2 {
		t.Errorf("Saturday: %v", sat.GetAccesses())
	}
	if _, err := api.UnusualAccess(auditor, &auditv1.UnusualAccessRequest{From: timestamppb.New(e.now.Add(time.Hour))}); code(err) != codes.InvalidArgument {
		t.Errorf("from after the default to: %v", err)
	}
}

func TestOutOfHours(t *testing.T) {
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), false},   // Monday 08:00 GMT
		{time.Date(2026, 11, 23, 7, 59, 0, 0, time.UTC), true},   // before hours
		{time.Date(2026, 11, 23, 17, 59, 0, 0, time.UTC), false}, // last minute
		{time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC), true},   // closed
		{time.Date(2026, 7, 6, 7, 30, 0, 0, time.UTC), false},    // Monday 08:30 BST
		{time.Date(2026, 7, 6, 17, 30, 0, 0, time.UTC), true},    // Monday 18:30 BST
		{time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), true},   // Sunday
		{time.Date(2026, 11, 20, 23, 30, 0, 0, time.UTC), true},  // Friday night
	} {
		if got := audit.OutOfHours(c.at); got != c.want {
			t.Errorf("OutOfHours(%s) = %v, want %v", c.at, got, c.want)
		}
	}
}

// The access queries refuse other roles without recording anything, and answer over HTTP.
func TestAccessQueriesDeniedAndHTTP(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t)
	e, api := w.e, w.e.svc.API()
	calls := map[string]func(context.Context) error{
		"WhoAccessed": func(ctx context.Context) error {
			_, err := api.WhoAccessed(ctx, &auditv1.WhoAccessedRequest{ChildId: w.childID})
			return err
		},
		"UserActivity": func(ctx context.Context) error {
			_, err := api.UserActivity(ctx, &auditv1.UserActivityRequest{Actor: "c-b"})
			return err
		},
		"UnusualAccess": func(ctx context.Context) error {
			_, err := api.UnusualAccess(ctx, &auditv1.UnusualAccessRequest{})
			return err
		},
	}
	for name, call := range calls {
		for _, role := range []auth.Role{auth.RoleReferrer, auth.RolePractitioner, auth.RoleManager, auth.RoleAdmin} {
			if err := call(as(role)); code(err) != codes.PermissionDenied {
				t.Errorf("%s as %s: %v, want PermissionDenied", name, role, err)
			}
		}
	}
	if n := e.accessCount(t); n != 0 {
		t.Fatalf("refused queries recorded %d access entries", n)
	}
	i := 0
	for name, call := range calls {
		if err := call(as(auth.RoleAuditor)); err != nil {
			t.Errorf("%s as auditor: %v", name, err)
		}
		if i++; e.accessCount(t) != i {
			t.Errorf("after %s: %d access entries, want %d", name, e.accessCount(t), i)
		}
	}

	srv := server.New(server.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, zapNop(), fakeAuthn{
		"aud": {ClientID: "c-aud", Agency: "hub", Kind: "hub", Role: auth.RoleAuditor, Partnerships: []string{auth.AllPartnerships}},
		"pra": {ClientID: "c-pra", Agency: "hub", Kind: "hub", Role: auth.RolePractitioner, Partnerships: []string{auth.AllPartnerships}},
	}, prometheus.NewRegistry())
	e.svc.Register(srv)
	ls, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ls) }()
	t.Cleanup(func() { cancel(); <-done })
	get := func(token, path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+ls.HTTP.Addr().String()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, []byte(b.String())
	}
	status, body := get("aud", "/v1/audit/access?referralId="+w.referralID)
	var who auditv1.WhoAccessedResponse
	if err := protojson.Unmarshal(body, &who); status != http.StatusOK || err != nil || len(who.GetAccesses()) < 7 {
		t.Errorf("GET access: %d %v %s", status, err, body)
	}
	status, body = get("aud", "/v1/audit/activity?actor=c-b&from=2026-11-22T00:00:00Z&to=2026-11-24T00:00:00Z")
	var act auditv1.UserActivityResponse
	if err := protojson.Unmarshal(body, &act); status != http.StatusOK || err != nil || len(act.GetAccesses()) != 1 {
		t.Errorf("GET activity: %d %v %s", status, err, body)
	}
	status, body = get("aud", "/v1/audit/unusual-access?from=2026-11-19T00:00:00Z&to=2026-11-26T00:00:00Z")
	var un auditv1.UnusualAccessResponse
	if err := protojson.Unmarshal(body, &un); status != http.StatusOK || err != nil || len(un.GetAccesses()) != 5 {
		t.Errorf("GET unusual-access: %d %v %s", status, err, body)
	}
	for _, path := range []string{"/v1/audit/access?childId=" + w.childID, "/v1/audit/activity?actor=c-b", "/v1/audit/unusual-access"} {
		if status, _ := get("pra", path); status != http.StatusForbidden {
			t.Errorf("GET %s as practitioner: %d, want 403", path, status)
		}
	}
	if status, _ := get("aud", "/v1/audit/unusual-access?from=yesterday"); status != http.StatusBadRequest {
		t.Errorf("bad time: %d", status)
	}
}

// Hub staff working a case may read who accessed that one referral (the case page shows
// it), and the read is recorded like an auditor's; a child's whole trail stays an auditor's.
func TestHubStaffReadWhoAccessedOneReferral(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t)
	e, api := w.e, w.e.svc.API()
	before := e.accessCount(t)
	for _, role := range []auth.Role{auth.RolePractitioner, auth.RoleManager} {
		got, err := api.WhoAccessed(as(role), &auditv1.WhoAccessedRequest{ReferralId: w.referralID})
		if err != nil {
			t.Fatalf("%s by referral: %v", role, err)
		}
		want := readsWhere(func(i int) bool { return !accessReads[i].otherReferral })
		if got := actions(t, got.GetAccesses()); !sameSet(got, want) {
			t.Errorf("%s by referral: %v, want %v", role, got, want)
		}
	}
	if n := e.accessCount(t); n != before+2 {
		t.Errorf("%d access entries after two reads, want %d", n, before+2)
	}
	for _, role := range []auth.Role{auth.RoleReferrer, auth.RoleAdmin} {
		if _, err := api.WhoAccessed(as(role), &auditv1.WhoAccessedRequest{ReferralId: w.referralID}); code(err) != codes.PermissionDenied {
			t.Errorf("%s by referral: %v, want PermissionDenied", role, err)
		}
	}
}
