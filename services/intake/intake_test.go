package intake_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

type ackJSON struct {
	ReferralID        string    `json:"referralId"`
	Reference         string    `json:"reference"`
	ExternalReference string    `json:"externalReference"`
	ReceivedAt        time.Time `json:"receivedAt"`
	Status            string    `json:"status"`
	DecisionDue       time.Time `json:"decisionDue"`
	Replay            bool      `json:"replay"`
}

type errorJSON struct {
	Error struct {
		Code            string `json:"code"`
		Message         string `json:"message"`
		FieldViolations []struct {
			Field       string `json:"field"`
			Description string `json:"description"`
		} `json:"fieldViolations"`
	} `json:"error"`
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

// withExternalRef returns the example with another external reference.
func withExternalRef(t *testing.T, ref string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(exampleJSON(t), &m); err != nil {
		t.Fatal(err)
	}
	m["externalReference"] = ref
	b, _ := json.Marshal(m)
	return string(b)
}

func TestExampleAcceptedOverHTTPAndPublished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)

	code, body := e.post(t, token, string(exampleJSON(t)))
	if code != 201 {
		t.Fatalf("POST example: %d %s", code, body)
	}
	ack := decode[ackJSON](t, body)
	if ack.ReferralID == "" || !strings.HasPrefix(ack.Reference, "MASH-2026-") || ack.Status != "RECEIVED" || ack.Replay {
		t.Fatalf("acknowledgement: %+v", ack)
	}
	if ack.ExternalReference != "SWP-2026-11-000123" || !ack.ReceivedAt.Equal(e.now) {
		t.Fatalf("acknowledgement echoes: %+v", ack)
	}
	// Received Thursday 26 Nov 2026 12:00 GMT: one working day later is Friday 12:00.
	if want := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC); !ack.DecisionDue.Equal(want) {
		t.Fatalf("decisionDue = %s, want %s", ack.DecisionDue, want)
	}

	code, body = e.get(t, token, "/v1/referrals/"+ack.ReferralID)
	if code != 200 {
		t.Fatalf("GET: %d %s", code, body)
	}
	var got intakev1.Referral
	if err := protojson.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.GetAgency() != "south-wales-police" || got.GetSubmission().GetChild().GetNhsNumber() != "9434765919" ||
		len(got.GetSubmission().GetConcerns()) != 2 || got.GetVersion() != 1 {
		t.Fatalf("stored referral differs: %v", &got)
	}

	// Exactly one event, with the event id as Nats-Msg-Id, carrying the referral.
	msg := waitForEvent(t, e.js, "mash.referral.received")
	var env eventsv1.Envelope
	if err := proto.Unmarshal(msg.Data, &env); err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) != env.GetEventId() || env.GetReferralId() != ack.ReferralID ||
		env.GetPartnership() != "rhondda-cynon-taf" || env.GetVersion() != 1 || env.GetType() != "mash.referral.received" {
		t.Fatalf("event envelope: %v (msg id %q)", &env, msg.Header.Get(jetstream.MsgIDHeader))
	}
	var rr eventsv1.ReferralReceived
	if err := env.GetPayload().UnmarshalTo(&rr); err != nil {
		t.Fatal(err)
	}
	if rr.GetReferral().GetId() != ack.ReferralID || rr.GetReferral().GetSubmission().GetChild().GetSchool() != "Example Primary School" {
		t.Fatalf("event payload: %v", &rr)
	}
}

// waitForEvent returns the only message on subject, failing if there is not exactly one
// once the relay has had time to publish.
func waitForEvent(t *testing.T, js jetstream.JetStream, subject string) jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "MASH")
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		if n := info.State.Subjects[subject]; n >= 1 {
			if n != 1 {
				t.Fatalf("%d messages on %s, want 1", n, subject)
			}
			msg, err := stream.GetLastMsgForSubject(ctx, subject)
			if err != nil {
				t.Fatal(err)
			}
			return *msg
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no event on %s", subject)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestSubmitOverGRPCAndReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "cwm-taf-health", "health", auth.RoleReferrer)
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(exampleJSON(t), sub); err != nil {
		t.Fatal(err)
	}
	ctx := withToken(context.Background(), token)
	first, err := e.client.SubmitReferral(ctx, &intakev1.SubmitReferralRequest{Referral: sub})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.client.SubmitReferral(ctx, &intakev1.SubmitReferralRequest{Referral: sub})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetAcknowledgement().GetReplay() || !again.GetAcknowledgement().GetReplay() ||
		again.GetAcknowledgement().GetReferralId() != first.GetAcknowledgement().GetReferralId() ||
		again.GetAcknowledgement().GetReference() != first.GetAcknowledgement().GetReference() {
		t.Fatalf("replay: first %v, again %v", first, again)
	}
	// The same submission over HTTP is the same content: a replay too.
	code, body := e.post(t, token, string(exampleJSON(t)))
	if code != 200 || !decode[ackJSON](t, body).Replay {
		t.Fatalf("HTTP retry of a gRPC submission: %d %s", code, body)
	}
	got, err := e.client.GetReferral(ctx, &intakev1.GetReferralRequest{Id: first.GetAcknowledgement().GetReferralId()})
	if err != nil {
		t.Fatal(err)
	}
	// What is stored is what was sent, with the referrer's telephone number in E.164.
	want := proto.Clone(sub).(*intakev1.ReferralSubmission)
	want.Referrer.Phone = "+441443000000"
	if sub.GetReferrer().GetPhone() == want.GetReferrer().GetPhone() {
		t.Fatal("the example's phone is already in E.164: the test proves nothing")
	}
	if !proto.Equal(got.GetReferral().GetSubmission(), want) {
		t.Fatalf("stored submission differs from the one sent: phone %q", got.GetReferral().GetSubmission().GetReferrer().GetPhone())
	}
}

func TestRacingIdenticalSubmissionsMakeOneReferral(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	body := withExternalRef(t, "SWP-RACE-1")
	const n = 16
	acks := make([]ackJSON, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, b := e.post(t, token, body)
			if code != 201 && code != 200 {
				t.Errorf("racer %d: %d %s", i, code, b)
				return
			}
			acks[i] = decode[ackJSON](t, b)
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for _, a := range acks {
		if a.ReferralID != acks[0].ReferralID {
			t.Fatalf("racers got different referrals: %s and %s", a.ReferralID, acks[0].ReferralID)
		}
		if !a.Replay {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d racers were told they created the referral, want 1", created)
	}
	var rows, outbox int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM intake.referrals`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM intake.outbox`).Scan(&outbox); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || outbox != 1 {
		t.Fatalf("%d referrals and %d outbox rows, want 1 and 1", rows, outbox)
	}
}

func TestSameKeyDifferentContentConflicts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	if code, body := e.post(t, token, string(exampleJSON(t))); code != 201 {
		t.Fatalf("first: %d %s", code, body)
	}
	changed := strings.Replace(string(exampleJSON(t)), "Third call-out", "Fourth call-out", 1)
	code, body := e.post(t, token, changed)
	if code != 409 {
		t.Fatalf("changed content under the same key: %d %s, want 409", code, body)
	}
	er := decode[errorJSON](t, body)
	if er.Error.Code != "ALREADY_EXISTS" || !strings.Contains(er.Error.Message, "SWP-2026-11-000123") {
		t.Fatalf("conflict error should name the key: %+v", er)
	}
	// Another agency may use the same external reference: keys are per agency.
	other := e.credential(t, "gwent-police", "police", auth.RoleReferrer)
	if code, body := e.post(t, other, changed); code != 201 {
		t.Fatalf("another agency, same reference: %d %s", code, body)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	for name, tok := range map[string]string{
		"none":      "",
		"malformed": "not-a-token",
		"unknown":   "mash_0123456789abcdef_c2VjcmV0",
		"tampered":  token[:len(token)-2] + "xx",
	} {
		code, body := e.post(t, tok, string(exampleJSON(t)))
		if code != 401 || decode[errorJSON](t, body).Error.Code != "UNAUTHENTICATED" {
			t.Errorf("%s credential over HTTP: %d %s, want 401", name, code, body)
		}
		ctx := context.Background()
		if tok != "" {
			ctx = withToken(ctx, tok)
		}
		_, err := e.client.ListReferrals(ctx, &intakev1.ListReferralsRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s credential over gRPC: %v, want UNAUTHENTICATED", name, err)
		}
	}
	// A revoked credential stops working (this process has not cached it yet).
	c, revoked, err := e.auth.Create(context.Background(), "gwent-police", "police", auth.RoleReferrer, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.auth.Revoke(context.Background(), c.ClientID, "test"); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.post(t, revoked, string(exampleJSON(t))); code != 401 {
		t.Fatalf("revoked credential: %d, want 401", code)
	}
}

func TestAgencySeesOnlyItsOwnReferrals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	swp := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	gwent := e.credential(t, "gwent-police", "police", auth.RoleReferrer)
	staff := e.credential(t, "rct-mash", "hub", auth.RolePractitioner)
	auditor := e.credential(t, "rct-mash", "hub", auth.RoleAuditor)
	code, body := e.post(t, swp, string(exampleJSON(t)))
	if code != 201 {
		t.Fatal(code, body)
	}
	id := decode[ackJSON](t, body).ReferralID

	if code, body := e.get(t, gwent, "/v1/referrals/"+id); code != 404 || decode[errorJSON](t, body).Error.Code != "NOT_FOUND" {
		t.Fatalf("another agency reading: %d %s, want 404", code, body)
	}
	_, err := e.client.GetReferral(withToken(context.Background(), gwent), &intakev1.GetReferralRequest{Id: id})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("another agency over gRPC: %v", err)
	}
	if code, _ := e.get(t, staff, "/v1/referrals/"+id); code != 200 {
		t.Fatalf("hub practitioner reading: %d", code)
	}
	// Every successful read left an access event in the outbox before it returned; the
	// refused reads (another agency's) left none.
	var reads int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM intake.outbox WHERE subject = 'mash.access.referral'`).Scan(&reads); err != nil {
		t.Fatal(err)
	}
	if reads != 1 {
		t.Fatalf("%d access events after one successful read, want 1", reads)
	}
	// A reason given with the read travels in the access event.
	req, _ := http.NewRequest(http.MethodGet, e.httpURL+"/v1/referrals/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+staff)
	req.Header.Set("X-Access-Reason", "MASH research for strategy discussion")
	if code, _ := do(t, req); code != 200 {
		t.Fatalf("read with a reason: %d", code)
	}
	var raw []byte
	if err := e.pool.QueryRow(context.Background(), `SELECT payload FROM intake.outbox WHERE subject = 'mash.access.referral' ORDER BY id DESC LIMIT 1`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var accessEnv eventsv1.Envelope
	var accessed eventsv1.RecordAccessed
	if err := proto.Unmarshal(raw, &accessEnv); err != nil || accessEnv.GetPayload().UnmarshalTo(&accessed) != nil {
		t.Fatal("undecodable access event")
	}
	if accessed.GetReason() != "MASH research for strategy discussion" || accessed.GetRole() != "practitioner" || accessed.GetReferralId() != id {
		t.Fatalf("access event: %v", &accessed)
	}
	if code, body := e.get(t, gwent, "/v1/referrals"); code != 200 || strings.Contains(body, id) {
		t.Fatalf("another agency's listing shows the referral: %d %s", code, body)
	}
	if code, body := e.get(t, swp, "/v1/referrals"); code != 200 || !strings.Contains(body, id) {
		t.Fatalf("own listing lacks the referral: %d %s", code, body)
	}
	if code, body := e.get(t, swp, "/v1/referrals/not-a-uuid"); code != 404 {
		t.Fatalf("malformed id: %d %s, want 404", code, body)
	}
	// An auditor may read but not submit.
	if code, body := e.post(t, auditor, withExternalRef(t, "AUD-1")); code != 403 {
		t.Fatalf("auditor submitting: %d %s, want 403", code, body)
	}
}

func TestValidationErrorsListEveryField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	var m map[string]any
	if err := json.Unmarshal(exampleJSON(t), &m); err != nil {
		t.Fatal(err)
	}
	child := m["child"].(map[string]any)
	child["nhsNumber"] = "9434765918"
	child["address"].(map[string]any)["postcode"] = "NOT A POSTCODE"
	m["concerns"] = []any{}
	b, _ := json.Marshal(m)

	code, body := e.post(t, token, string(b))
	if code != 400 {
		t.Fatalf("invalid referral: %d %s, want 400", code, body)
	}
	er := decode[errorJSON](t, body)
	fields := map[string]bool{}
	for _, v := range er.Error.FieldViolations {
		fields[v.Field] = v.Description != ""
	}
	for _, f := range []string{"child.nhsNumber", "child.address.postcode", "concerns"} {
		if !fields[f] {
			t.Errorf("no violation with a reason for %s in %s", f, body)
		}
	}
	if strings.Contains(body, "9434765918") {
		t.Error("the error echoes the NHS number")
	}

	// The same list over gRPC, as google.rpc.BadRequest.
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(b, sub); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.SubmitReferral(withToken(context.Background(), token), &intakev1.SubmitReferralRequest{Referral: sub})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("gRPC: %v", err)
	}
	var grpcFields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				grpcFields = append(grpcFields, fv.GetField())
			}
		}
	}
	if len(grpcFields) != len(er.Error.FieldViolations) {
		t.Fatalf("gRPC violations %v differ from HTTP %v", grpcFields, er.Error.FieldViolations)
	}

	// Undecodable JSON and unknown enum values name the problem.
	for _, bad := range []string{`{"externalReference": 12}`, strings.Replace(string(exampleJSON(t)), `"DOMESTIC_ABUSE"`, `"SHOUTING"`, 1), `not json`} {
		code, body := e.post(t, token, bad)
		er := decode[errorJSON](t, body)
		if code != 400 || len(er.Error.FieldViolations) == 0 {
			t.Errorf("bad body %.40q: %d %s", bad, code, body)
		}
	}
	if _, err := e.client.SubmitReferral(withToken(context.Background(), token), &intakev1.SubmitReferralRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC without a referral: %v", err)
	}
}

// A body with an unknown enum value and other faults gets one 400 naming every one of them:
// the values that could not be read (each by its path, without the value) and the rules the
// rest of the body breaks, instead of the first decoding problem alone.
func TestDecodingAndValidationProblemsAreReportedTogether(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	body := string(exampleJSON(t))
	for _, r := range [][2]string{
		{`"DOMESTIC_ABUSE"`, `"SHOUTING"`},                         // an unknown enum value
		{`"sex": "MALE"`, `"sex": "BOY"`},                          // another
		{`"childPresent": true`, `"childPresent": "yes"`},          // a bool as text
		{`"nhsNumber": "9434765919"`, `"nhsNumber": "9434765918"`}, // decodes, fails its check digit
		{`"postcode": "CF37 1AA"`, `"postcode": "NOT A POSTCODE"`}, // decodes, not a postcode
	} {
		if !strings.Contains(body, r[0]) {
			t.Fatalf("the example has no %s", r[0])
		}
		body = strings.Replace(body, r[0], r[1], 1)
	}
	code, out := e.post(t, token, body)
	if code != 400 {
		t.Fatalf("%d %s, want 400", code, out)
	}
	er := decode[errorJSON](t, out)
	reasons := map[string]string{}
	for _, v := range er.Error.FieldViolations {
		reasons[v.Field] = v.Description
	}
	want := map[string]string{
		"concerns[0].category":     "must be one of",
		"child.sex":                "must be one of",
		"concerns[0].childPresent": "true or false",
		"child.nhsNumber":          "",
		"child.address.postcode":   "",
	}
	for f, fragment := range want {
		r, ok := reasons[f]
		if !ok || !strings.Contains(r, fragment) {
			t.Errorf("no violation on %s containing %q in %s", f, fragment, out)
		}
	}
	if len(reasons) != len(want) {
		t.Errorf("violations %v, want exactly the fields %v (a field that could not be read is not also \"required\")", reasons, want)
	}
	for _, secret := range []string{"SHOUTING", "BOY", "9434765918", "NOT A POSTCODE"} {
		if strings.Contains(out, secret) {
			t.Errorf("the answer repeats the value %q: %s", secret, out)
		}
	}
	// Nothing was stored: the same reference with the example's content is a new referral.
	if code, out := e.post(t, token, string(exampleJSON(t))); code != 201 {
		t.Fatalf("the corrected referral: %d %s, want 201", code, out)
	}
}

// One unknown enum value does not hide a missing required field: over HTTP (the gateway's
// route) and over gRPC (an enum number the contract does not define) the one InvalidArgument
// names both, by the same JSON names.
func TestUnknownEnumAndMissingFieldAreOneError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	var m map[string]any
	if err := json.Unmarshal(exampleJSON(t), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "partnership")
	valid, _ := json.Marshal(m)
	m["concerns"].([]any)[0].(map[string]any)["category"] = "SHOUTING"
	b, _ := json.Marshal(m)
	want := []string{"concerns[0].category", "partnership"}

	code, body := e.post(t, token, string(b))
	if code != 400 {
		t.Fatalf("HTTP: %d %s, want 400", code, body)
	}
	var httpFields []string
	for _, v := range decode[errorJSON](t, body).Error.FieldViolations {
		httpFields = append(httpFields, v.Field)
	}
	slices.Sort(httpFields)
	if !slices.Equal(httpFields, want) {
		t.Errorf("HTTP names %v, want %v: %s", httpFields, want, body)
	}

	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(valid, sub); err != nil {
		t.Fatal(err)
	}
	sub.GetConcerns()[0].Category = intakev1.ConcernCategory(999)
	_, err := e.client.SubmitReferral(withToken(context.Background(), token), &intakev1.SubmitReferralRequest{Referral: sub})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("gRPC: %v, want InvalidArgument", err)
	}
	var grpcFields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				grpcFields = append(grpcFields, fv.GetField())
			}
		}
	}
	slices.Sort(grpcFields)
	if !slices.Equal(grpcFields, want) {
		t.Errorf("gRPC names %v, want %v", grpcFields, want)
	}
}

func TestListPagesWithStableCursor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	ids := map[string]bool{}
	for i := range 5 {
		code, body := e.post(t, token, withExternalRef(t, "SWP-PAGE-"+string(rune('A'+i))))
		if code != 201 {
			t.Fatal(code, body)
		}
		ids[decode[ackJSON](t, body).ReferralID] = true
	}
	ctx := withToken(context.Background(), token)
	seen := map[string]bool{}
	token2 := ""
	for pages := 0; ; pages++ {
		resp, err := e.client.ListReferrals(ctx, &intakev1.ListReferralsRequest{PageSize: 2, PageToken: token2})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetReferrals() {
			if seen[r.GetId()] {
				t.Fatalf("referral %s listed twice", r.GetId())
			}
			seen[r.GetId()] = true
		}
		if token2 = resp.GetNextPageToken(); token2 == "" {
			if pages != 2 {
				t.Fatalf("%d pages for 5 referrals of page size 2, want 3", pages+1)
			}
			break
		}
	}
	if len(seen) != len(ids) {
		t.Fatalf("listed %d referrals, want %d", len(seen), len(ids))
	}
	if _, err := e.client.ListReferrals(ctx, &intakev1.ListReferralsRequest{PageToken: "garbage"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad page token: %v", err)
	}
	if _, err := e.client.ListReferrals(ctx, &intakev1.ListReferralsRequest{PageSize: 1000}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("page size 1000: %v", err)
	}
}

func TestMigrationsOnEmptyDatabaseAreIdempotent(t *testing.T) {
	t.Parallel()
	// An empty database (no template): migrate twice, as two replicas starting would.
	url := dbtestEmpty(t)
	for range 2 {
		if err := migrateAll(context.Background(), url); err != nil {
			t.Fatal(err)
		}
	}
}

// The run script sends a copy of the published example; it must not drift from the contract.
func TestSampleMatchesPublishedExample(t *testing.T) {
	t.Parallel()
	shared, err := os.ReadFile("../../../shared/api/referral.example.json")
	if err != nil {
		t.Skip("../shared is not beside this clone")
	}
	local, err := os.ReadFile("testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(shared) != string(local) {
		t.Fatal("testdata/referral.example.json differs from shared/api/referral.example.json; copy it again")
	}
}

// An access reason of 499 ASCII letters and one accented letter is 501 bytes: it is kept
// cut at 500 bytes' worth of whole characters, never inside the "é" (which left invalid
// UTF-8 that failed every read), and the read answers 200.
func TestLongAccessReasonIsCutAtACharacterBoundary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	swp := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	staff := e.credential(t, "rct-mash", "hub", auth.RolePractitioner)
	code, body := e.post(t, swp, string(exampleJSON(t)))
	if code != 201 {
		t.Fatal(code, body)
	}
	id := decode[ackJSON](t, body).ReferralID
	reason := strings.Repeat("a", 499) + "é"
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodGet, e.httpURL+"/v1/referrals/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+staff)
		req.Header.Set("X-Access-Reason", reason)
		if code, body := do(t, req); code != 200 {
			t.Fatalf("read %d with a long reason: %d %s", i, code, body)
		}
	}
	rows, err := e.pool.Query(context.Background(), `SELECT payload FROM intake.outbox WHERE subject = 'mash.access.referral'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var env eventsv1.Envelope
		var accessed eventsv1.RecordAccessed
		if err := proto.Unmarshal(raw, &env); err != nil || env.GetPayload().UnmarshalTo(&accessed) != nil {
			t.Fatal("undecodable access event")
		}
		if accessed.GetReason() != strings.Repeat("a", 499) {
			t.Fatalf("stored reason of %d bytes, valid UTF-8 %v; want the 499 letters", len(accessed.GetReason()), utf8.ValidString(accessed.GetReason()))
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d access events; want 2", n)
	}
}
