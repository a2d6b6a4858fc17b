package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// notSubjects are mash.-prefixed names in code and SQL that are not subjects: advisory lock
// keys, whose values must stay as they are while two versions of a service may run side by
// side, and the name of a document format.
var notSubjects = map[string]string{
	"mash.subject-access/v1": "format of a subject access export",
	"mash.audit.sequencer":   "advisory lock of the audit sequencer",
	"mash.triage.child.":     "advisory lock key prefix of a child's cases in triage",
	"mash.notify.":           "advisory lock key prefix of a referral's notifications (SQL)",
	"mash.child.":            "advisory lock key prefix of the child index in rules",
	"mash.migrate.":          "advisory lock key prefix of a schema's migrations",
}

// subjectLike is a literal (or a quoted SQL string) that names something under mash.: a
// subject, a filter, a prefix or a SQL LIKE pattern.
var subjectLike = regexp.MustCompile(`^mash\.[a-z*>%]`)

// sqlQuoted finds 'mash....' strings in SQL, in migrations and in Go string literals.
var sqlQuoted = regexp.MustCompile(`'(mash\.[^']*)'`)

// TestSubjectsComeFromTheCatalogue scans every Go file of the module outside generated code
// and tests (with go/ast: string literals only, not comments) and every SQL migration for
// names under mash., and fails for each under an event area (mash.case., mash.notify., ...)
// that the event catalogue does not declare: a literal subject in a migration must be a
// catalogue subject, a filter (mash.>) or a LIKE pattern (mash.access.%) must match at
// least one, and anything else must be one of the few advisory lock keys above. Go code
// takes subjects from eventsv1.Subject... constants: a literal equal to a catalogue subject
// fails there.
func TestSubjectsComeFromTheCatalogue(t *testing.T) {
	root := filepath.Join("..", "..")
	scanned, names := 0, 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(path, ".sql"):
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			scanned++
			for _, m := range sqlQuoted.FindAllStringSubmatch(string(src), -1) {
				names++
				checkSubject(t, path, m[1], false)
			}
		case strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go"):
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
			if err != nil {
				return err
			}
			if ast.IsGenerated(f) {
				return nil
			}
			scanned++
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				where := fset.Position(lit.Pos()).String()
				if subjectLike.MatchString(s) {
					names++
					checkSubject(t, where, s, true)
				}
				for _, m := range sqlQuoted.FindAllStringSubmatch(s, -1) {
					names++
					checkSubject(t, where, m[1], true)
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 100 || names < 20 {
		t.Fatalf("scanned only %d files and %d names under mash.; the walk missed the module", scanned, names)
	}
}

// checkSubject fails unless s is a catalogue subject, a filter or LIKE pattern matching
// one, or a known lock key. In Go code (inGo) a catalogue subject itself fails too: code
// names it by its eventsv1.Subject constant (into SQL as well, as a parameter or spliced
// in), so the catalogue is the one place it is spelt; migrations, frozen once applied,
// keep their literals.
func checkSubject(t *testing.T, where, s string, inGo bool) {
	t.Helper()
	if _, ok := notSubjects[s]; ok {
		return
	}
	if !strings.ContainsAny(s, "*>%") && !areas()[area(s)] {
		// Not under an event area at all (mash.event_id, a span attribute): no subject.
		return
	}
	if strings.ContainsAny(s, ">%") {
		// A filter or a LIKE pattern: it must select at least one catalogue subject.
		pattern := strings.ReplaceAll(s, "%", ">")
		for _, e := range eventsv1.Catalogue {
			if events.SubjectMatches(pattern, strings.ReplaceAll(e.Subject, "*", "x")) {
				return
			}
		}
		t.Errorf("%s: %q selects no subject of the event catalogue", where, s)
		return
	}
	for _, e := range eventsv1.Catalogue {
		if e.Subject == s {
			if inGo {
				t.Errorf("%s: %q is spelt out; use its eventsv1.Subject constant from the event catalogue", where, s)
			}
			return
		}
	}
	t.Errorf("%s: %q is not a subject of the event catalogue: declare it on its message in proto/ "+
		"(option (mash.catalogue.v1.event)), run scripts/proto and use its eventsv1.Subject constant", where, s)
}

// areas are the second tokens of the catalogue's subjects (referral, case, notify, ...).
func areas() map[string]bool {
	out := map[string]bool{}
	for _, e := range eventsv1.Catalogue {
		out[area(e.Subject)] = true
	}
	return out
}

// area is the token after mash. in s.
func area(s string) string {
	a, _, _ := strings.Cut(strings.TrimPrefix(s, "mash."), ".")
	return a
}

// TestBusRolesMatchTheCatalogue: what each service's bus.go declares it publishes is
// exactly what the catalogue says it produces, so a new event cannot be published without
// being declared on its message, nor declared without its producer being allowed to publish
// it.
func TestBusRolesMatchTheCatalogue(t *testing.T) {
	roles := allBusRoles()
	if len(roles) < 5 {
		t.Fatalf("only %d bus roles; the test would prove little", len(roles))
	}
	var services []string
	for _, r := range roles {
		services = append(services, r.Service)
		want := events.Published(r.Service)
		got := slices.Clone(r.Publishes)
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s's bus.go publishes %v; the event catalogue says it produces %v", r.Service, got, want)
		}
	}
	for _, p := range events.Producers() {
		if p != "agency" && !slices.Contains(services, p) {
			t.Errorf("the event catalogue names producer %q, which is no service with a bus role", p)
		}
	}
}

// TestCatalogueMessagesExist: every catalogue entry names a message the binary knows, so a
// consumer registering a typed handler for a subject gets the type its producer sends.
func TestCatalogueMessagesExist(t *testing.T) {
	for _, e := range eventsv1.Catalogue {
		if _, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(e.Message)); err != nil {
			t.Errorf("%s carries %s: %v", e.Subject, e.Message, err)
		}
		if !e.Channel && !strings.HasPrefix(e.Message, "mash.events.v1.") {
			t.Errorf("%s carries %s: envelope events are declared in mash.events.v1", e.Subject, e.Message)
		}
		if err := events.ValidSubject(events.Fill(e.Subject, "x", "x")); err != nil {
			t.Errorf("%s: %v", e.Subject, err)
		}
	}
}
