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

	"mash/pkg/apierr"
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
	var vs []apierr.Violation
	walk(m.ProtoReflect(), "", &vs)
	return vs
}

// Invalid is Check as an error: nil when m is acceptable, else the InvalidArgument error
// listing every offending field.
func Invalid(m proto.Message) error {
	if vs := Check(m); len(vs) > 0 {
		return apierr.Invalid(vs)
	}
	return nil
}

func walk(m protoreflect.Message, prefix string, vs *[]apierr.Violation) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := fd.JSONName()
		if prefix != "" {
			path = prefix + "." + path
		}
		multiline := !identifier(fd)
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				key := k.String()
				if fd.MapKey().Kind() == protoreflect.StringKind {
					if p := Problem(key, false); p != "" {
						*vs = append(*vs, apierr.Violation{Field: path, Reason: "has a key that " + p})
						return true
					}
				}
				checkValue(fd.MapValue(), mv, fmt.Sprintf("%s[%q]", path, key), multiline, vs)
				return true
			})
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				checkValue(fd, l.Get(i), fmt.Sprintf("%s[%d]", path, i), multiline, vs)
			}
		default:
			checkValue(fd, v, path, multiline, vs)
		}
		return true
	})
}

func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string, multiline bool, vs *[]apierr.Violation) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if p := Problem(v.String(), multiline); p != "" {
			*vs = append(*vs, apierr.Violation{Field: path, Reason: p})
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		walk(v.Message(), path, vs)
	}
}

// identifier reports fields that hold an identifier or a token, never prose.
func identifier(fd protoreflect.FieldDescriptor) bool {
	name := string(fd.Name())
	return name == "id" || strings.HasSuffix(name, "_id") || strings.HasSuffix(name, "_ids") || name == "page_token"
}
