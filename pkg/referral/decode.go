package referral

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mash-hub/mash/pkg/jsonfields"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// MaxBodyBytes is the largest request body Decode accepts. A real referral
// is a few kilobytes; every text field at its limit in plain ASCII (30
// summaries of 4,000 characters, a 20,000-character narrative, ...) still
// fits with room for JSON syntax. Anything larger is a mistake or an attack
// and is refused before any parsing work. HTTP handlers should also cap the
// read itself (http.MaxBytesReader with MaxBodyBytes+1) so an oversized body
// is never buffered.
const MaxBodyBytes = 256 << 10

// bodyField is the Field of violations about the request body as a whole.
const bodyField = "body"

// unmarshalOptions rejects unknown fields (the default, stated for clarity):
// a misspelt field name must fail loudly rather than silently drop, say, a
// child's NHS number.
var unmarshalOptions = protojson.UnmarshalOptions{DiscardUnknown: false}

// Decode parses a POST /v1/referrals body (a ReferralSubmission in the
// protobuf JSON mapping). On failure it returns nil and exactly one Violation
// on field "body" whose reason says what is wrong and where (line and
// column), without repeating any value from the body; the only thing echoed
// is the name of an unknown or duplicate field, and only when it looks like
// an identifier. A decoded submission still needs Validate.
func Decode(body []byte) (*intakev1.ReferralSubmission, []Violation) {
	if len(body) > MaxBodyBytes {
		return nil, bodyViolation("must be at most " + strconv.Itoa(MaxBodyBytes) + " bytes")
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, bodyViolation("is required: send a ReferralSubmission as a JSON object")
	}
	if trimmed[0] != '{' {
		return nil, bodyViolation("must be a JSON object (a ReferralSubmission)")
	}
	sub := &intakev1.ReferralSubmission{}
	if err := unmarshalOptions.Unmarshal(body, sub); err != nil {
		return nil, bodyViolation(describeDecodeError(err.Error()))
	}
	return sub, nil
}

// DecodeLenient is Decode that does not stop at the first bad value: when the body is a JSON
// object, every field that cannot be read (an unknown enum value, a number as text, a
// misspelt name) is named by its path ("concerns[0].category") and the fields that could be
// read are returned in sub, so the caller can validate them too and report everything at
// once. A body that is not a JSON object at all, or whose fault belongs to no one field (a
// syntax error, a duplicate name), gets Decode's answer: nil and one violation on "body".
// Reasons never repeat a value from the body.
func DecodeLenient(body []byte) (*intakev1.ReferralSubmission, []Violation) {
	sub, vs := Decode(body)
	if len(vs) == 0 || len(body) > MaxBodyBytes || !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return sub, vs
	}
	partial := &intakev1.ReferralSubmission{}
	fvs, err := jsonfields.Decode(body, partial)
	if err == nil || len(fvs) == 0 {
		return nil, vs
	}
	out := make([]Violation, len(fvs))
	for i, v := range fvs {
		out[i] = Violation{Field: v.Field, Reason: v.Reason}
	}
	return partial, out
}

func bodyViolation(reason string) []Violation {
	return []Violation{{Field: bodyField, Reason: reason}}
}

var (
	// protojson prefixes errors with "proto:" and, deliberately to stop
	// string matching, sometimes a non-breaking space instead of a space.
	protoPrefixPattern    = regexp.MustCompile(`^proto:[\s\x{00a0}]*`)
	syntaxErrorPattern    = regexp.MustCompile(`^syntax error \(line (\d+):(\d+)\): (.*)$`)
	positionedPattern     = regexp.MustCompile(`^\(line (\d+):(\d+)\): (.*)$`)
	invalidValuePattern   = regexp.MustCompile(`^invalid value for (\w+) field (\w+):`)
	fieldNamePattern      = regexp.MustCompile(`^(unknown|duplicate) field "([A-Za-z][A-Za-z0-9_]{0,63})"$`)
	anyFieldNamePattern   = regexp.MustCompile(`^(unknown|duplicate) field `)
	timestampValuePattern = regexp.MustCompile(`^(invalid google\.protobuf\.Timestamp value|google\.protobuf\.Timestamp value out of range)`)
)

// describeDecodeError turns a protojson error into a reason. protojson's
// messages often end with the offending token (a string value, a number),
// which may be personal data, so the message is never passed through: it is
// matched against the shapes protojson produces and rewritten, keeping the
// field name and position that make it specific. Unrecognised shapes get a
// generic reason with the position only.
func describeDecodeError(msg string) string {
	msg = protoPrefixPattern.ReplaceAllString(msg, "")
	if m := syntaxErrorPattern.FindStringSubmatch(msg); m != nil {
		return describeSyntaxError(m[3], at(m[1], m[2]))
	}
	m := positionedPattern.FindStringSubmatch(msg)
	if m == nil {
		switch {
		case strings.HasPrefix(msg, "unexpected EOF"):
			// Also what protojson reports for an unpaired \uD800-style
			// surrogate escape.
			return "is not complete JSON: it ends early or contains an invalid \\u escape"
		case strings.HasPrefix(msg, "exceeded max recursion depth"):
			return "is nested too deeply"
		}
		return "is not a valid ReferralSubmission JSON object"
	}
	where, detail := at(m[1], m[2]), m[3]
	if f := fieldNamePattern.FindStringSubmatch(detail); f != nil {
		if f[1] == "unknown" {
			return "has unknown field " + strconv.Quote(f[2]) + where + "; field names are lowerCamelCase as in the published contract"
		}
		return "has field " + strconv.Quote(f[2]) + " more than once" + where
	}
	if f := anyFieldNamePattern.FindStringSubmatch(detail); f != nil {
		// The name is not identifier-like (too long, odd characters): do not
		// repeat it, it may be data pasted into the wrong place.
		if f[1] == "unknown" {
			return "has an unknown field" + where + "; field names are lowerCamelCase as in the published contract"
		}
		return "has a duplicate field" + where
	}
	if f := invalidValuePattern.FindStringSubmatch(detail); f != nil {
		return "has an invalid value for field " + strconv.Quote(f[2]) + where + ": expected " + expectedKind(f[1])
	}
	if timestampValuePattern.MatchString(detail) {
		return "has an invalid timestamp" + where + ": expected RFC 3339 such as 2026-11-21T22:10:00Z, between years 0001 and 9999"
	}
	return "is not a valid ReferralSubmission" + where
}

// describeSyntaxError rewrites the detail of a JSON syntax error.
func describeSyntaxError(detail, where string) string {
	switch {
	case strings.HasPrefix(detail, "invalid UTF-8"):
		return "must be valid UTF-8: a string" + where + " contains an invalid byte sequence"
	case strings.HasPrefix(detail, "invalid character") && strings.HasSuffix(detail, "in string"):
		return "is not valid JSON: a string" + where + " contains an unescaped control character"
	case strings.HasPrefix(detail, "invalid escape code"):
		return "is not valid JSON: a string" + where + " contains an invalid escape sequence"
	case strings.Contains(detail, `missing ":" after field name`):
		return `is not valid JSON: missing ":" after a field name` + where
	case strings.HasPrefix(detail, "unexpected token"):
		return "is not valid JSON or has a value of the wrong type" + where + " (e.g. text where an object or list is expected)"
	case strings.HasPrefix(detail, "invalid value"):
		return "is not valid JSON: unexpected text" + where + " (an unquoted string, a misspelt true, false or null, or data after the object)"
	}
	return "is not valid JSON" + where
}

// at renders a protojson position for a reason.
func at(line, column string) string {
	return " at line " + line + ", column " + column
}

// expectedKind says what protojson accepts for a protobuf kind.
func expectedKind(kind string) string {
	switch kind {
	case "string":
		return "a JSON string"
	case "bool":
		return "true or false"
	case "enum":
		return "one of the value names in the published contract, in upper case"
	case "int32", "sint32", "sfixed32":
		return "a whole number between -2147483648 and 2147483647"
	case "int64", "sint64", "sfixed64", "uint32", "fixed32", "uint64", "fixed64":
		return "a whole number in range"
	case "message":
		return "a JSON object"
	}
	return "a value of type " + kind
}
