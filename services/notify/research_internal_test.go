package notify

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAnswer(t *testing.T) {
	const id = "01950a4e-7c1d-7b2a-9f3e-0123456789ab"
	for name, tc := range map[string]struct {
		agency, body string
		ok           bool
	}{
		"valid":                {"rct-yjs", `{"requestId":"` + id + `","answer":"Nothing known."}`, true},
		"upper-case id":        {"rct-yjs", `{"requestId":"` + strings.ToUpper(id) + `","answer":"x"}`, true},
		"at the limit":         {"rct-yjs", `{"requestId":"` + id + `","answer":"` + strings.Repeat("é", MaxAnswerChars) + `"}`, true},
		"over the limit":       {"rct-yjs", `{"requestId":"` + id + `","answer":"` + strings.Repeat("a", MaxAnswerChars+1) + `"}`, false},
		"no agency":            {"", `{"requestId":"` + id + `","answer":"x"}`, false},
		"not json":             {"rct-yjs", `{`, false},
		"array":                {"rct-yjs", `[]`, false},
		"no request":           {"rct-yjs", `{"answer":"x"}`, false},
		"urn id":               {"rct-yjs", `{"requestId":"urn:uuid:` + id + `","answer":"x"}`, false},
		"no answer":            {"rct-yjs", `{"requestId":"` + id + `"}`, false},
		"blank answer":         {"rct-yjs", `{"requestId":"` + id + `","answer":" \n"}`, false},
		"answer of wrong type": {"rct-yjs", `{"requestId":"` + id + `","answer":7}`, false},
		"NUL in the answer":    {"rct-yjs", `{"requestId":"` + id + `","answer":"Nothing\u0000 known."}`, false},
		"lines in the answer":  {"rct-yjs", `{"requestId":"` + id + `","answer":"Nothing known.\r\nSigned, YJS"}`, true},
	} {
		b, err := parseAnswer(tc.agency, []byte(tc.body))
		var fault answerFault
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.ok && b.RequestID != id:
			t.Errorf("%s: request id %q", name, b.RequestID)
		case !tc.ok && !errors.As(err, &fault):
			t.Errorf("%s: accepted (%v)", name, err)
		case !tc.ok && strings.Contains(fault.why, "Nothing"):
			t.Errorf("%s: the reason quotes the answer", name)
		}
	}
	// The same reply has the same key whatever its delivery; another agency's does not.
	if answerKey("a", id, "x") != answerKey("a", id, "x") || answerKey("a", id, "x") == answerKey("b", id, "x") || answerKey("a", id, "x") == answerKey("a", id, "y") {
		t.Error("answer keys")
	}
}
