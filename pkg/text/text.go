// Package text is the one sanitiser of free text at the API boundary. Postgres refuses a NUL
// in text (and invalid UTF-8 anywhere), so such input must be refused as the caller's
// mistake, naming the field, before it reaches a store and surfaces as an internal error;
// and text that has to be cut is cut at a character boundary, never inside one.
//
// Invariants: a string that passes Check is valid UTF-8 with no control character other
// than tab, line feed and carriage return (and those only in fields that may hold several
// lines); Truncate never returns invalid UTF-8 from valid input.
package text

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mash-hub/mash/pkg/apierr"
)

// Problem says what is wrong with s as free text, or "" when nothing is. multiline allows
// tab, line feed and carriage return, which free text written by people carries; a
// single-line value (an identifier, a header) refuses them too.
func Problem(s string, multiline bool) string {
	if !utf8.ValidString(s) {
		return "must be UTF-8 text"
	}
	for _, r := range s {
		if r == 0 {
			return "must not contain a NUL character"
		}
		if isControl(r, multiline) {
			return fmt.Sprintf("must not contain the control character U+%04X", r)
		}
	}
	return ""
}

// isControl reports the C0 and C1 control characters and DEL; with multiline, tab, line
// feed and carriage return are text.
func isControl(r rune, multiline bool) bool {
	if multiline && (r == '\t' || r == '\n' || r == '\r') {
		return false
	}
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

// Truncate returns s cut to at most max bytes, ending on a character boundary, so a cut
// never leaves half a character (invalid UTF-8) behind.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	cut := max
	// Step back over continuation bytes to the start of the character the cut falls in;
	// a UTF-8 character is at most 4 bytes, so this looks back at most 3.
	for cut > 0 && cut > max-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Check walks every string of m (nested messages, lists and maps included) and returns a
// violation for each that is not acceptable text, named by its path in the contract's JSON
// names ("referral.child.firstName", "participants[2]"), as integrators see them. A field
// holding an identifier (named id, or ending in _id or _ids, or a page token) is
// single-line; every other string may hold several lines.
func Check(m proto.Message) []apierr.Violation {
	if m == nil {
		return nil
	}
	w := walker{}
	w.message(m.ProtoReflect())
	return w.vs
}

// Invalid is Check as an error: nil when m is acceptable, else the InvalidArgument error
// listing every offending field.
func Invalid(m proto.Message) error {
	if vs := Check(m); len(vs) > 0 {
		return apierr.Invalid(vs)
	}
	return nil
}

// walker visits every string of a request. It runs on every call, so the path of a field
// is kept as a stack of steps and spelt out only for a violation.
type walker struct {
	path []step
	vs   []apierr.Violation
}

// step is one step of a path: a field, then perhaps a list index or a map key.
type step struct {
	field string
	index int    // -1 unless a list element
	key   string // set for a map entry
	isKey bool
}

func (w *walker) message(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		multiline := !identifier(fd)
		switch {
		case fd.IsMap():
			stringKeys := fd.MapKey().Kind() == protoreflect.StringKind
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				w.path = append(w.path, step{field: fd.JSONName(), index: -1, key: k.String(), isKey: true})
				if stringKeys {
					if p := Problem(k.String(), false); p != "" {
						w.add("has a key that " + p)
						w.path = w.path[:len(w.path)-1]
						return true
					}
				}
				w.value(fd.MapValue(), mv, multiline)
				w.path = w.path[:len(w.path)-1]
				return true
			})
		case fd.IsList():
			if k := fd.Kind(); k != protoreflect.StringKind && k != protoreflect.MessageKind && k != protoreflect.GroupKind {
				return true
			}
			l := v.List()
			for i := range l.Len() {
				w.path = append(w.path, step{field: fd.JSONName(), index: i})
				w.value(fd, l.Get(i), multiline)
				w.path = w.path[:len(w.path)-1]
			}
		default:
			w.path = append(w.path, step{field: fd.JSONName(), index: -1})
			w.value(fd, v, multiline)
			w.path = w.path[:len(w.path)-1]
		}
		return true
	})
}

func (w *walker) value(fd protoreflect.FieldDescriptor, v protoreflect.Value, multiline bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if p := Problem(v.String(), multiline); p != "" {
			w.add(p)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		w.message(v.Message())
	}
}

func (w *walker) add(reason string) {
	var b strings.Builder
	for i, s := range w.path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.field)
		switch {
		case s.isKey:
			fmt.Fprintf(&b, "[%q]", s.key)
		case s.index >= 0:
			fmt.Fprintf(&b, "[%d]", s.index)
		}
	}
	w.vs = append(w.vs, apierr.Violation{Field: b.String(), Reason: reason})
}

// identifier reports fields that hold an identifier or a token, never prose.
func identifier(fd protoreflect.FieldDescriptor) bool {
	name := string(fd.Name())
	return name == "id" || strings.HasSuffix(name, "_id") || strings.HasSuffix(name, "_ids") || name == "page_token"
}
