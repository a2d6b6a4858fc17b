package fhir

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/apierr"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "fhir", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gpReferral is the contract referral the GP fixtures describe.
func gpReferral(externalRef string) *intakev1.ReferralSubmission {
	observed := timestamppb.New(time.Date(2026, 11, 25, 15, 40, 0, 0, time.UTC))
	return &intakev1.ReferralSubmission{
		ExternalReference: externalRef,
		Partnership:       "rhondda-cynon-taf",
		Referrer: &intakev1.Referrer{Name: "Dr Ffion Examplewyn", Role: "General practitioner, safeguarding lead",
			Phone: "01443 000111", Email: "safeguarding.lead@gp.example", KeepIdentityFromFamily: true},
		Child: &intakev1.Child{GivenName: "Caio", FamilyName: "Testwood", DateOfBirth: "2021-03-14", NhsNumber: "9990000123",
			Sex: intakev1.Sex_MALE, PreferredLanguage: "cy", Ethnicity: "White British",
			Address: &intakev1.Address{Line1: "3 Sample Terrace", Line2: "Trefforest", Town: "Pontypridd", County: "Rhondda Cynon Taf", Postcode: "CF37 1ZZ"}},
		Household: []*intakev1.HouseholdMember{
			{Relationship: intakev1.Relationship_MOTHER, GivenName: "Nia", FamilyName: "Testwood", DateOfBirth: "1995-06-30", LivesWithChild: true},
			{Relationship: intakev1.Relationship_MOTHERS_PARTNER, GivenName: "Rhys", FamilyName: "Sampleton"},
		},
		Concerns: []*intakev1.Concern{
			{Category: intakev1.ConcernCategory_PHYSICAL_ABUSE, ObservedAt: observed, InjuryToChild: true,
				Summary: "Bruising to both upper arms in a pattern consistent with gripping; explanation given by the parent did not fit the injuries."},
			{Category: intakev1.ConcernCategory_NEGLECT, ObservedAt: observed,
				Summary: "Third missed immunisation appointment this year; clothing unwashed and too small for the child."},
		},
		Consent:   &intakev1.Consent{Status: intakev1.ConsentStatus_NOT_SOUGHT, Reason: "Asking the parents would place the child at risk of further harm."},
		Narrative: "Seen at a same-day appointment for a cough. Child was withdrawn and flinched when examined. Third missed immunisation appointment this year.",
	}
}

func TestEachFormMapsToTheSameReferral(t *testing.T) {
	for _, c := range []struct {
		file, externalRef string
		parse             func([]byte) (*Request, *Error)
		kind              Kind
	}{
		{"gp-transaction.json", "GP-W95010-2026-0042", ParseBundle, KindTransaction},
		{"gp-message.json", "GP-W95010-2026-0043", ParseBundle, KindMessage},
		{"servicerequest-contained.json", "GP-W95010-2026-0044", ParseServiceRequest, KindServiceRequest},
	} {
		req, ferr := c.parse(fixture(t, c.file))
		if ferr != nil {
			t.Fatalf("%s: %v", c.file, ferr)
		}
		if want := gpReferral(c.externalRef); !proto.Equal(req.Submission, want) {
			got, _ := protojson.Marshal(req.Submission)
			t.Errorf("%s maps to\n%s\nwant\n%s", c.file, got, protojson.Format(want))
		}
		if req.Kind != c.kind || req.Identifier.System == nil || *req.Identifier.System != "https://gp.example/Id/safeguarding-referral" {
			t.Errorf("%s: kind %v, identifier %+v", c.file, req.Kind, req.Identifier)
		}
	}
}

func TestRoundTripKeepsIdentifiersAndReasons(t *testing.T) {
	req, ferr := ParseBundle(fixture(t, "gp-transaction.json"))
	if ferr != nil {
		t.Fatal(ferr)
	}
	received := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ref := &intakev1.Referral{Id: "0193f1b2-0000-7000-8000-000000000042", Reference: "MASH-2026-0000042", Agency: "cwm-taf-health-board",
		ExternalReference: req.Submission.GetExternalReference(), Partnership: req.Submission.GetPartnership(),
		ReceivedAt: timestamppb.New(received), DecisionDue: timestamppb.New(received.AddDate(0, 0, 1)),
		Status: intakev1.ReferralStatus_DECIDED, Version: 3, Submission: req.Submission}

	raw, err := json.Marshal(ServiceRequest(ref, &req.Identifier))
	if err != nil {
		t.Fatal(err)
	}
	view, err := r4.UnmarshalServiceRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, id := range view.Identifier {
		ids[str(id.System)] = str(id.Value)
	}
	want := map[string]string{"https://gp.example/Id/safeguarding-referral": "GP-W95010-2026-0042", ReferenceSystem: "MASH-2026-0000042", ReferralIDSystem: ref.Id}
	for sys, v := range want {
		if ids[sys] != v {
			t.Errorf("identifier %s = %q, want %q", sys, ids[sys], v)
		}
	}
	if view.Status != r4.RequestStatusCompleted || str(view.Meta.VersionId) != "3" || str(view.Id) != ref.Id {
		t.Errorf("status view: status %v, version %q, id %q", view.Status, str(view.Meta.VersionId), str(view.Id))
	}
	if view.Subject.Identifier == nil || str(view.Subject.Identifier.System) != NHSNumberSystem || str(view.Subject.Identifier.Value) != "9990000123" {
		t.Errorf("subject: %+v", view.Subject)
	}
	if len(view.Performer) != 1 || str(view.Performer[0].Identifier.Value) != "rhondda-cynon-taf" {
		t.Errorf("performer: %+v", view.Performer)
	}
	// Read back as reasons, the view gives the same concerns the sender sent.
	if len(view.ReasonCode) != len(req.Submission.Concerns) {
		t.Fatalf("%d reasons, want %d", len(view.ReasonCode), len(req.Submission.Concerns))
	}
	for i, cc := range view.ReasonCode {
		cat, ok := category(cc)
		if want := req.Submission.Concerns[i]; !ok || cat != want.Category || str(cc.Text) != want.Summary {
			t.Errorf("reason %d: %v %q, want %v %q", i, cat, str(cc.Text), want.Category, want.Summary)
		}
	}
	if got := str(view.ReasonCode[1].Coding[0].Display); got != "Neglect" {
		t.Errorf("display of NEGLECT: %q", got)
	}
}

func TestReasonTextNamingACategory(t *testing.T) {
	for text, want := range map[string]intakev1.ConcernCategory{
		"NEGLECT":                        intakev1.ConcernCategory_NEGLECT,
		" neglect ":                      intakev1.ConcernCategory_NEGLECT,
		"DOMESTIC_ABUSE: seen at school": intakev1.ConcernCategory_DOMESTIC_ABUSE,
		"Neglected":                      intakev1.ConcernCategory_CONCERN_CATEGORY_UNSPECIFIED,
		"CONCERN_CATEGORY_UNSPECIFIED":   intakev1.ConcernCategory_CONCERN_CATEGORY_UNSPECIFIED,
	} {
		got, ok := category(r4.CodeableConcept{Text: &text})
		if got != want || ok != (want != intakev1.ConcernCategory_CONCERN_CATEGORY_UNSPECIFIED) {
			t.Errorf("%q: %v %v, want %v", text, got, ok, want)
		}
	}
	// A coding of the mash system wins over the text, and an unknown code is refused even
	// when the text names a category.
	code, text := "BURGLARY", "NEGLECT"
	sys := ConcernCategorySystem
	if _, ok := category(r4.CodeableConcept{Coding: []r4.Coding{{System: &sys, Code: &code}}, Text: &text}); ok {
		t.Error("an unknown mash code was accepted")
	}
}

func TestExpressionFallsBackToTheNearestMappedElement(t *testing.T) {
	p := &Paths{root: "ServiceRequest", fields: map[string]string{
		"child.address": "ServiceRequest.contained[0].address[0]", "household[0]": "ServiceRequest.contained[3]",
	}}
	for field, want := range map[string]string{
		"child.address.postcode":    "ServiceRequest.contained[0].address[0]",
		"household[0].relationship": "ServiceRequest.contained[3]",
		"riskIndicators.dashScore":  "ServiceRequest",
		"child.address":             "ServiceRequest.contained[0].address[0]",
		"concerns[4].observedAt":    "ServiceRequest",
	} {
		if got := p.Expression(field); got != want {
			t.Errorf("Expression(%q) = %q, want %q", field, got, want)
		}
	}
}

func TestOutcomeNeverEchoesAnUnsafeResourceType(t *testing.T) {
	_, ferr := ParseBundle([]byte(`{"resourceType": "Patient 9990000123"}`))
	if ferr == nil || len(ferr.Issues) != 1 || ferr.Issues[0].Expression != "Bundle.resourceType" {
		t.Fatalf("issues: %v", ferr)
	}
	raw, _ := json.Marshal(Outcome(ferr.Issues))
	if string(raw) == "" || json.Valid(raw) == false || containsDigits(ferr.Issues[0].Reason) {
		t.Fatalf("outcome echoes the submitted value: %s", raw)
	}
}

func containsDigits(s string) bool {
	for _, c := range s {
		if c >= '0' && c <= '9' {
			return true
		}
	}
	return false
}

func TestRateLimitIsAThrottledOutcomeWithRetryAfter(t *testing.T) {
	w := httptest.NewRecorder()
	if code := WriteError(w, apierr.TooManyRequests("slow down", 1500*time.Millisecond), nil); code != http.StatusTooManyRequests {
		t.Fatalf("status %d", code)
	}
	var oo r4.OperationOutcome
	if err := json.Unmarshal(w.Body.Bytes(), &oo); err != nil {
		t.Fatal(err)
	}
	if w.Header().Get("Retry-After") != "2" || w.Header().Get("Content-Type") != ContentType ||
		len(oo.Issue) != 1 || oo.Issue[0].Code != r4.IssueTypeThrottled {
		t.Fatalf("Retry-After %q, Content-Type %q, outcome %s", w.Header().Get("Retry-After"), w.Header().Get("Content-Type"), w.Body)
	}
}
