package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxPackBytes bounds the size of a pack file. The default pack is a few
// tens of kilobytes; anything far larger is a mistake, and refusing it keeps
// parsing cheap.
const MaxPackBytes = 2 << 20

// Pack is a rule pack as written in its YAML file, before validation. Values
// are kept as the author wrote them (levels and RAG ratings as strings) so
// that Compile can report every problem at once instead of stopping at the
// first one a typed decoder would hit.
type Pack struct {
	// Partnership is the slug of the safeguarding partnership the pack
	// belongs to, or "default" for the shipped framework pack.
	Partnership string `yaml:"partnership"`
	// Version identifies this revision of the pack (e.g. "2026.11.1"); every
	// outcome records it so a decision can be traced to the rules in force.
	Version     string `yaml:"version"`
	Description string `yaml:"description"`
	// Languages are the languages the pack's people-facing text is written in:
	// "en", or "en" and "cy". Omitted means English only. A pack that lists
	// "cy" must give the Welsh of every text (see Compile); one that does not
	// may give none, so a pack is never half translated.
	Languages []string `yaml:"languages"`
	// DefaultOutcome is what a referral gets when no rule fires: no closed doors.
	DefaultOutcome DefaultOutcome `yaml:"default_outcome"`
	Timescales     TimescaleSpec  `yaml:"timescales"`
	// Levels optionally renames the fixed levels for display, keyed by the
	// level spelling ("1", "2", "3a", "3b", "4").
	Levels map[string]string `yaml:"levels"`
	// LevelsCy are the Welsh level names; omitted means DefaultLevelNamesCy.
	LevelsCy map[string]string `yaml:"levels_cy"`
	// Agencies and Pathways are the vocabularies rules may use, id ->
	// description. Omitted means the built-in vocabulary; declared means
	// exactly these, so a partnership can narrow the list and a typo is
	// caught either way.
	Agencies map[string]string `yaml:"agencies"`
	Pathways map[string]string `yaml:"pathways"`
	// AgenciesCy and PathwaysCy are the Welsh descriptions of the same ids;
	// omitted means the built-in Welsh of the built-in vocabulary.
	AgenciesCy map[string]string `yaml:"agencies_cy"`
	PathwaysCy map[string]string `yaml:"pathways_cy"`
	Rules      []Rule            `yaml:"rules"`
	Tests      []TestCase        `yaml:"tests"`
}

// DefaultOutcome is the no-closed-doors outcome.
type DefaultOutcome struct {
	Level    string   `yaml:"level"`
	RAG      string   `yaml:"rag"`
	Pathway  string   `yaml:"pathway"`
	Agencies []string `yaml:"agencies"`
	Reason   string   `yaml:"reason"`
	ReasonCy string   `yaml:"reason_cy"`
}

// TimescaleSpec holds the pack's response clocks as written, e.g.
// "4 working hours" or "72 hours"; see ParseTimescale.
type TimescaleSpec struct {
	Red      string `yaml:"red"`
	Amber    string `yaml:"amber"`
	Green    string `yaml:"green"`
	Decision string `yaml:"decision"`
}

// Rule is one threshold rule.
type Rule struct {
	ID          string `yaml:"id"`
	Description string `yaml:"description"`
	// DescriptionCy is the description in Welsh.
	DescriptionCy string   `yaml:"description_cy"`
	When          string   `yaml:"when"`
	Level         string   `yaml:"level"`
	RAG           string   `yaml:"rag"`
	Pathway       string   `yaml:"pathway"`
	Agencies      []string `yaml:"agencies"`
	Reason        string   `yaml:"reason"`
	// ReasonCy is the reason in Welsh, shown to people who work in Welsh.
	ReasonCy string `yaml:"reason_cy"`
	// Line is the line of the rule in the pack file (0 if not parsed from a
	// file), so problems can point at it.
	Line int `yaml:"-"`
}

// TestCase is one of the pack's own tests: facts in, expected outcome out.
type TestCase struct {
	Name   string     `yaml:"name"`
	Facts  TestFacts  `yaml:"facts"`
	Expect TestExpect `yaml:"expect"`
	Line   int        `yaml:"-"`
}

// TestExpect is the expected outcome of a test case. Level, RAG, Pathway
// and Agencies are always compared (agencies as an exact set, so write
// "agencies: []" for none); Fired and NotFired are optional lists of rule
// ids that must, or must not, fire; Default, if given, must match whether
// the no-closed-doors default applied.
type TestExpect struct {
	Level    string   `yaml:"level"`
	RAG      string   `yaml:"rag"`
	Pathway  string   `yaml:"pathway"`
	Agencies []string `yaml:"agencies"`
	Fired    []string `yaml:"fired"`
	NotFired []string `yaml:"not_fired"`
	Default  *bool    `yaml:"default"`
}

// Parse decodes a pack file strictly: unknown keys (a misspelt "reasn:"),
// duplicate keys, several documents, or values of the wrong shape are
// errors naming the line. Parse checks only the shape; Compile checks the
// meaning.
func Parse(b []byte) (*Pack, error) {
	if len(b) > MaxPackBytes {
		return nil, fmt.Errorf("pack: file is %d bytes, more than the limit of %d", len(b), MaxPackBytes)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("pack: file is empty")
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p Pack
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("pack: %s", cleanYAMLError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("pack: file holds more than one YAML document; a pack is one document")
	}
	// The strict decode above cannot record where each rule and test sits
	// (yaml.v3 drops KnownFields inside custom unmarshalers), so a second,
	// untyped pass over the node tree recovers their lines.
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err == nil {
		setLines(&root, "rules", len(p.Rules), func(i, line int) { p.Rules[i].Line = line })
		setLines(&root, "tests", len(p.Tests), func(i, line int) { p.Tests[i].Line = line })
	}
	return &p, nil
}

// setLines calls set(i, line) for each item of the top-level sequence key.
func setLines(root *yaml.Node, key string, n int, set func(i, line int)) {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key || m.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, item := range m.Content[i+1].Content {
			if j < n {
				set(j, item.Line)
			}
		}
	}
}

// cleanYAMLError rewrites Go type names in yaml.v3 messages into the
// pack's vocabulary, so "field reasn not found in type pack.Rule" reads as
// "unknown key reasn in a rule".
func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	r := strings.NewReplacer(
		"not found in type pack.Pack", "is not a pack key",
		"not found in type pack.Rule", "is not a rule key",
		"not found in type pack.TestCase", "is not a test key",
		"not found in type pack.TestExpect", "is not an expect key",
		"not found in type pack.TestFacts", "is not a facts key",
		"not found in type pack.TestChild", "is not a facts.child key",
		"not found in type pack.TestRisk", "is not a facts.risk key",
		"not found in type pack.TestHistory", "is not a facts.history key",
		"not found in type pack.TestConsent", "is not a facts.consent key",
		"not found in type pack.TestReferrer", "is not a facts.referrer key",
		"not found in type pack.DefaultOutcome", "is not a default_outcome key",
		"not found in type pack.TimescaleSpec", "is not a timescales key",
		"field ", "key ",
	)
	return r.Replace(msg)
}
