package share

import (
	"slices"
	"strings"

	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
)

// Languages of agency messages.
const (
	langEnglish = "en"
	langWelsh   = "cy"
)

// languages is the agency's language order, English when it has none.
func languages(l []string) []string {
	if len(l) == 0 {
		return []string{langEnglish}
	}
	return slices.Clone(l)
}

// localiseDecision fills the decision's people-facing texts in the agency's languages, in
// order (a bilingual agency's Welsh first). Reason is the texts joined by a blank line, so a
// receiver that reads only Reason still gets every language the agency asked for. Where the
// pack gave no Welsh, a Welsh-reading agency gets the English, marked "en" in Reasons: it is
// told, not misled. A practitioner's own words go once, as written.
func localiseDecision(m *notifyv1.DecisionSummary, d *Decision, langs []string) {
	if d.ReasonAsWritten {
		m.Reasons = []*notifyv1.LocalisedText{{Text: d.Reason}}
	} else {
		for _, l := range langs {
			t := &notifyv1.LocalisedText{Language: langEnglish, Text: d.Reason}
			if l == langWelsh && strings.TrimSpace(d.ReasonCy) != "" {
				t = &notifyv1.LocalisedText{Language: langWelsh, Text: d.ReasonCy}
			}
			if !slices.ContainsFunc(m.Reasons, func(x *notifyv1.LocalisedText) bool { return x.GetLanguage() == t.GetLanguage() }) {
				m.Reasons = append(m.Reasons, t)
			}
		}
	}
	texts := make([]string, 0, len(m.Reasons))
	for _, t := range m.Reasons {
		if t.GetText() != "" {
			texts = append(texts, t.GetText())
		}
	}
	m.Reason = strings.Join(texts, "\n\n")
	m.PathwayNames = names(pathwayNames[d.Pathway], langs)
	m.LevelNames = names(levelNames[d.Level], langs)
}

// names is a label in each of langs; none when the label is not known.
func names(label [2]string, langs []string) []*notifyv1.LocalisedText {
	if label[0] == "" {
		return nil
	}
	var out []*notifyv1.LocalisedText
	for _, l := range langs {
		t := &notifyv1.LocalisedText{Language: langEnglish, Text: label[0]}
		if l == langWelsh {
			t = &notifyv1.LocalisedText{Language: langWelsh, Text: label[1]}
		}
		out = append(out, t)
	}
	return out
}

// levelNames are the framework's level names, English and Welsh, by the level's enum name.
var levelNames = map[string][2]string{
	"LEVEL_1":  {"Level 1 - Universal", "Lefel 1 - Cyffredinol"},
	"LEVEL_2":  {"Level 2 - Universal Plus", "Lefel 2 - Cyffredinol a Mwy"},
	"LEVEL_3A": {"Level 3a - Early Intervention", "Lefel 3a - Ymyrraeth Gynnar"},
	"LEVEL_3B": {"Level 3b - Intensive Intervention", "Lefel 3b - Ymyrraeth Ddwys"},
	"LEVEL_4":  {"Level 4 - Remedial", "Lefel 4 - Adferol"},
}

// pathwayNames are the built-in pathways' names, English and Welsh, as the console shows
// them. A pathway a partnership's pack adds has no name here and goes by its id alone.
var pathwayNames = map[string][2]string{
	"nfa_advice":               {"No further action, with advice", "Dim camau pellach, gyda chyngor"},
	"single_agency":            {"Support from a single agency", "Cymorth gan un asiantaeth"},
	"taf":                      {"Team Around the Family", "Tîm o Amgylch y Teulu"},
	"intensive_family_support": {"Intensive family support", "Cymorth dwys i deuluoedd"},
	"assessment":               {"Assessment by children's social care", "Asesiad gan y gwasanaethau cymdeithasol i blant"},
	"pre_birth_assessment":     {"Pre-birth assessment", "Asesiad cyn geni"},
	"strategy_discussion":      {"Strategy discussion", "Trafodaeth strategaeth"},
	"immediate_protection":     {"Immediate protection", "Amddiffyn ar unwaith"},
	"marac":                    {"MARAC (domestic abuse risk conference)", "MARAC (cynhadledd risg cam-drin domestig)"},
	"operation_encompass":      {"Operation Encompass notice to the school", "Hysbysiad Ymgyrch Encompass i'r ysgol"},
	"return_home_interview":    {"Return home interview", "Cyfweliad dychwelyd adref"},
	"exploitation_screening":   {"Exploitation screening", "Sgrinio camfanteisio"},
	"prevent_referral":         {"Prevent referral", "Atgyfeiriad Prevent"},
	"inform_allocated_worker":  {"Tell the allocated worker", "Rhoi gwybod i'r gweithiwr dynodedig"},
}
