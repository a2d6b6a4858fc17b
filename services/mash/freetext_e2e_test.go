package main_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A NUL in any free-text field of any route that writes is refused with a 400 naming the
// field, at every step of a case's life (so the ids and the record's state are real, and
// without the check the text would reach Postgres, which refuses a NUL in text); the clean
// request then succeeds.
func TestNULInFreeTextIsRefusedNamingTheFieldOnEveryRoute(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	referrer := s.credential(t, "south-wales-police")
	staff := func(role string) string {
		out, errOut, code := s.run(t, "clients", "create", "--agency", "rct-mash", "--kind", "hub", "--role", role, "--partnerships", "rhondda-cynon-taf")
		if code != 0 {
			t.Fatalf("clients create: %s", errOut)
		}
		return strings.TrimSpace(out)
	}
	practitioner, manager := staff("practitioner"), staff("manager")
	s.start(t)
	base := "http://" + s.httpAddr
	as := map[string]apiCall{"referrer": {t, base, referrer}, "practitioner": {t, base, practitioner}, "manager": {t, base, manager}}
	const nul = "before\x00after"

	// refused checks that each variant of body, with a NUL in one field, is refused naming
	// that field.
	refused := func(who, method, path string, body func() map[string]any, fields map[string]func(map[string]any)) {
		t.Helper()
		for field, spoil := range fields {
			b := body()
			spoil(b)
			code, out, raw := as[who].do(method, path, b)
			if code != 400 || !namesField(out, field) {
				t.Errorf("%s %s with a NUL in %s: %d %s; want 400 naming %s", method, path, field, code, raw, field)
			}
		}
	}

	// Intake: every free-text field of a referral.
	var referral map[string]any
	if err := json.Unmarshal(example(t), &referral); err != nil {
		t.Fatal(err)
	}
	fresh := func() map[string]any {
		var m map[string]any
		b, _ := json.Marshal(referral)
		_ = json.Unmarshal(b, &m)
		return m
	}
	refused("referrer", "POST", "/v1/referrals", fresh, map[string]func(map[string]any){
		"narrative":           func(m map[string]any) { m["narrative"] = nul },
		"child.givenName":     func(m map[string]any) { m["child"].(map[string]any)["givenName"] = nul },
		"child.address.line1": func(m map[string]any) { m["child"].(map[string]any)["address"].(map[string]any)["line1"] = nul },
		"concerns[0].summary": func(m map[string]any) { m["concerns"].([]any)[0].(map[string]any)["summary"] = nul },
		"household[1].givenName": func(m map[string]any) {
			m["household"].([]any)[1].(map[string]any)["givenName"] = nul
		},
		"referrer.role":  func(m map[string]any) { m["referrer"].(map[string]any)["role"] = nul },
		"consent.reason": func(m map[string]any) { m["consent"].(map[string]any)["reason"] = nul },
	})
	code, ack, raw := as["referrer"].do("POST", "/v1/referrals", fresh())
	if code != 201 {
		t.Fatalf("submit: %d %s", code, raw)
	}
	id := str(ack, "referralId")
	cases := "/v1/cases/" + id

	var version string
	if !poll(60*time.Second, func() bool {
		code, out, _ := as["practitioner"].do("GET", cases, nil)
		return code == 200 && str(out, "case", "state") == "AWAITING_DECISION"
	}) {
		t.Fatalf("case %s never awaited a decision", id)
	}
	code, out, raw := as["practitioner"].do("POST", cases+"/claim", map[string]any{})
	if code != 200 {
		t.Fatalf("claim: %d %s", code, raw)
	}
	version = str(out, "case", "version")

	// Triage casework.
	decide := func() map[string]any {
		return map[string]any{"expectedVersion": version, "level": "LEVEL_3B", "reason": "School reports the child settled.", "pathway": "intensive_family_support"}
	}
	refused("practitioner", "POST", cases+"/decide", decide, map[string]func(map[string]any){
		"reason":  func(m map[string]any) { m["reason"] = nul },
		"pathway": func(m map[string]any) { m["pathway"] = nul },
	})
	strategy := func() map[string]any {
		return map[string]any{"heldAt": time.Now().UTC().Format(time.RFC3339), "participants": []string{"A. Jones (police, DS)"}, "outcome": "Section 47 enquiry"}
	}
	refused("practitioner", "POST", cases+"/strategy", strategy, map[string]func(map[string]any){
		"participants[0]": func(m map[string]any) { m["participants"] = []string{nul} },
		"outcome":         func(m map[string]any) { m["outcome"] = nul },
	})
	if code, _, raw := as["practitioner"].do("POST", cases+"/strategy", strategy()); code != 200 {
		t.Fatalf("strategy: %d %s", code, raw)
	}
	ask := func() map[string]any {
		return map[string]any{"agency": "south-wales-police", "question": "Any incidents since November?"}
	}
	refused("practitioner", "POST", cases+"/information-requests", ask, map[string]func(map[string]any){
		"question": func(m map[string]any) { m["question"] = nul },
	})
	code, out, raw = as["practitioner"].do("POST", cases+"/information-requests", ask())
	if code != 200 {
		t.Fatalf("information request: %d %s", code, raw)
	}
	requestID := str(out, "request", "id")
	answer := func() map[string]any { return map[string]any{"answer": "Two call-outs in December."} }
	refused("referrer", "POST", "/v1/information-requests/"+requestID+"/answer", answer, map[string]func(map[string]any){
		"answer": func(m map[string]any) { m["answer"] = nul },
	})
	if code, _, raw := as["referrer"].do("POST", "/v1/information-requests/"+requestID+"/answer", answer()); code != 200 {
		t.Fatalf("answer: %d %s", code, raw)
	}

	code, out, raw = as["practitioner"].do("POST", cases+"/decide", decide())
	if code != 200 {
		t.Fatalf("decide: %d %s", code, raw)
	}
	version = str(out, "case", "version")
	disagree := func() map[string]any { return map[string]any{"reason": "We consider the threshold met for level 4."} }
	refused("referrer", "POST", cases+"/disagreements", disagree, map[string]func(map[string]any){
		"reason": func(m map[string]any) { m["reason"] = nul },
	})
	code, out, raw = as["referrer"].do("POST", cases+"/disagreements", disagree())
	if code != 200 {
		t.Fatalf("disagreement: %d %s", code, raw)
	}
	disagreement := "/v1/disagreements/" + str(out, "disagreement", "id")
	dVersion := str(out, "disagreement", "version")
	refused("manager", "POST", disagreement+"/escalate", func() map[string]any {
		return map[string]any{"expectedVersion": dVersion, "outcome": "Not agreed at practitioner level."}
	}, map[string]func(map[string]any){"outcome": func(m map[string]any) { m["outcome"] = nul }})
	refused("manager", "POST", disagreement+"/resolve", func() map[string]any {
		return map[string]any{"expectedVersion": dVersion, "resolution": "Agreed to review at level 4."}
	}, map[string]func(map[string]any){"resolution": func(m map[string]any) { m["resolution"] = nul }})

	_, out, _ = as["practitioner"].do("GET", cases, nil)
	version = str(out, "case", "version")
	closing := func() map[string]any {
		return map[string]any{"expectedVersion": version, "outcome": "INTENSIVE_SUPPORT", "note": "Intensive family support allocated."}
	}
	refused("practitioner", "POST", cases+"/close", closing, map[string]func(map[string]any){
		"note": func(m map[string]any) { m["note"] = nul },
	})
	if code, _, raw := as["practitioner"].do("POST", cases+"/close", closing()); code != 200 {
		t.Fatalf("close: %d %s", code, raw)
	}

	// Rules and notify: a NUL is refused before anything else is looked at. (Rules' old
	// confirm and override routes refuse every call now: triage's decide is the one door.)
	_, packs, raw := as["manager"].do("GET", "/v1/packs", nil)
	packList := anyList(packs["packs"])
	if len(packList) == 0 {
		t.Fatalf("no rule packs: %s", raw)
	}
	refused("manager", "POST", "/v1/packs/"+str(packList[0].(map[string]any), "id")+"/activate", func() map[string]any {
		return map[string]any{"reason": "Agreed at the partnership board."}
	}, map[string]func(map[string]any){"reason": func(m map[string]any) { m["reason"] = nul }})
	refused("manager", "PUT", "/v1/agencies/rct-test-team", func() map[string]any {
		return map[string]any{"agency": map[string]any{"partnership": "rhondda-cynon-taf", "name": "Test team", "roles": []string{"police"}}, "reason": "New team."}
	}, map[string]func(map[string]any){
		"reason":      func(m map[string]any) { m["reason"] = nul },
		"agency.name": func(m map[string]any) { m["agency"].(map[string]any)["name"] = nul },
	})
	refused("referrer", "POST", "/v1/notifications/00000000-0000-0000-0000-000000000000/acknowledge", func() map[string]any {
		return map[string]any{"note": "Received."}
	}, map[string]func(map[string]any){"note": func(m map[string]any) { m["note"] = nul }})
}

// namesField reports whether an error answer lists field among its violations.
func namesField(out map[string]any, field string) bool {
	e, _ := out["error"].(map[string]any)
	for _, v := range anyList(e["fieldViolations"]) {
		if m, ok := v.(map[string]any); ok && m["field"] == field {
			return true
		}
	}
	return false
}
