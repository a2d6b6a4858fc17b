package main

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mash-hub/mash/pkg/auth"
)

// TestBodyDecodingAndRuleProblemsAreReportedTogether sends each body route of rules, triage
// and notify a body with a value that cannot be read (an unknown enum value where the
// request has an enum, else a value of the wrong type or an unknown field) and a break of
// one of the method's own rules elsewhere: the one 400 names both, each by its JSON
// (lowerCamelCase) name, rather than the decoding problem hiding the other.
func TestBodyDecodingAndRuleProblemsAreReportedTogether(t *testing.T) {
	ctx := context.Background()
	ip := startInProcess(t)
	tokens := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.RolePractitioner, auth.RoleManager} {
		_, tok, err := ip.sys.p.auth.Create(ctx, "rct-mash", "hub", r, "body-problems", "rhondda-cynon-taf")
		if err != nil {
			t.Fatal(err)
		}
		tokens[r] = tok
	}
	referral, err := os.ReadFile("../intake/testdata/referral.example.json")
	if err != nil {
		t.Fatal(err)
	}
	badReferral := strings.Replace(strings.Replace(string(referral), `"DOMESTIC_ABUSE"`, `"DOMESTIC_ABUSES"`, 1),
		`"nhsNumber": "9434765919"`, `"nhsNumber": "9434765918"`, 1)
	const pra, man = auth.RolePractitioner, auth.RoleManager
	long := strings.Repeat("x", 501)
	for _, tc := range []struct {
		name         string
		role         auth.Role
		method, path string
		body         string
		want         []string // the field that could not be read, then the rule's
	}{
		// rules (validate answers a pack's problems in its response, not as a 400: it has no
		// rule of its request to add)
		{"evaluate", pra, "POST", "/v1/rules:evaluate", `{"referral": ` + badReferral + `}`, []string{"referral.concerns[0].category", "referral.child.nhsNumber"}},
		{"upload", man, "POST", "/v1/packs", `{"colour": "RED", "source": "not a pack"}`, []string{"colour", "source"}},
		{"activate", man, "POST", "/v1/packs/" + missing + "/activate", `{"colour": "RED", "reason": " "}`, []string{"colour", "reason"}},
		{"replay", man, "POST", "/v1/packs:replay", `{"source": "x", "examples": "many", "last": -1}`, []string{"examples", "last"}},
		// triage (claim and release take only the case's version, which only the stored case
		// can check: they have no check without the database)
		{"decide", pra, "POST", "/v1/cases/" + missing + "/decide", `{"rag": "PURPLE", "pathway": "early-help", "confirm": true}`, []string{"rag", "confirm"}},
		{"strategy", pra, "POST", "/v1/cases/" + missing + "/strategy", `{"section47": "yes", "participants": ["A (police, DS)"], "outcome": "s47"}`, []string{"section47", "heldAt"}},
		{"close", pra, "POST", "/v1/cases/" + missing + "/close", `{"note": 5}`, []string{"note", "outcome"}},
		{"request information", pra, "POST", "/v1/cases/" + missing + "/information-requests", `{"due": "tomorrow", "agency": "south-wales-police"}`, []string{"due", "question"}},
		{"authorise sharing", man, "POST", "/v1/cases/" + missing + "/sharing-authorisation", `{"expectedVersion": "v1", "reason": "to protect"}`, []string{"expectedVersion", "lawfulBasis"}},
		{"consent", pra, "POST", "/v1/cases/" + missing + "/consent", `{"expectedVersion": "v1", "status": "MAYBE"}`, []string{"expectedVersion", "status"}},
		{"legal hold", man, "POST", "/v1/cases/" + missing + "/legal-hold", `{"colour": "RED"}`, []string{"colour", "reason"}},
		{"lift legal hold", man, "POST", "/v1/cases/" + missing + "/legal-hold/lift", `{"colour": "RED"}`, []string{"colour", "reason"}},
		{"erase", man, "POST", "/v1/cases/" + missing + "/erase", `{"colour": "RED"}`, []string{"colour", "reason"}},
		{"reassign", man, "POST", "/v1/queue/reassign", `{"referralIds": ["not-a-case"], "assignee": 7}`, []string{"assignee", "referralIds[0]"}},
		{"lead professional", pra, "POST", "/v1/cases/" + missing + "/lead-professional", `{"scope": "LEAD_FOR_EVERYONE", "agency": "rct-childrens-services", "person": "A (lead)"}`, []string{"scope", "team"}},
		{"quality review", man, "POST", "/v1/cases/not-a-case/quality-reviews", `{"verdict": "MAYBE"}`, []string{"verdict", "referralId"}},
		{"assign", man, "POST", "/v1/cases/" + missing + "/assign", `{"expectedVersion": "v1", "assignee": " "}`, []string{"expectedVersion", "assignee"}},
		{"answer information request", pra, "POST", "/v1/information-requests/" + missing + "/answer", `{"colour": "RED", "answer": " "}`, []string{"colour", "answer"}},
		{"raise disagreement", pra, "POST", "/v1/cases/" + missing + "/disagreements", `{"colour": "RED", "reason": " "}`, []string{"colour", "reason"}},
		{"escalate disagreement", pra, "POST", "/v1/disagreements/" + missing + "/escalate", `{"expectedVersion": "v1", "outcome": " "}`, []string{"expectedVersion", "outcome"}},
		{"resolve disagreement", pra, "POST", "/v1/disagreements/" + missing + "/resolve", `{"expectedVersion": "v1", "resolution": ""}`, []string{"expectedVersion", "resolution"}},
		{"revoke sharing", man, "POST", "/v1/cases/" + missing + "/sharing-authorisation:revoke", `{"expectedVersion": "v1", "reason": " "}`, []string{"expectedVersion", "reason"}},
		{"export", man, "POST", "/v1/cases/" + missing + "/export", `{"colour": "RED", "reason": ""}`, []string{"colour", "reason"}},
		// triage's records
		{"merge children", pra, "POST", "/v1/children/" + missing + "/merge", `{"colour": "RED", "intoChildId": "` + missing + `", "reason": "the same child"}`, []string{"colour", "intoChildId"}},
		{"unmerge children", pra, "POST", "/v1/child-merges/not-a-merge/unmerge", `{"colour": "RED", "reason": "different children"}`, []string{"colour", "mergeId"}},
		{"link referral", pra, "POST", "/v1/cases/" + missing + "/child:link", `{"colour": "RED", "childId": "not-a-child", "reason": "the same child"}`, []string{"colour", "childId"}},
		{"unlink referral", pra, "POST", "/v1/cases/" + missing + "/child:unlink", `{"colour": "RED", "reason": " "}`, []string{"colour", "reason"}},
		// notify
		{"put agency", man, "PUT", "/v1/agencies/new-agency", `{"agency": {"channel": "PIGEON", "partnership": "rhondda-cynon-taf", "name": "New"}}`, []string{"agency.channel", "reason"}},
		{"ack deadlines", man, "PUT", "/v1/partnerships/rhondda-cynon-taf/ack-deadlines", `{"redAckMinutes": "lots", "deadlines": [{"role": "police", "rag": "RED", "within": "1h"}]}`, []string{"redAckMinutes", "reason"}},
		{"retry", man, "POST", "/v1/notifications/" + missing + "/retry", `{"colour": "RED"}`, []string{"colour", "reason"}},
		{"approve directory change", man, "POST", "/v1/agencies/no-such-agency/changes/" + missing + "/approve", `{"colour": "RED", "reason": "` + long + `"}`, []string{"colour", "reason"}},
		{"reject directory change", man, "POST", "/v1/agencies/no-such-agency/changes/" + missing + "/reject", `{"colour": "RED", "reason": " "}`, []string{"colour", "reason"}},
		{"acknowledge", man, "POST", "/v1/notifications/" + missing + "/acknowledge", `{"colour": "RED", "note": "` + long + `"}`, []string{"colour", "note"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := callRoute(t, ctx, ip.httpAddr, tokens[tc.role], tc.method, tc.path, "application/json", tc.body)
			var answer struct {
				Error struct {
					Code            string `json:"code"`
					FieldViolations []struct {
						Field string `json:"field"`
					} `json:"fieldViolations"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &answer); err != nil || status != 400 || answer.Error.Code != "INVALID_ARGUMENT" {
				t.Fatalf("%s %s: %d %s, want 400 INVALID_ARGUMENT", tc.method, tc.path, status, body)
			}
			var fields []string
			for _, v := range answer.Error.FieldViolations {
				fields = append(fields, v.Field)
			}
			for _, f := range tc.want {
				if !slices.Contains(fields, f) {
					t.Errorf("%s %s names %v, want %s among them: %s", tc.method, tc.path, fields, f, body)
				}
			}
			for _, f := range fields {
				if strings.Contains(f, "_") {
					t.Errorf("%s names field %q: error fields take their JSON (lowerCamelCase) names", tc.path, f)
				}
			}
		})
	}
}
