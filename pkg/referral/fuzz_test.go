package referral

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// FuzzDecodeValidate feeds arbitrary bodies through Decode and Validate.
// Neither may panic; Decode returns either a submission or violations on
// "body", never both; and a submission with no violations must re-marshal
// and round-trip unchanged, since intake stores and republishes it.
func FuzzDecodeValidate(f *testing.F) {
	f.Add(readExample(f))
	for _, seed := range []string{
		``,
		`{}`,
		`null`,
		`{"referrer":null,"child":null,"household":null,"concerns":null,"riskIndicators":null,"consent":null}`,
		`{"household":[null]}`,
		`{"riskIndicators":{"dashScore":1e400,"policeIncidentsLast12Months":-99999999999999999999}}`,
		`{"riskIndicators":{"dashScore":"27","missingEpisodesLast12Months":2147483647}}`,
		`{"externalReference":1,"child":"x","concerns":{},"consent":[]}`,
		`{"child":{"sex":99,"unborn":"true","dueDate":"2027-02-30"}}`,
		"{\"narrative\":\"\xff\xfe\"}",
		`{"narrative":"\ud800\u0000"}`,
		`{"concerns":[{"observedAt":"9999-12-31T23:59:59.999999999Z"},{"observedAt":"0001-01-01T00:00:00Z"}]}`,
		strings.Repeat(`{"child":`, 100) + `{}` + strings.Repeat(`}`, 100),
		strings.Repeat(`[`, 1000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sub, vs := Decode(body)
		if (sub == nil) == (vs == nil) {
			t.Fatalf("Decode returned submission %v with violations %v", sub != nil, vs)
		}
		for _, v := range vs {
			if v.Field != "body" || v.Reason == "" {
				t.Fatalf("Decode violation %+v", v)
			}
		}
		if sub == nil {
			return
		}
		if vs := Validate(sub, testNow); vs != nil {
			for _, v := range vs {
				if v.Field == "" || v.Reason == "" {
					t.Fatalf("Validate violation %+v", v)
				}
			}
			return
		}
		out, err := protojson.Marshal(sub)
		if err != nil {
			t.Fatalf("valid submission does not re-marshal: %v", err)
		}
		again, vs := Decode(out)
		if vs != nil {
			t.Fatalf("re-marshalled submission does not decode: %v", vs)
		}
		if !proto.Equal(sub, again) {
			t.Fatalf("round trip changed the submission")
		}
		if vs := Validate(again, testNow); vs != nil {
			t.Fatalf("round trip made a valid submission invalid: %v", vs)
		}
	})
}
