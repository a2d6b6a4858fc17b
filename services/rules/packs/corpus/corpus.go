// Package corpus holds the threshold vignette corpus: short cases paraphrased from named,
// public threshold and levels-of-need documents of English and Welsh partnerships, each
// with the levels its sources accept. Tests run every vignette through the real rules
// engine and a pack, and measure how often the pack agrees with the documents and whether
// it ever decides below what every cited document accepts (under-triage).
//
// Accepted levels are not written in a vignette: they are the union of the levels its
// cited sections map to, through the source's own mapping in vignettes/sources.yaml, so a
// vignette cannot be made to pass by editing its accepted set. Each vignette also names a
// preferred level: the level on the hub's scale that its first-cited section describes
// most closely (for a source level that maps to both 3a and 3b, 3b only where the section
// speaks of complex, repeated or intensive needs).
package corpus

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mash-hub/mash/services/rules/pack"
)

//go:embed vignettes/*.yaml
var files embed.FS

// Source is a public document vignettes cite.
type Source struct {
	Document  string `yaml:"document"`
	Publisher string `yaml:"publisher"`
	URL       string `yaml:"url"`
	// Levels maps the document's own level names to the hub's levels.
	Levels map[string][]string `yaml:"levels"`
}

// Citation is one source section a vignette is paraphrased from, with the document's own
// level for the case.
type Citation struct {
	Ref     string `yaml:"ref"`
	Section string `yaml:"section"`
	Level   string `yaml:"level"`
}

// Earlier is an earlier referral about the same child, days before the vignette's one.
type Earlier struct {
	DaysAgo  int      `yaml:"days_ago"`
	Concerns []string `yaml:"concerns"`
	Referrer string   `yaml:"referrer"`
}

// Vignette is one case of the corpus.
type Vignette struct {
	ID        string         `yaml:"id"`
	Summary   string         `yaml:"summary"`
	Sources   []Citation     `yaml:"sources"`
	Preferred string         `yaml:"preferred"`
	Facts     pack.TestFacts `yaml:"facts"`
	// Earlier referrals about the same child, which reach the rules as history.
	Earlier []Earlier `yaml:"earlier"`
	// Tags mark coverage: pre-birth, baby, 16-17, accumulation, exploitation,
	// disagreement, unknown-age.
	Tags []string `yaml:"tags"`

	// File is the vignette's file, for messages.
	File string `yaml:"-"`
	// Accept is the union of the cited sections' mapped levels, lowest first.
	Accept []pack.Level `yaml:"-"`
	// PreferredLevel is Preferred parsed.
	PreferredLevel pack.Level `yaml:"-"`
}

// Lowest is the lowest level any cited source accepts: deciding below it is under-triage.
func (v Vignette) Lowest() pack.Level { return v.Accept[0] }

// HasTag reports whether the vignette carries tag.
func (v Vignette) HasTag(tag string) bool { return slices.Contains(v.Tags, tag) }

// Corpus is the loaded, checked corpus.
type Corpus struct {
	Sources   map[string]Source
	Vignettes []Vignette
}

// Load reads and checks the embedded corpus.
func Load() (*Corpus, error) {
	c := &Corpus{}
	raw, err := files.ReadFile("vignettes/sources.yaml")
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	if err := strictUnmarshal(raw, &c.Sources); err != nil {
		return nil, fmt.Errorf("sources.yaml: %w", err)
	}
	for ref, s := range c.Sources {
		if s.Document == "" || s.Publisher == "" || !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") || len(s.Levels) == 0 {
			return nil, fmt.Errorf("sources.yaml: %s needs document, publisher, url and levels", ref)
		}
		for name, levels := range s.Levels {
			for _, l := range levels {
				if _, err := pack.ParseLevel(l); err != nil || l == "" {
					return nil, fmt.Errorf("sources.yaml: %s level %q maps to %q: not a level", ref, name, l)
				}
			}
		}
	}
	names, err := fs.Glob(files, "vignettes/*.yaml")
	if err != nil {
		return nil, err
	}
	seen := map[string]string{}
	for _, name := range names {
		if path.Base(name) == "sources.yaml" {
			continue
		}
		raw, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var vs []Vignette
		if err := strictUnmarshal(raw, &vs); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, v := range vs {
			v.File = path.Base(name)
			if prev, dup := seen[v.ID]; dup {
				return nil, fmt.Errorf("%s: vignette %q already in %s", v.File, v.ID, prev)
			}
			seen[v.ID] = v.File
			if err := c.check(&v); err != nil {
				return nil, fmt.Errorf("%s: vignette %q: %w", v.File, v.ID, err)
			}
			c.Vignettes = append(c.Vignettes, v)
		}
	}
	sort.Slice(c.Vignettes, func(i, j int) bool { return c.Vignettes[i].ID < c.Vignettes[j].ID })
	return c, nil
}

func (c *Corpus) check(v *Vignette) error {
	if v.ID == "" || strings.TrimSpace(v.Summary) == "" {
		return fmt.Errorf("id and summary are required")
	}
	if len(v.Sources) == 0 {
		return fmt.Errorf("cites no source")
	}
	accept := map[pack.Level]bool{}
	for _, cit := range v.Sources {
		src, ok := c.Sources[cit.Ref]
		if !ok {
			return fmt.Errorf("unknown source %q", cit.Ref)
		}
		if strings.TrimSpace(cit.Section) == "" {
			return fmt.Errorf("source %q: section is required", cit.Ref)
		}
		levels, ok := src.Levels[cit.Level]
		if !ok {
			return fmt.Errorf("source %q has no level %q", cit.Ref, cit.Level)
		}
		for _, l := range levels {
			pl, _ := pack.ParseLevel(l)
			accept[pl] = true
		}
	}
	for l := range accept {
		v.Accept = append(v.Accept, l)
	}
	slices.Sort(v.Accept)
	pl, err := pack.ParseLevel(v.Preferred)
	if err != nil || !accept[pl] {
		return fmt.Errorf("preferred level %q is not one its sources accept (%v)", v.Preferred, v.Accept)
	}
	v.PreferredLevel = pl
	if len(v.Facts.Concerns) == 0 {
		return fmt.Errorf("facts.concerns: a referral has at least one concern")
	}
	for _, cat := range append(slices.Clone(v.Facts.Concerns), earlierConcerns(v.Earlier)...) {
		if !slices.Contains(pack.ConcernCategories, cat) {
			return fmt.Errorf("%q is not a concern category", cat)
		}
	}
	last := 366
	for _, e := range v.Earlier {
		if e.DaysAgo < 1 || e.DaysAgo > 364 || e.DaysAgo >= last {
			return fmt.Errorf("earlier referrals must be 1-364 days ago, oldest first")
		}
		last = e.DaysAgo
		if len(e.Concerns) == 0 || !slices.Contains(pack.AgencyKinds, e.Referrer) {
			return fmt.Errorf("earlier referral %d days ago needs concerns and a referrer kind", e.DaysAgo)
		}
	}
	if k := v.Facts.Referrer.Kind; k != "" && !slices.Contains(pack.AgencyKinds, k) {
		return fmt.Errorf("referrer kind %q is not an agency kind", k)
	}
	return nil
}

func earlierConcerns(es []Earlier) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Concerns...)
	}
	return out
}

func strictUnmarshal(raw []byte, into any) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	return dec.Decode(into)
}
