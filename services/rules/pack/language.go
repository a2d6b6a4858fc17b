package pack

import (
	"maps"
	"slices"
	"strings"
)

// Pack languages. English is always one: the rules engine, its tests and
// every audit reader work from it. Welsh is the other language a hub in
// Wales must offer on equal terms.
const (
	LangEnglish = "en"
	LangWelsh   = "cy"
)

// Bilingual reports whether the pack carries Welsh for every text.
func (c *Compiled) Bilingual() bool { return slices.Contains(c.Languages, LangWelsh) }

// checkLanguages validates the languages key and reports whether the pack is
// bilingual. The rule, chosen with hubs in Wales in mind: a pack that says it
// is in Welsh must be wholly in Welsh, and a missing Welsh text is a problem
// naming the rule and the field, so no practitioner working in Welsh meets
// an English reason without warning; a pack that does not list Welsh must
// give no Welsh at all (see checkWelsh), so a half-translated pack cannot be
// loaded either. Screens and messages in Welsh show an English-only pack's
// text in English, marked as English.
func (c *Compiled) checkLanguages(p *Pack, top func(field, format string, args ...any)) bool {
	langs := p.Languages
	if len(langs) == 0 {
		langs = []string{LangEnglish}
	}
	seen := map[string]bool{}
	for _, l := range langs {
		switch {
		case l != LangEnglish && l != LangWelsh:
			top("languages", "unknown language %q: use en, or en and cy", l)
		case seen[l]:
			top("languages", "%q is listed twice", l)
		}
		seen[l] = true
	}
	if !seen[LangEnglish] {
		top("languages", "must include en: every pack is written in English, and in Welsh too when it lists cy")
	}
	c.Languages = []string{LangEnglish}
	if seen[LangWelsh] {
		c.Languages = append(c.Languages, LangWelsh)
	}
	return seen[LangWelsh]
}

// checkWelsh reports a Welsh text that is missing from a bilingual pack, or
// given in a pack that does not list cy among its languages.
func checkWelsh(welsh bool, at Problem, text string, add func(Problem)) {
	blank := strings.TrimSpace(text) == ""
	switch {
	case welsh && blank:
		at.Message = "is required: the pack lists cy among its languages, so every text needs its Welsh"
		add(at)
	case !welsh && !blank:
		at.Message = "Welsh is given but the pack's languages do not include cy; add \"languages: [en, cy]\" and give the Welsh of every text"
		add(at)
	}
}

// checkWelshVocabularies fills the Welsh level names and vocabularies of a
// bilingual pack and checks that every level, agency and pathway has its
// Welsh name. A pack that keeps the built-in vocabulary gets the built-in
// Welsh; one that declares its own must translate its own.
func (c *Compiled) checkWelshVocabularies(p *Pack, welsh bool, top func(field, format string, args ...any)) {
	for _, v := range []struct {
		field string
		m     map[string]string
	}{{"levels_cy", p.LevelsCy}, {"agencies_cy", p.AgenciesCy}, {"pathways_cy", p.PathwaysCy}} {
		if !welsh && len(v.m) > 0 {
			top(v.field, "Welsh is given but the pack's languages do not include cy; add \"languages: [en, cy]\" and give the Welsh of every text")
		}
	}
	if !welsh {
		return
	}
	c.LevelNamesCy = make(map[Level]string, len(Levels))
	for _, l := range Levels {
		c.LevelNamesCy[l] = DefaultLevelNamesCy[l]
	}
	for _, k := range sortedKeys(p.LevelsCy) {
		l, err := ParseLevel(k)
		if err != nil {
			top("levels_cy", "%v; levels are fixed, a pack can only rename them", err)
			continue
		}
		if strings.TrimSpace(p.LevelsCy[k]) == "" {
			top("levels_cy", "level %s needs a Welsh name", k)
			continue
		}
		c.LevelNamesCy[l] = p.LevelsCy[k]
	}
	c.AgenciesCy = welshVocabulary("agencies", c.Agencies, p.Agencies == nil, p.AgenciesCy, BuiltinAgenciesCy, top)
	c.PathwaysCy = welshVocabulary("pathways", c.Pathways, p.Pathways == nil, p.PathwaysCy, BuiltinPathwaysCy, top)
}

// welshVocabulary checks that every id of the vocabulary in force has a Welsh
// description and that the Welsh names no id the vocabulary lacks.
func welshVocabulary(field string, english map[string]string, builtin bool, given, builtinCy map[string]string,
	top func(field, format string, args ...any)) map[string]string {
	cy := maps.Clone(given)
	if cy == nil {
		cy = map[string]string{}
	}
	for _, id := range sortedKeys(english) {
		if strings.TrimSpace(cy[id]) != "" {
			continue
		}
		if builtin && builtinCy[id] != "" {
			cy[id] = builtinCy[id]
			continue
		}
		top(field+"_cy", "%q needs its Welsh description (the pack lists cy among its languages)", id)
	}
	for _, id := range sortedKeys(cy) {
		if _, ok := english[id]; !ok {
			top(field+"_cy", "%q is not among the pack's %s", id, field)
		}
	}
	return cy
}
