package intake_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mash-hub/mash/pkg/auth"
)

const fhirJSON = "application/fhir+json"

// TestFHIROperationOutcomePaths walks every way a FHIR request is refused: each answer is an
// OperationOutcome with the status, issue codes and FHIRPath expressions listed.
func TestFHIROperationOutcomePaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "cwm-taf-health-board", "health", auth.RoleReferrer)
	manager := e.credential(t, "rct-mash", "hub", auth.RoleManager)
	tx := func(edit func(doc map[string]any)) string { return editFixture(t, "gp-transaction.json", edit) }
	sr := func(doc map[string]any) map[string]any { return at(doc, "entry", 0, "resource") }
	patient := func(doc map[string]any) map[string]any { return at(doc, "entry", 1, "resource") }

	cases := []struct {
		name, token, path, contentType, body string
		code                                 int
		want                                 []issue
	}{
		{name: "no credential", path: "/fhir/r4/Bundle", contentType: fhirJSON, body: "{}",
			code: http.StatusUnauthorized, want: []issue{{code: "login"}}},
		{name: "bad credential", token: "not-a-token", path: "/fhir/r4/ServiceRequest", contentType: fhirJSON, body: "{}",
			code: http.StatusUnauthorized, want: []issue{{code: "login"}}},
		{name: "role that may not submit", token: manager, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: string(fhirFixture(t, "gp-transaction.json")), code: http.StatusForbidden, want: []issue{{code: "forbidden"}}},
		{name: "wrong content type", token: token, path: "/fhir/r4/Bundle", contentType: "application/fhir+xml", body: "<Bundle/>",
			code: http.StatusUnsupportedMediaType, want: []issue{{code: "not-supported"}}},
		{name: "not JSON", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON, body: "resourceType=Bundle",
			code: http.StatusBadRequest, want: []issue{{"structure", "Bundle"}}},
		{name: "broken JSON", token: token, path: "/fhir/r4/ServiceRequest", contentType: fhirJSON, body: `{"resourceType": "ServiceRequest",`,
			code: http.StatusBadRequest, want: []issue{{"structure", "ServiceRequest"}}},
		{name: "no resourceType", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON, body: `{"type": "transaction"}`,
			code: http.StatusBadRequest, want: []issue{{"required", "Bundle.resourceType"}}},
		{name: "wrong resourceType for Bundle", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: `{"resourceType": "Patient"}`, code: http.StatusBadRequest, want: []issue{{"invalid", "Bundle.resourceType"}}},
		{name: "wrong resourceType for ServiceRequest", token: token, path: "/fhir/r4/ServiceRequest", contentType: fhirJSON,
			body: `{"resourceType": "Bundle", "type": "transaction"}`, code: http.StatusBadRequest, want: []issue{{"invalid", "ServiceRequest.resourceType"}}},
		{name: "batch Bundle", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { d["type"] = "batch" }), code: http.StatusBadRequest, want: []issue{{"not-supported", "Bundle.type"}}},
		{name: "no ServiceRequest in the Bundle", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { d["entry"] = d["entry"].([]any)[1:] }), code: http.StatusBadRequest,
			want: []issue{{"required", "Bundle.entry"}}},
		{name: "transaction entry without request", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { delete(at(d, "entry", 3), "request") }), code: http.StatusBadRequest,
			want: []issue{{"required", "Bundle.entry[3].request"}}},
		{name: "message Bundle without MessageHeader first", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { d["type"] = "message" }), code: http.StatusBadRequest,
			want: []issue{{"structure", "Bundle.entry[0].resource"}}},
		{name: "MessageHeader without an id", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: editFixture(t, "gp-message.json", func(d map[string]any) { delete(at(d, "entry", 0, "resource"), "id") }),
			code: http.StatusBadRequest, want: []issue{{"required", "Bundle.entry[0].resource.id"}}},
		{name: "missing Patient", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) {
				d["entry"] = slices.Delete(d["entry"].([]any), 1, 2)
			}), code: http.StatusBadRequest, want: []issue{{"required", "Bundle.entry[0].resource.subject"}}},
		{name: "missing contained Patient", token: token, path: "/fhir/r4/ServiceRequest", contentType: fhirJSON,
			body: editFixture(t, "servicerequest-contained.json", func(d map[string]any) { d["contained"] = d["contained"].([]any)[1:] }),
			code: http.StatusBadRequest, want: []issue{{"required", "ServiceRequest.subject"}}},
		{name: "missing requester", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { delete(sr(d), "requester") }), code: http.StatusBadRequest,
			want: []issue{{"required", "Bundle.entry[0].resource.requester"}}},
		{name: "bad NHS number", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { at(patient(d), "identifier", 0)["value"] = "9990000124" }), code: http.StatusBadRequest,
			want: []issue{{"invalid", "Bundle.entry[1].resource.identifier[0].value"}}},
		{name: "unknown concern code", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { at(sr(d), "reasonCode", 0, "coding", 0)["code"] = "BURGLARY" }), code: http.StatusBadRequest,
			want: []issue{{"code-invalid", "Bundle.entry[0].resource.reasonCode[0]"}}},
		{name: "reason text naming no category", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { at(sr(d), "reasonCode", 1)["text"] = "Worried about the child" }), code: http.StatusBadRequest,
			want: []issue{{"code-invalid", "Bundle.entry[0].resource.reasonCode[1]"}}},
		{name: "observed time without a zone", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { at(sr(d), "reasonCode", 1, "extension", 0)["valueDateTime"] = "2026-11-25" }), code: http.StatusBadRequest,
			want: []issue{{"value", "Bundle.entry[0].resource.reasonCode[1].extension[0].valueDateTime"}}},
		{name: "unknown relationship", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) {
				at(d, "entry", 4, "resource", "relationship", 0, "coding", 0)["code"] = "NEIGHBOUR"
			}),
			code: http.StatusBadRequest, want: []issue{{"code-invalid", "Bundle.entry[4].resource.relationship"}}},
		{name: "RelatedPerson of another patient", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { at(d, "entry", 5, "resource", "patient")["reference"] = "Patient/elsewhere" }),
			code: http.StatusBadRequest, want: []issue{{"invalid", "Bundle.entry[5].resource.patient"}}},
		{name: "every contract violation at its element", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) {
				s := sr(d)
				delete(s, "identifier")
				delete(s, "performer")
				s["extension"] = s["extension"].([]any)[:2] // consent NOT_SOUGHT without its reason
				delete(at(s, "reasonCode", 1), "extension")
				at(s, "reasonCode", 1)["text"] = "NEGLECT"
				p := patient(d)
				p["birthDate"] = "2027-01-01"
				at(p, "identifier", 0)["value"] = "12345"
				delete(at(p, "name", 1), "family")
				at(p, "address", 0)["postalCode"] = "NOT A POSTCODE"
				at(p, "communication", 0, "language", "coding", 0)["code"] = "welsh"
				delete(at(d, "entry", 2, "resource"), "telecom")
				at(d, "entry", 4, "resource")["birthDate"] = "31/12/1990"
			}),
			code: http.StatusBadRequest, want: []issue{
				{"required", "Bundle.entry[0].resource.identifier"},               // externalReference
				{"required", "Bundle.entry[0].resource.performer"},                // partnership
				{"required", "Bundle.entry[2].resource.telecom"},                  // referrer.phone
				{"required", "Bundle.entry[1].resource.name[1].family"},           // child.familyName
				{"invalid", "Bundle.entry[1].resource.birthDate"},                 // child.dateOfBirth
				{"invalid", "Bundle.entry[1].resource.identifier[0].value"},       // child.nhsNumber
				{"invalid", "Bundle.entry[1].resource.address[0].postalCode"},     // child.address.postcode
				{"invalid", "Bundle.entry[1].resource.communication[0].language"}, // child.preferredLanguage
				{"invalid", "Bundle.entry[4].resource.birthDate"},                 // household[0].dateOfBirth
				{"required", "Bundle.entry[0].resource.reasonCode[1].text"},       // concerns[1].summary
				{"required", "Bundle.entry[0].resource.reasonCode[1].extension"},  // concerns[1].observedAt
				{"required", "Bundle.entry[0].resource.extension"},                // consent.reason
			}},
		{name: "a NUL in the child's name", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: tx(func(d map[string]any) { at(patient(d), "name", 1)["given"] = []any{"Ca\u0000io"} }), code: http.StatusBadRequest,
			want: []issue{{"invalid", "Bundle.entry[1].resource.name[1].given[0]"}}},
		{name: "no consent", token: token, path: "/fhir/r4/ServiceRequest", contentType: fhirJSON,
			body: editFixture(t, "servicerequest-contained.json", func(d map[string]any) { d["extension"] = d["extension"].([]any)[:1] }),
			code: http.StatusBadRequest, want: []issue{{"required", "ServiceRequest.extension"}}},
		{name: "body too large", token: token, path: "/fhir/r4/Bundle", contentType: fhirJSON,
			body: `{"resourceType":"Bundle","type":"transaction","id":"` + strings.Repeat("x", 300<<10) + `"}`,
			code: http.StatusRequestEntityTooLarge, want: []issue{{code: "too-costly"}}},
	}
	for _, c := range cases {
		a := e.fhir(t, http.MethodPost, c.token, c.path, c.contentType, c.body)
		if a.code != c.code {
			t.Errorf("%s: status %d, want %d: %s", c.name, a.code, c.code, a.raw)
			continue
		}
		if got := outcomeIssues(t, a); !slices.Equal(got, c.want) {
			t.Errorf("%s: issues\n got %v\nwant %v\n%s", c.name, got, c.want, a.raw)
		}
		if c.code == http.StatusUnauthorized && a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate challenge", c.name)
		}
	}

	// Reads and the CapabilityStatement answer OperationOutcomes too.
	if a := e.fhir(t, http.MethodGet, "", "/fhir/r4/metadata", "", ""); a.code != http.StatusUnauthorized || outcomeIssues(t, a)[0].code != "login" {
		t.Errorf("metadata without a credential: %d %s", a.code, a.raw)
	}
	for _, id := range []string{"0193f1b2-0000-7000-8000-000000000000", "not-a-referral-id"} {
		if a := e.fhir(t, http.MethodGet, token, "/fhir/r4/ServiceRequest/"+id, "", ""); a.code != http.StatusNotFound ||
			outcomeIssues(t, a)[0].code != "not-found" {
			t.Errorf("unknown ServiceRequest %s: %d %s", id, a.code, a.raw)
		}
	}

	// The same identifier with different content conflicts, as on /v1/referrals.
	if a := e.fhir(t, http.MethodPost, token, "/fhir/r4/Bundle", fhirJSON, string(fhirFixture(t, "gp-transaction.json"))); a.code != http.StatusCreated {
		t.Fatalf("first submission: %d %s", a.code, a.raw)
	}
	changed := tx(func(d map[string]any) { sr(d)["note"] = []any{map[string]any{"text": "A different account."}} })
	if a := e.fhir(t, http.MethodPost, token, "/fhir/r4/Bundle", fhirJSON, changed); a.code != http.StatusConflict ||
		!slices.Equal(outcomeIssues(t, a), []issue{{code: "duplicate"}}) {
		t.Errorf("same identifier, different content: %d %s", a.code, a.raw)
	}
}
