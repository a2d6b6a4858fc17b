package jsonfields

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		// want is every violation, as field: fragment of its reason.
		want map[string]string
		// noBlame: the body is refused but no field can be named.
		noBlame bool
		// check looks at what was decoded despite the violations.
		check func(*intakev1.ReferralSubmission) bool
	}{
		{name: "valid", body: `{"externalReference":"r","child":{"sex":"MALE"}}`, want: map[string]string{},
			check: func(s *intakev1.ReferralSubmission) bool { return s.GetChild().GetSex() == intakev1.Sex_MALE }},
		{name: "one enum, rest kept", body: `{"externalReference":"r","child":{"sex":"BOY","givenName":"A"}}`,
			want: map[string]string{"child.sex": "one of MALE, FEMALE"},
			check: func(s *intakev1.ReferralSubmission) bool {
				return s.GetExternalReference() == "r" && s.GetChild().GetGivenName() == "A" && s.GetChild().GetSex() == 0
			}},
		{name: "every bad field", body: `{"narrative":1,"child":{"unborn":"yes"},"concerns":[{"category":"NEGLECT"},{"category":"X","observedAt":"2031-07-14"}]}`,
			want: map[string]string{"narrative": "JSON string", "child.unborn": "true or false", "concerns[1].category": "one of",
				"concerns[1].observedAt": "RFC 3339"},
			check: func(s *intakev1.ReferralSubmission) bool {
				return len(s.GetConcerns()) == 2 && s.GetConcerns()[0].GetCategory() == intakev1.ConcernCategory_NEGLECT
			}},
		{name: "unknown names", body: `{"childName":"x","child":{"nhs_no":"1"},"a b":1}`,
			want: map[string]string{"childName": "not a field", "child.nhs_no": "not a field", "body": "not in the published contract"}},
		{name: "object expected", body: `{"child":"x"}`, want: map[string]string{"child": "JSON object"}},
		{name: "list element", body: `{"household":[{"relationship":"MOTHER"},"x"]}`, want: map[string]string{"household[1]": "JSON list of a JSON object"}},
		{name: "proto names and numbers", body: `{"external_reference":"r","child":{"sex":4},"riskIndicators":{"dashScore":"7","x":1}}`,
			want: map[string]string{"riskIndicators.x": "not a field"},
			check: func(s *intakev1.ReferralSubmission) bool {
				return s.GetExternalReference() == "r" && s.GetChild().GetSex() == intakev1.Sex_SEX_NOT_KNOWN && s.GetRiskIndicators().GetDashScore() == 7
			}},
		{name: "syntax error", body: `{"child":{`, noBlame: true},
		{name: "not an object", body: `[1]`, noBlame: true},
		{name: "duplicate name", body: `{"narrative":"a","narrative":"b"}`, noBlame: true},
		{name: "invalid UTF-8", body: "{\"narrative\":1,\"child\":{\"givenName\":\"\xff\"}}", noBlame: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub := &intakev1.ReferralSubmission{}
			vs, err := Decode([]byte(tc.body), sub)
			if tc.noBlame {
				if err == nil || len(vs) != 0 {
					t.Fatalf("Decode = %v, %v; want an error and no field blamed", vs, err)
				}
				return
			}
			if (len(tc.want) == 0) != (err == nil) {
				t.Fatalf("Decode error %v with violations %v", err, vs)
			}
			got := map[string]string{}
			for _, v := range vs {
				got[v.Field] = v.Reason
			}
			for f, fragment := range tc.want {
				if !strings.Contains(got[f], fragment) {
					t.Errorf("%s: reason %q, want it to contain %q (all: %v)", f, got[f], fragment, vs)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("violations %v, want %v", vs, tc.want)
			}
			for _, v := range vs {
				for _, value := range []string{"BOY", "yes", "2031-07-14"} {
					if strings.Contains(v.Reason, value) {
						t.Errorf("%s: reason %q repeats a value", v.Field, v.Reason)
					}
				}
			}
			if tc.check != nil && !tc.check(sub) {
				t.Errorf("decoded %v", sub)
			}
		})
	}
}

// A body protojson accepts decodes exactly as protojson decodes it.
func TestDecodeMatchesProtojson(t *testing.T) {
	t.Parallel()
	body := `{"externalReference":"r","household":[{"relationship":"MOTHER"}],"concerns":[{"category":"NEGLECT","observedAt":"2026-11-21T22:10:00Z"}]}`
	a, b := &intakev1.ReferralSubmission{}, &intakev1.ReferralSubmission{}
	if vs, err := Decode([]byte(body), a); err != nil || vs != nil {
		t.Fatal(vs, err)
	}
	if err := strict.Unmarshal([]byte(body), b); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(a, b) {
		t.Fatalf("Decode %v, protojson %v", a, b)
	}
}
