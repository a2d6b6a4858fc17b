package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/proto/openapi"
	"github.com/mash-hub/mash/services/rules/packs"
)

var updateRoutes = flag.Bool("update-routes", false, "rewrite testdata/http_routes.golden from the running system")

// routeCall is one representative request to an HTTP route of the API.
type routeCall struct {
	name   string
	role   auth.Role
	method string
	// path may hold {ref}, the referral the test submitted first.
	path        string
	contentType string
	body        string
	// until, when set, is the status the call is repeated for (something asynchronous, such
	// as the rules' decision, must land first); settle, a text the answer is awaited with
	// (the notices notify records on a case, say), so its shape does not depend on timing.
	until  int
	settle string
}

// missing is a well-formed id that names nothing.
const missing = "0192a3b4-0000-7000-8000-00000000ffff"

// TestHTTPRoutesAnswerAsBefore calls every authenticated HTTP route of the API with a
// representative request and compares, per call, the method, path, status, Location and
// Content-Type and the shape of the JSON answer (its keys and value types; for errors also
// the code and the fields named) with testdata/http_routes.golden, recorded from the
// hand-written routes before the API moved to routes generated from the contract. Today's
// clients keep working while this stays green. Run with -update-routes to re-record after a
// deliberate change, and say why in the commit.
func TestHTTPRoutesAnswerAsBefore(t *testing.T) {
	ctx := context.Background()
	ip := startInProcess(t)
	tokens := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.RoleReferrer, auth.RolePractitioner, auth.RoleManager, auth.RoleAuditor, auth.RoleAdmin} {
		kind, agency, ps := "hub", "rct-mash", []string{"rhondda-cynon-taf"}
		if r == auth.RoleReferrer {
			kind, agency, ps = "police", "south-wales-police", nil
		}
		_, tok, err := ip.sys.p.auth.Create(ctx, agency, kind, r, "routes", ps...)
		if err != nil {
			t.Fatal(err)
		}
		tokens[r] = tok
	}
	referral, err := os.ReadFile("../intake/testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	pack := string(packs.Default())
	badEnum := strings.Replace(string(referral), `"DOMESTIC_ABUSE"`, `"DOMESTIC_ABUSES"`, 1)
	badEnumAndField := strings.Replace(strings.Replace(badEnum, `"nhsNumber": "9434765919"`, `"nhsNumber": "9434765918"`, 1),
		`"givenName": "Alex"`, `"givenName": ""`, 1)
	const (
		ref = auth.RoleReferrer
		pra = auth.RolePractitioner
		man = auth.RoleManager
		aud = auth.RoleAuditor
		adm = auth.RoleAdmin
		js  = "application/json"
		yml = "application/yaml"
	)
	calls := []routeCall{
		// intake
		{name: "submit", role: ref, method: "POST", path: "/v1/referrals", contentType: js, body: string(referral)},
		{name: "submit again", role: ref, method: "POST", path: "/v1/referrals", contentType: js, body: string(referral)},
		{name: "submit empty", role: ref, method: "POST", path: "/v1/referrals", contentType: js, body: "{}"},
		{name: "submit bad enum", role: ref, method: "POST", path: "/v1/referrals", contentType: js, body: badEnum},
		{name: "submit bad enum and fields", role: ref, method: "POST", path: "/v1/referrals", contentType: js, body: badEnumAndField},
		{name: "submit not json", role: ref, method: "POST", path: "/v1/referrals", contentType: js, body: "[1]"},
		{name: "get referral", role: ref, method: "GET", path: "/v1/referrals/{ref}"},
		{name: "get missing referral", role: ref, method: "GET", path: "/v1/referrals/" + missing},
		{name: "list referrals", role: ref, method: "GET", path: "/v1/referrals?pageSize=2"},
		{name: "list referrals bad size", role: ref, method: "GET", path: "/v1/referrals?pageSize=two"},
		{name: "fhir metadata", role: ref, method: "GET", path: "/fhir/r4/metadata"},
		{name: "fhir missing", role: ref, method: "GET", path: "/fhir/r4/ServiceRequest/" + missing},
		{name: "fhir empty bundle", role: ref, method: "POST", path: "/fhir/r4/Bundle", contentType: "application/fhir+json", body: "{}"},
		{name: "fhir empty service request", role: ref, method: "POST", path: "/fhir/r4/ServiceRequest", contentType: "application/fhir+json", body: "{}"},
		// rules
		{name: "decision", role: pra, method: "GET", path: "/v1/decisions/{ref}", until: 200},
		{name: "missing decision", role: pra, method: "GET", path: "/v1/decisions/" + missing},
		{name: "confirm (moved)", role: pra, method: "POST", path: "/v1/decisions/{ref}/confirm", contentType: js, body: "{}"},
		{name: "override (moved)", role: pra, method: "POST", path: "/v1/decisions/{ref}/override", contentType: js, body: "{}"},
		{name: "evaluate", role: pra, method: "POST", path: "/v1/rules:evaluate", contentType: js, body: `{"referral": ` + string(referral) + `, "referrerKind": "police"}`},
		{name: "evaluate empty", role: pra, method: "POST", path: "/v1/rules:evaluate", contentType: js, body: "{}"},
		{name: "evaluate unknown field", role: pra, method: "POST", path: "/v1/rules:evaluate", contentType: js, body: `{"referal": {}}`},
		{name: "validate pack yaml", role: man, method: "POST", path: "/v1/packs:validate", contentType: yml, body: pack},
		{name: "validate pack json", role: man, method: "POST", path: "/v1/packs:validate", contentType: js, body: `{"source": "rules: ["}`},
		{name: "validate pack text", role: man, method: "POST", path: "/v1/packs:validate", contentType: "text/plain", body: pack},
		{name: "list packs", role: man, method: "GET", path: "/v1/packs"},
		{name: "list packs bad flag", role: man, method: "GET", path: "/v1/packs?includeSource=maybe"},
		{name: "replay", role: man, method: "POST", path: "/v1/packs:replay?last=5", contentType: yml, body: pack},
		{name: "replay bad query", role: man, method: "POST", path: "/v1/packs:replay?last=five&from=yesterday", contentType: yml, body: pack},
		{name: "activate missing", role: man, method: "POST", path: "/v1/packs/" + missing + "/activate", contentType: js, body: `{"reason": "agreed at the board"}`},
		{name: "upload empty", role: man, method: "POST", path: "/v1/packs", contentType: js, body: "{}"},
		// triage
		{name: "case", role: pra, method: "GET", path: "/v1/cases/{ref}", until: 200, settle: `"recommended"`},
		{name: "queue", role: pra, method: "GET", path: "/v1/queue"},
		{name: "missing case", role: pra, method: "GET", path: "/v1/cases/" + missing},
		{name: "claim", role: pra, method: "POST", path: "/v1/cases/{ref}/claim", contentType: js, body: "{}"},
		{name: "release", role: pra, method: "POST", path: "/v1/cases/{ref}/release", contentType: js, body: "{}"},
		{name: "assign missing", role: man, method: "POST", path: "/v1/cases/" + missing + "/assign", contentType: js, body: "{}"},
		{name: "reassign empty", role: man, method: "POST", path: "/v1/queue/reassign", contentType: js, body: "{}"},
		{name: "lead professional missing", role: pra, method: "POST", path: "/v1/cases/" + missing + "/lead-professional", contentType: js, body: "{}"},
		{name: "hold missing", role: man, method: "POST", path: "/v1/cases/" + missing + "/legal-hold", contentType: js, body: "{}"},
		{name: "lift missing", role: man, method: "POST", path: "/v1/cases/" + missing + "/legal-hold/lift", contentType: js, body: "{}"},
		{name: "decide empty", role: pra, method: "POST", path: "/v1/cases/{ref}/decide", contentType: js, body: "{}"},
		{name: "authorise missing", role: man, method: "POST", path: "/v1/cases/" + missing + "/sharing-authorisation", contentType: js, body: "{}"},
		{name: "revoke missing", role: man, method: "POST", path: "/v1/cases/" + missing + "/sharing-authorisation:revoke", contentType: js, body: "{}"},
		{name: "consent missing", role: pra, method: "POST", path: "/v1/cases/" + missing + "/consent", contentType: js, body: "{}"},
		{name: "strategy missing", role: pra, method: "POST", path: "/v1/cases/" + missing + "/strategy", contentType: js, body: "{}"},
		{name: "close missing", role: pra, method: "POST", path: "/v1/cases/" + missing + "/close", contentType: js, body: "{}"},
		{name: "request information missing", role: pra, method: "POST", path: "/v1/cases/" + missing + "/information-requests", contentType: js, body: "{}"},
		{name: "information requests", role: pra, method: "GET", path: "/v1/information-requests"},
		{name: "answer missing", role: pra, method: "POST", path: "/v1/information-requests/" + missing + "/answer", contentType: js, body: "{}"},
		{name: "raise disagreement missing", role: pra, method: "POST", path: "/v1/cases/" + missing + "/disagreements", contentType: js, body: "{}"},
		{name: "disagreements", role: pra, method: "GET", path: "/v1/disagreements"},
		{name: "escalate missing", role: pra, method: "POST", path: "/v1/disagreements/" + missing + "/escalate", contentType: js, body: "{}"},
		{name: "resolve missing", role: pra, method: "POST", path: "/v1/disagreements/" + missing + "/resolve", contentType: js, body: "{}"},
		{name: "dashboard", role: man, method: "GET", path: "/v1/dashboard?from=2026-01-01&to=2026-02-01"},
		{name: "dashboard csv", role: man, method: "GET", path: "/v1/dashboard.csv?from=2026-01-01&to=2026-02-01"},
		// notify
		{name: "agencies", role: man, method: "GET", path: "/v1/agencies"},
		{name: "put agency empty", role: man, method: "PUT", path: "/v1/agencies/new-agency", contentType: js, body: "{}"},
		{name: "remove missing agency", role: man, method: "DELETE", path: "/v1/agencies/no-such-agency"},
		{name: "directory changes", role: man, method: "GET", path: "/v1/agencies/no-such-agency/changes"},
		{name: "approve missing", role: man, method: "POST", path: "/v1/agencies/no-such-agency/changes/" + missing + "/approve", contentType: js, body: "{}"},
		{name: "reject missing", role: man, method: "POST", path: "/v1/agencies/no-such-agency/changes/" + missing + "/reject", contentType: js, body: "{}"},
		{name: "notifications", role: man, method: "GET", path: "/v1/notifications", settle: `"notifications"`},
		{name: "notification missing", role: man, method: "GET", path: "/v1/notifications/" + missing},
		{name: "acknowledge missing", role: ref, method: "POST", path: "/v1/notifications/" + missing + "/acknowledge", contentType: js, body: "{}"},
		{name: "retry missing", role: man, method: "POST", path: "/v1/notifications/" + missing + "/retry", contentType: js, body: "{}"},
		{name: "message missing", role: ref, method: "GET", path: "/v1/notifications/" + missing + "/message"},
		// audit
		{name: "trail", role: aud, method: "GET", path: "/v1/audit/trail?referralId=" + missing, settle: `"entries"`},
		{name: "trail no key", role: aud, method: "GET", path: "/v1/audit/trail"},
		{name: "entries", role: aud, method: "GET", path: "/v1/audit/entries?actor=nobody&pageSize=5"},
		{name: "checkpoint", role: adm, method: "GET", path: "/v1/audit/checkpoint", until: 200},
		{name: "inclusion no params", role: aud, method: "GET", path: "/v1/audit/proofs/inclusion"},
		{name: "consistency no params", role: aud, method: "GET", path: "/v1/audit/proofs/consistency"},
		{name: "who accessed", role: aud, method: "GET", path: "/v1/audit/access?referralId=" + missing, settle: `"accesses"`},
		{name: "activity", role: aud, method: "GET", path: "/v1/audit/activity?actor=nobody"},
		{name: "unusual access", role: aud, method: "GET", path: "/v1/audit/unusual-access?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"},
		{name: "export", role: aud, method: "GET", path: "/v1/audit/export?referralId=" + missing},
		{name: "entries bad page", role: aud, method: "GET", path: "/v1/audit/entries?actor=nobody&pageSize=5000&pageToken=x"},
		{name: "who accessed no key", role: aud, method: "GET", path: "/v1/audit/access"},
		{name: "export no key", role: aud, method: "GET", path: "/v1/audit/export"},
		// Routes added after the recording: appended, so the calls above keep their lines.
		{name: "ack deadlines", role: man, method: "GET", path: "/v1/partnerships/rhondda-cynon-taf/ack-deadlines"},
		{name: "ack deadlines missing", role: man, method: "GET", path: "/v1/partnerships/no-such-partnership/ack-deadlines"},
		{name: "set ack deadlines empty", role: man, method: "PUT", path: "/v1/partnerships/rhondda-cynon-taf/ack-deadlines", contentType: js, body: "{}"},
		{name: "set ack deadlines bad", role: man, method: "PUT", path: "/v1/partnerships/rhondda-cynon-taf/ack-deadlines", contentType: js,
			body: `{"redAckMinutes": "lots", "deadlines": [{"role": "police", "rag": "RED", "within": "forever"}]}`},
		{name: "export case empty", role: man, method: "POST", path: "/v1/cases/{ref}/export", contentType: js, body: "{}"},
		{name: "export missing case", role: man, method: "POST", path: "/v1/cases/" + missing + "/export", contentType: js, body: `{"reason": "SAR-1"}`},
		{name: "erase empty", role: man, method: "POST", path: "/v1/cases/{ref}/erase", contentType: js, body: "{}"},
		{name: "erase open case", role: man, method: "POST", path: "/v1/cases/{ref}/erase", contentType: js, body: `{"reason": "retention ended"}`},
		{name: "quality review empty", role: man, method: "POST", path: "/v1/cases/{ref}/quality-reviews", contentType: js, body: "{}"},
		{name: "quality review undecided", role: man, method: "POST", path: "/v1/cases/{ref}/quality-reviews", contentType: js, body: `{"verdict": "AGREE"}`},
		{name: "quality sample", role: man, method: "GET", path: "/v1/quality/sample?partnership=rhondda-cynon-taf"},
		{name: "quality reviews", role: man, method: "GET", path: "/v1/quality/reviews?referralId={ref}"},
		{name: "quality agreement", role: man, method: "GET", path: "/v1/quality/agreement?partnership=rhondda-cynon-taf"},
		{name: "search", role: pra, method: "GET", path: "/v1/search?q=Alex&reason=routes", settle: `"childId"`},
		{name: "search no query", role: pra, method: "GET", path: "/v1/search"},
		{name: "child missing", role: pra, method: "GET", path: "/v1/children/" + missing},
		{name: "merge children empty", role: pra, method: "POST", path: "/v1/children/" + missing + "/merge", contentType: js, body: "{}"},
		{name: "merge missing child", role: pra, method: "POST", path: "/v1/children/" + missing + "/merge", contentType: js,
			body: `{"intoChildId": "0192a3b4-0000-7000-8000-00000000fffe", "reason": "same child"}`},
		{name: "unmerge empty", role: pra, method: "POST", path: "/v1/child-merges/" + missing + "/unmerge", contentType: js, body: "{}"},
		{name: "unmerge missing", role: pra, method: "POST", path: "/v1/child-merges/" + missing + "/unmerge", contentType: js, body: `{"reason": "not the same child"}`},
		{name: "link empty", role: pra, method: "POST", path: "/v1/cases/{ref}/child:link", contentType: js, body: "{}"},
		{name: "link missing child", role: pra, method: "POST", path: "/v1/cases/{ref}/child:link", contentType: js, body: `{"childId": "` + missing + `", "reason": "same child"}`},
		{name: "unlink empty", role: pra, method: "POST", path: "/v1/cases/" + missing + "/child:unlink", contentType: js, body: "{}"},
		{name: "unlink missing case", role: pra, method: "POST", path: "/v1/cases/" + missing + "/child:unlink", contentType: js, body: `{"reason": "wrong child"}`},
	}

	// Every API route the server registers is called: a route added without a call here
	// would change its answers unseen.
	called := http.NewServeMux()
	for _, rt := range ip.sys.srv.Routes() {
		if !rt.Public {
			called.HandleFunc(rt.Pattern, func(http.ResponseWriter, *http.Request) {})
		}
	}
	calledPatterns := map[string]bool{}
	for _, c := range calls {
		req, err := http.NewRequest(c.method, strings.ReplaceAll(c.path, "{ref}", missing), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, pattern := called.Handler(req); pattern != "" {
			calledPatterns[pattern] = true
		}
	}
	for _, rt := range ip.sys.srv.Routes() {
		if !rt.Public && !calledPatterns[rt.Pattern] {
			t.Errorf("HTTP route %s is not called: add a representative call", rt.Pattern)
		}
	}

	var refID string
	var got []string
	for _, c := range calls {
		path := strings.ReplaceAll(c.path, "{ref}", refID)
		var line string
		deadline := time.Now().Add(30 * time.Second)
		for {
			var status int
			var body []byte
			status, line, body = callRoute(t, ctx, ip.httpAddr, tokens[c.role], c.method, path, c.contentType, c.body)
			if c.name == "submit" {
				var ack struct {
					ReferralID string `json:"referralId"`
				}
				if err := json.Unmarshal(body, &ack); err != nil || ack.ReferralID == "" {
					t.Fatalf("the first submission gave no referral id: %s", body)
				}
				refID = ack.ReferralID
			}
			if refID != "" {
				line = strings.ReplaceAll(line, refID, "{ref}")
			}
			if (c.until == 0 || status == c.until) && strings.Contains(string(body), c.settle) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // waiting for the event that makes the route answer
		}
		got = append(got, fmt.Sprintf("%s: %s %s -> %s", c.name, c.method, c.path, line))
		if bad := snakeFields(line); len(bad) > 0 {
			t.Errorf("%s names fields %v: error fields take their JSON (lowerCamelCase) names", c.name, bad)
		}
	}
	// The contract of the routes, for integrators without a credential yet.
	resp, err := http.Get("http://" + ip.httpAddr + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(doc, openapi.Document) {
		t.Errorf("GET /openapi.json: %d %v, want 200 with the generated document", resp.StatusCode, err)
	}

	golden := filepath.Join("testdata", "http_routes.golden")
	text := strings.Join(got, "\n") + "\n"
	if *updateRoutes {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-routes to record)", err)
	}
	wantLines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	for i, g := range got {
		if i >= len(wantLines) {
			t.Errorf("new call not in the golden file:\n  %s", g)
			continue
		}
		if g != wantLines[i] {
			t.Errorf("route answers differently:\n  was %s\n  now %s", wantLines[i], g)
		}
	}
	if len(wantLines) > len(got) {
		t.Errorf("%d recorded calls no longer made", len(wantLines)-len(got))
	}
}

// callRoute makes one call and renders its answer as a golden line.
func callRoute(t *testing.T, ctx context.Context, addr, token, method, path, contentType, body string) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
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
	ct := resp.Header.Get("Content-Type")
	line := fmt.Sprintf("%d", resp.StatusCode)
	if loc := resp.Header.Get("Location"); loc != "" {
		line += " location=" + loc
	}
	if resp.Header.Get("Retry-After") != "" {
		line += " retry-after"
	}
	line += " type=" + ct
	var v any
	if strings.Contains(ct, "json") && json.Unmarshal(b, &v) == nil {
		line += " " + jsonShape(v)
	} else {
		line += " (not JSON)"
	}
	return resp.StatusCode, line, b
}

// jsonShape renders a JSON value's shape: object keys in order with their shapes, an
// array as the shape of its first element, scalars as their type. An error body keeps its
// code and the fields it names, which are part of the contract.
func jsonShape(v any) string {
	if m, ok := v.(map[string]any); ok {
		if e, ok := m["error"].(map[string]any); ok && len(m) == 1 {
			var fields []string
			if fvs, ok := e["fieldViolations"].([]any); ok {
				for _, fv := range fvs {
					if f, ok := fv.(map[string]any); ok {
						fields = append(fields, fmt.Sprint(f["field"]))
					}
				}
			}
			keys := make([]string, 0, len(e))
			for k := range e {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return fmt.Sprintf("error{%s} code=%v fields=%v", strings.Join(keys, ","), e["code"], fields)
		}
	}
	return shape(v)
}

func shape(v any) string {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + shape(v[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		if len(v) == 0 {
			return "[]"
		}
		return "[" + shape(v[0]) + "]"
	case string:
		return "s"
	case float64:
		return "n"
	case bool:
		return "b"
	case nil:
		return "null"
	}
	return "?"
}

// TestErrorFieldsAreLowerCamelCase walks the recorded answers: every field an error names is
// the field's JSON name (referralId, not referral_id), over HTTP as over gRPC (both carry
// the same google.rpc.BadRequest), so the names cannot drift between services again.
func TestErrorFieldsAreLowerCamelCase(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "http_routes.golden"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if strings.Contains(line, " fields=[") {
			n++
		}
		if bad := snakeFields(line); len(bad) > 0 {
			t.Errorf("the golden answer names fields %v: %s", bad, line)
		}
	}
	if n == 0 {
		t.Fatal("the golden file records no error fields: the walk checks nothing")
	}
}

// snakeFields returns the fields a golden line's error names (fields=[a b.c d[0].e]) that
// hold an underscore.
func snakeFields(line string) []string {
	i := strings.Index(line, " fields=[")
	if i < 0 || !strings.HasSuffix(line, "]") {
		return nil
	}
	var bad []string
	for f := range strings.FieldsSeq(line[i+len(" fields=[") : len(line)-1]) {
		if strings.Contains(f, "_") {
			bad = append(bad, f)
		}
	}
	return bad
}
