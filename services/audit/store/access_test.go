package store

import (
	"regexp"
	"strings"
	"testing"
)

// The access queries' predicate, built from the catalogue's subjects, is exactly the
// predicate of the partial indexes it must use: the planner matches them by their text.
func TestAccessCondIsTheIndexPredicate(t *testing.T) {
	src, err := migrationFS.ReadFile("migrations/2002_access_indexes.sql")
	if err != nil {
		t.Fatal(err)
	}
	want := accessOf("e")
	if !strings.Contains(want, "'mash.access.%'") || !strings.Contains(want, "'mash.audit.accessed'") {
		t.Fatalf("access predicate %s lost its subjects", want)
	}
	indexes := regexp.MustCompile(`(?s)CREATE INDEX (entries_access_\w+) ON [^;]*?WHERE ([^;]*);`).FindAllStringSubmatch(string(src), -1)
	if len(indexes) < 5 {
		t.Fatalf("found %d access indexes in 2002_access_indexes.sql, want 5", len(indexes))
	}
	for _, m := range indexes {
		if got := strings.ReplaceAll(m[2], "event_type", "e.event_type"); got != want {
			t.Errorf("index %s is partial on %s; the access queries select %s", m[1], got, want)
		}
	}
}
