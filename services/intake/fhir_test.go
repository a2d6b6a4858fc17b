package intake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mash-hub/mash/pkg/auth"
)

func fhirFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fhir", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editFixture decodes a fixture, lets edit change it and encodes it again.
func editFixture(t *testing.T, name string, edit func(doc map[string]any)) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(fhirFixture(t, name), &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// at walks a decoded JSON document: keys for objects, ints for arrays.
func at(doc any, path ...any) map[string]any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			doc = doc.(map[string]any)[k]
		case int:
			doc = doc.([]any)[k]
		}
	}
	return doc.(map[string]any)
}

type fhirAnswer struct {
	code     int
	header   http.Header
	resource map[string]any
	raw      string
}

func (e *env) fhir(t *testing.T, method, token, path, contentType, body string) fhirAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.httpURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := fhirAnswer{code: resp.StatusCode, header: resp.Header, raw: string(b)}
	if ct := resp.Header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Fatalf("%s %s: Content-Type %q, want application/fhir+json (%d %s)", method, path, ct, a.code, b)
	}
	if err := json.Unmarshal(b, &a.resource); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v: %s", method, path, err, b)
	}
	return a
}

// issue is one OperationOutcome issue as a test compares it.
type issue struct{ code, expression string }

func outcomeIssues(t *testing.T, a fhirAnswer) []issue {
	t.Helper()
	if a.resource["resourceType"] != "OperationOutcome" {
		t.Fatalf("answer %d is not an OperationOutcome: %s", a.code, a.raw)
	}
	var out []issue
	for _, x := range a.resource["issue"].([]any) {
		m := x.(map[string]any)
		if m["severity"] != "error" || m["diagnostics"] == "" {
			t.Fatalf("issue without severity error or diagnostics: %v", m)
		}
		is := issue{code: m["code"].(string)}
		if ex, ok := m["expression"].([]any); ok {
			is.expression = ex[0].(string)
		}
		out = append(out, is)
	}
	return out
}

func identifierValue(sr map[string]any, system string) string {
	for _, x := range sr["identifier"].([]any) {
		id := x.(map[string]any)
		if id["system"] == system {
			s, _ := id["value"].(string)
			return s
		}
	}
	return ""
}

const (
	mashReferenceSystem = "https://mash.example/fhir/Id/referral-reference"
	gpReferralSystem    = "https://gp.example/Id/safeguarding-referral"
)

func TestFHIRTransactionBundleFromGPSystemIsAcceptedThenReplayed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "cwm-taf-health-board", "health", auth.RoleReferrer)
	body := string(fhirFixture(t, "gp-transaction.json"))

	a := e.fhir(t, http.MethodPost, token, "/fhir/r4/Bundle", "application/fhir+json", body)
	if a.code != http.StatusCreated {
		t.Fatalf("POST transaction: %d %s", a.code, a.raw)
	}
	if a.resource["resourceType"] != "Bundle" || a.resource["type"] != "transaction-response" {
		t.Fatalf("answer is not a transaction-response Bundle: %s", a.raw)
	}
	entries := a.resource["entry"].([]any)
	if len(entries) != 6 {
		t.Fatalf("transaction-response has %d entries, want one per request entry (6)", len(entries))
	}
	sr := at(entries[0], "resource")
	id, _ := sr["id"].(string)
	if id == "" || a.header.Get("Location") != "/fhir/r4/ServiceRequest/"+id {
		t.Fatalf("Location %q for ServiceRequest %q", a.header.Get("Location"), id)
	}
	if at(entries[0], "response")["status"] != "201 Created" || sr["status"] != "active" {
		t.Fatalf("created entry: %v", entries[0])
	}
	ref := identifierValue(sr, mashReferenceSystem)
	if !strings.HasPrefix(ref, "MASH-2026-") || identifierValue(sr, gpReferralSystem) != "GP-W95010-2026-0042" {
		t.Fatalf("acknowledgement identifiers: %v", sr["identifier"])
	}

	// The same Bundle again is a replay of the same referral.
	a = e.fhir(t, http.MethodPost, token, "/fhir/r4/Bundle", "application/fhir+json", body)
	if a.code != http.StatusOK {
		t.Fatalf("replay: %d %s", a.code, a.raw)
	}
	sr2 := at(a.resource, "entry", 0, "resource")
	if sr2["id"] != id || identifierValue(sr2, mashReferenceSystem) != ref || at(a.resource, "entry", 0, "response")["status"] != "200 OK" {
		t.Fatalf("replay answered another referral: %s", a.raw)
	}

	// The referral the GP system sent is the one the hub stores, under the health agency.
	code, stored := e.get(t, token, "/v1/referrals/"+id)
	if code != 200 {
		t.Fatalf("GET /v1/referrals: %d %s", code, stored)
	}
	for _, want := range []string{`"agency":"cwm-taf-health-board"`, `"externalReference":"GP-W95010-2026-0042"`, `"nhsNumber":"9990000123"`,
		`"givenName":"Caio"`, `"familyName":"Testwood"`, `"category":"PHYSICAL_ABUSE"`, `"category":"NEGLECT"`, `"relationship":"MOTHER"`,
		`"relationship":"MOTHERS_PARTNER"`, `"name":"Dr Ffion Examplewyn"`, `"role":"General practitioner, safeguarding lead"`,
		`"keepIdentityFromFamily":true`, `"status":"NOT_SOUGHT"`, `"preferredLanguage":"cy"`, `"postcode":"CF37 1ZZ"`, `"injuryToChild":true`} {
		if !strings.Contains(strings.ReplaceAll(stored, " ", ""), strings.ReplaceAll(want, " ", "")) {
			t.Errorf("stored referral lacks %s: %s", want, stored)
		}
	}
}

func TestFHIRMessageBundleIsAnsweredWithAResponseMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "cwm-taf-health-board", "health", auth.RoleReferrer)
	body := string(fhirFixture(t, "gp-message.json"))

	a := e.fhir(t, http.MethodPost, token, "/fhir/r4/Bundle", "application/fhir+json; fhirVersion=4.0", body)
	if a.code != http.StatusCreated || a.resource["type"] != "message" {
		t.Fatalf("POST message: %d %s", a.code, a.raw)
	}
	mh := at(a.resource, "entry", 0, "resource")
	if mh["resourceType"] != "MessageHeader" || at(mh, "response")["identifier"] != "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b10" ||
		at(mh, "response")["code"] != "ok" || at(mh, "eventCoding")["code"] != "safeguarding-referral" {
		t.Fatalf("response MessageHeader: %v", mh)
	}
	if _, ok := mh["eventUri"]; ok {
		t.Fatalf("response MessageHeader carries both event[x] choices: %v", mh)
	}
	sr := at(a.resource, "entry", 1, "resource")
	if identifierValue(sr, gpReferralSystem) != "GP-W95010-2026-0043" || a.header.Get("Location") != "/fhir/r4/ServiceRequest/"+sr["id"].(string) {
		t.Fatalf("response ServiceRequest: %v (Location %q)", sr, a.header.Get("Location"))
	}
	a = e.fhir(t, http.MethodPost, token, "/fhir/r4/Bundle", "application/fhir+json", body)
	if a.code != http.StatusOK || at(a.resource, "entry", 1, "resource")["id"] != sr["id"] {
		t.Fatalf("replay of the message: %d %s", a.code, a.raw)
	}
}

func TestFHIRServiceRequestWithContainedResourcesThenReadAsStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "cwm-taf-health-board", "health", auth.RoleReferrer)

	a := e.fhir(t, http.MethodPost, token, "/fhir/r4/ServiceRequest", "application/fhir+json", string(fhirFixture(t, "servicerequest-contained.json")))
	if a.code != http.StatusCreated || a.resource["resourceType"] != "ServiceRequest" {
		t.Fatalf("POST ServiceRequest: %d %s", a.code, a.raw)
	}
	id := a.resource["id"].(string)
	if a.header.Get("Location") != "/fhir/r4/ServiceRequest/"+id {
		t.Fatalf("Location %q", a.header.Get("Location"))
	}

	got := e.fhir(t, http.MethodGet, token, "/fhir/r4/ServiceRequest/"+id, "", "")
	if got.code != http.StatusOK {
		t.Fatalf("GET ServiceRequest: %d %s", got.code, got.raw)
	}
	sr := got.resource
	if sr["status"] != "active" || at(sr, "meta")["versionId"] != "1" ||
		identifierValue(sr, mashReferenceSystem) != identifierValue(a.resource, mashReferenceSystem) ||
		identifierValue(sr, "https://mash.example/fhir/Id/external-reference/cwm-taf-health-board") != "GP-W95010-2026-0044" ||
		at(sr, "subject", "identifier")["value"] != "9990000123" {
		t.Fatalf("status view: %s", got.raw)
	}
	var codes []string
	for _, x := range sr["reasonCode"].([]any) {
		codes = append(codes, at(x, "coding", 0)["code"].(string))
	}
	if !slices.Equal(codes, []string{"PHYSICAL_ABUSE", "NEGLECT"}) {
		t.Fatalf("reasons in the status view: %v", codes)
	}

	// Another agency's referrer cannot see it: an OperationOutcome, not the referral.
	other := e.credential(t, "south-wales-police", "police", auth.RoleReferrer)
	nf := e.fhir(t, http.MethodGet, other, "/fhir/r4/ServiceRequest/"+id, "", "")
	if nf.code != http.StatusNotFound || outcomeIssues(t, nf)[0].code != "not-found" {
		t.Fatalf("another agency's GET: %d %s", nf.code, nf.raw)
	}
}

func TestFHIRMetadataIsACapabilityStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.credential(t, "cwm-taf-health-board", "health", auth.RoleReferrer)
	a := e.fhir(t, http.MethodGet, token, "/fhir/r4/metadata", "", "")
	if a.code != http.StatusOK || a.resource["resourceType"] != "CapabilityStatement" || a.resource["fhirVersion"] != "4.0.1" ||
		a.resource["kind"] != "instance" {
		t.Fatalf("metadata: %d %s", a.code, a.raw)
	}
	res := at(a.resource, "rest", 0, "resource", 0)
	if res["type"] != "ServiceRequest" || len(res["interaction"].([]any)) != 2 {
		t.Fatalf("ServiceRequest capability: %v", res)
	}
}
