package text

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mash-hub/mash/pkg/apierr"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

func TestProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		s         string
		multiline bool
		bad       bool
	}{
		{"plain", "Seen at school on Monday.", false, false},
		{"welsh and accents", "Ysgol Gymraeg Llwyncelyn – café", false, false},
		{"newline in free text", "line one\r\nline two\tindented", true, false},
		{"newline in an identifier", "abc\ndef", false, true},
		{"NUL", "before\x00after", true, true},
		{"bell", "ring\a", true, true},
		{"escape", "\x1b[31mred", true, true},
		{"DEL", "x\x7f", true, true},
		{"C1 control", "x\u0085y", true, true},
		{"invalid UTF-8", "caf\xc3", true, true},
		{"empty", "", false, false},
	} {
		if got := Problem(tc.s, tc.multiline); (got != "") != tc.bad {
			t.Errorf("%s: Problem(%q, %v) = %q; want bad=%v", tc.name, tc.s, tc.multiline, got, tc.bad)
		}
	}
	if got := Problem("a\x00b", true); !strings.Contains(got, "NUL") {
		t.Errorf("a NUL is described as %q; want it named", got)
	}
}

func TestTruncateCutsAtACharacterBoundary(t *testing.T) {
	t.Parallel()
	reason := strings.Repeat("a", 499) + "é" // 501 bytes: the cut at 500 falls inside é
	got := Truncate(reason, 500)
	if got != strings.Repeat("a", 499) || !utf8.ValidString(got) {
		t.Fatalf("Truncate cut to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	for _, tc := range []struct {
		s    string
		max  int
		want string
	}{
		{"short", 500, "short"},
		{"abc", 0, ""},
		{"ab€", 4, "ab"},  // € is 3 bytes: 2+3 > 4
		{"ab€", 5, "ab€"}, // exactly fits
		{"𝄞x", 3, ""},     // a 4-byte character cut anywhere is dropped whole
		{"𝄞x", 4, "𝄞"},
	} {
		if got := Truncate(tc.s, tc.max); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q; want %q", tc.s, tc.max, got, tc.want)
		}
	}
}

func TestCheckNamesEveryBadFieldByItsJSONPath(t *testing.T) {
	t.Parallel()
	req := &intakev1.SubmitReferralRequest{Referral: &intakev1.ReferralSubmission{
		ExternalReference: "ok",
		Child:             &intakev1.Child{GivenName: "Al\x00ex", School: "fine\nschool"},
	}}
	vs := Check(req)
	if len(vs) != 1 || vs[0].Field != "referral.child.givenName" || !strings.Contains(vs[0].Reason, "NUL") {
		t.Fatalf("violations %+v; want one naming referral.child.givenName", vs)
	}

	strategy := &triagev1.RecordStrategyDiscussionRequest{ReferralId: "r\n1", Participants: []string{"A. Jones", "B\x00"}, Outcome: "S47\r\nagreed"}
	got := map[string]bool{}
	for _, v := range Check(strategy) {
		got[v.Field] = true
	}
	if len(got) != 2 || !got["referralId"] || !got["participants[1]"] {
		t.Fatalf("violations %v; want referralId (an identifier is single-line) and participants[1]", got)
	}

	st, _ := structpb.NewStruct(map[string]any{"note": "x\x00", "ok": "fine"})
	vs = Check(st)
	if len(vs) != 1 || vs[0].Field != `fields["note"].stringValue` {
		t.Fatalf("map value violations %+v", vs)
	}

	if err := Invalid(&triagev1.CloseCaseRequest{Note: "Closed\n\tafter a visit"}); err != nil {
		t.Fatalf("clean request refused: %v", err)
	}
	var e *apierr.Error
	if err := Invalid(&triagev1.CloseCaseRequest{Note: "\x00"}); err == nil || !asError(err, &e) || e.Violations[0].Field != "note" {
		t.Fatalf("Invalid = %v; want an apierr naming note", err)
	}
}

func asError(err error, target **apierr.Error) bool {
	e, ok := err.(*apierr.Error)
	*target = e
	return ok
}

// BenchmarkCheckReferral is the cost the check adds to every submission: the example
// referral, walked field by field.
func BenchmarkCheckReferral(b *testing.B) {
	raw, err := os.ReadFile("../../services/intake/testdata/referral.example.json")
	if err != nil {
		b.Fatal(err)
	}
	sub := &intakev1.ReferralSubmission{}
	if err := protojson.Unmarshal(raw, sub); err != nil {
		b.Fatal(err)
	}
	req := &intakev1.SubmitReferralRequest{Referral: sub}
	b.ReportAllocs()
	for b.Loop() {
		if vs := Check(req); len(vs) != 0 {
			b.Fatal(vs)
		}
	}
}
