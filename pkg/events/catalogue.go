package events

import (
	"slices"
	"strings"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// The event catalogue is generated from the (mash.catalogue.v1.event) options on the
// messages in proto/ (eventsv1.Catalogue, with one eventsv1.Subject... constant per
// subject). These helpers read it; nothing here declares a subject.

// Entries returns the catalogue entries whose subject matches subject: the entry itself,
// or the pattern it fills in (mash.notify.south-wales-police matches mash.notify.*).
func Entries(subject string) []eventsv1.CatalogueEntry {
	var out []eventsv1.CatalogueEntry
	for _, e := range eventsv1.Catalogue {
		if SubjectMatches(e.Subject, subject) {
			out = append(out, e)
		}
	}
	return out
}

// Published lists the subjects producer publishes on the bus (retired and audit-only
// entries left out), each once, in catalogue order: what its bus role must declare.
func Published(producer string) []string {
	var out []string
	for _, e := range eventsv1.Catalogue {
		if e.Producer == producer && !e.Retired && !e.TrailOnly && !slices.Contains(out, e.Subject) {
			out = append(out, e.Subject)
		}
	}
	return out
}

// Producers lists every producer the catalogue names, each once.
func Producers() []string {
	var out []string
	for _, e := range eventsv1.Catalogue {
		if !slices.Contains(out, e.Producer) {
			out = append(out, e.Producer)
		}
	}
	return out
}

// SubjectMatches reports whether subject is pattern, or fills in its "*" tokens; a ">"
// token at the end of pattern matches one token or more (NATS wildcards).
func SubjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		if tok == ">" && i == len(p)-1 {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) || s[i] == "" {
			return false
		}
	}
	return len(p) == len(s)
}

// Fill replaces the "*" tokens of a catalogue pattern with values, in order:
// Fill(eventsv1.SubjectNotifyAnyAck, "south-wales-police") is mash.notify.south-wales-police.ack.
func Fill(pattern string, values ...string) string {
	toks := strings.Split(pattern, ".")
	for i, tok := range toks {
		if tok == "*" && len(values) > 0 {
			toks[i], values = values[0], values[1:]
		}
	}
	return strings.Join(toks, ".")
}

// PatternPrefix is the part of pattern before its first "*" token: mash.notify. for
// mash.notify.*.
func PatternPrefix(pattern string) string {
	before, _, _ := strings.Cut(pattern, "*")
	return before
}
