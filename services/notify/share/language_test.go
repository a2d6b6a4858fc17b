package share_test

import (
	"testing"
)

// A Welsh-reading agency gets the English of an English-only pack marked as English, never
// labelled Welsh; an override's reason goes once, as the practitioner wrote it.
func TestReasonLanguageIsNeverMislabelled(t *testing.T) {
	in := actionInput(t, "police")
	in.Languages = []string{"cy"}
	_, m := build(t, in)
	rs := m.GetDecision().GetReasons()
	if len(rs) != 1 || rs[0].GetLanguage() != "en" || m.GetDecision().GetReason() != in.Decision.Reason {
		t.Errorf("an English-only reason to a Welsh agency: %v", rs)
	}

	in.Languages = []string{"cy", "en"}
	in.Decision.ReasonCy = "Cam-drin domestig risg uchel gyda'r plentyn yn bresennol"
	_, m = build(t, in)
	if rs := m.GetDecision().GetReasons(); len(rs) != 2 || rs[0].GetLanguage() != "cy" || rs[1].GetLanguage() != "en" ||
		m.GetDecision().GetReason() != in.Decision.ReasonCy+"\n\n"+in.Decision.Reason {
		t.Errorf("a bilingual agency's reasons: %v", rs)
	}

	in.Decision.Reason, in.Decision.ReasonCy, in.Decision.ReasonAsWritten = "Seen by the school nurse today; level 3a", "", true
	_, m = build(t, in)
	if rs := m.GetDecision().GetReasons(); len(rs) != 1 || rs[0].GetLanguage() != "" || m.GetDecision().GetReason() != in.Decision.Reason {
		t.Errorf("an override's reason: %v", rs)
	}
	if got := m.GetLanguages(); len(got) != 2 || got[0] != "cy" {
		t.Errorf("languages = %v", got)
	}
}
