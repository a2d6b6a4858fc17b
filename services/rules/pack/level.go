package pack

import (
	"fmt"
	"strings"
)

// Level is a level of need in the framework (1 Universal, 2 Universal Plus,
// 3a Early Intervention, 3b Intensive Intervention, 4 Remedial). The levels
// are fixed by the framework, not by a pack, because the service stores and
// reports them; a pack can only rename them for display. The numeric order of
// the constants is the order of need, so levels compare with < and >.
type Level uint8

// The levels in ascending order of need. LevelNone is the zero value and
// means "no level" (for example no previous decision in a child's history);
// it is never the outcome of an evaluation.
const (
	LevelNone Level = iota
	Level1
	Level2
	Level3a
	Level3b
	Level4
)

// Levels lists the valid levels in ascending order of need.
var Levels = []Level{Level1, Level2, Level3a, Level3b, Level4}

var levelNames = [...]string{LevelNone: "", Level1: "1", Level2: "2", Level3a: "3a", Level3b: "3b", Level4: "4"}

// ParseLevel parses the pack spelling of a level ("1", "2", "3a", "3b", "4").
// Upper-case "3A"/"3B" are accepted because people type them; anything else
// is an error rather than a guess.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "1":
		return Level1, nil
	case "2":
		return Level2, nil
	case "3a", "3A":
		return Level3a, nil
	case "3b", "3B":
		return Level3b, nil
	case "4":
		return Level4, nil
	}
	return LevelNone, fmt.Errorf("unknown level %q (want one of 1, 2, 3a, 3b, 4)", s)
}

// String returns the pack spelling of the level, or "" for LevelNone (which
// is also what rules see as history.previous_level when there is none).
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// Valid reports whether l is one of the five framework levels.
func (l Level) Valid() bool { return l >= Level1 && l <= Level4 }

// RAG is an urgency rating. Its zero value is RAGNone, and the constants are
// ordered by urgency so the most urgent of two ratings is the larger.
type RAG uint8

// RAG ratings in ascending order of urgency.
const (
	RAGNone RAG = iota
	RAGGreen
	RAGAmber
	RAGRed
)

var ragNames = [...]string{RAGNone: "none", RAGGreen: "green", RAGAmber: "amber", RAGRed: "red"}

// ParseRAG parses "none", "green", "amber" or "red" (any case).
func ParseRAG(s string) (RAG, error) {
	for i, n := range ragNames {
		if strings.EqualFold(s, n) {
			return RAG(i), nil
		}
	}
	return RAGNone, fmt.Errorf("unknown RAG %q (want red, amber, green or none)", s)
}

// String returns the lower-case name of the rating.
func (r RAG) String() string {
	if int(r) < len(ragNames) {
		return ragNames[r]
	}
	return fmt.Sprintf("RAG(%d)", uint8(r))
}

// Valid reports whether r is one of the four ratings.
func (r RAG) Valid() bool { return r <= RAGRed }
