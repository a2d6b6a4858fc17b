// Package jsonfields decodes a JSON object into a protobuf message field by field, so a body
// with several bad values is answered with every one of them named, not only the first
// protojson stops at, and the fields that did decode can still be validated.
//
// Invariants: a body protojson accepts decodes exactly as protojson decodes it (the strict
// decoder runs first); reasons never repeat a value from the body, which may be personal
// data; a field name from the body is echoed only when it looks like an identifier.
package jsonfields

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Violation is one field that could not be decoded. Field is its path in the body's own
// names: "child.sex", "concerns[1].observedAt".
type Violation struct {
	Field  string
	Reason string
}

// strict rejects unknown fields, as every mash API does: a misspelt name must fail loudly
// rather than silently drop a value.
var strict = protojson.UnmarshalOptions{}

// Decode decodes body into m. When protojson accepts the body it returns nil. Otherwise it
// returns the strict decoder's error and, when the body is a JSON object, decodes every
// field it can into m (reset first) and names each one it cannot. A nil violation list
// with an error means no single field could be blamed (a syntax error, a duplicate key):
// the caller reports the error against the body as a whole.
func Decode(body []byte, m proto.Message) ([]Violation, error) {
	err := strict.Unmarshal(body, m)
	if err == nil {
		return nil, nil
	}
	proto.Reset(m)
	if !utf8.Valid(body) {
		return nil, err // JSON decoding would mend the bytes; protojson's answer is the precise one
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return nil, err
	}
	var vs []Violation
	decodeObject(obj, m.ProtoReflect(), "", &vs)
	return vs, err
}

// identifier is what a field name from the body must look like to be repeated.
var identifier = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

func decodeObject(obj map[string]json.RawMessage, m protoreflect.Message, prefix string, vs *[]Violation) {
	fields := m.Descriptor().Fields()
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	// Violations in the contract's field order, then unknown names, so answers are stable.
	order := func(k string) int {
		if fd := lookup(fields, k); fd != nil {
			return fd.Index()
		}
		return fields.Len()
	}
	slices.SortStableFunc(keys, func(a, b string) int {
		if d := order(a) - order(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		raw := obj[k]
		fd := lookup(fields, k)
		if fd == nil {
			if identifier.MatchString(k) {
				*vs = append(*vs, Violation{Field: prefix + k, Reason: "is not a field of this request; field names are lowerCamelCase as in the published contract"})
			} else {
				*vs = append(*vs, Violation{Field: strings.TrimSuffix(prefix, ".") + orBody(prefix), Reason: "has a field whose name is not in the published contract"})
			}
			continue
		}
		path := prefix + fd.JSONName()
		switch {
		case fd.IsList():
			decodeList(raw, m, fd, path, vs)
		case fd.Message() != nil && !fd.IsMap() && !wellKnown(fd.Message()) && isObject(raw):
			var inner map[string]json.RawMessage
			if json.Unmarshal(raw, &inner) != nil {
				*vs = append(*vs, Violation{Field: path, Reason: Reason(fd)})
				continue
			}
			decodeObject(inner, m.Mutable(fd).Message(), path+".", vs)
		default:
			decodeField(raw, m, fd, path, vs)
		}
	}
}

// decodeList decodes a repeated field element by element, so a bad element is named by its
// index and the others are kept.
func decodeList(raw json.RawMessage, m protoreflect.Message, fd protoreflect.FieldDescriptor, path string, vs *[]Violation) {
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		decodeField(raw, m, fd, path, vs) // null, or not a list: protojson's answer for the whole field
		return
	}
	list := m.Mutable(fd).List()
	for i, e := range elems {
		at := path + "[" + strconv.Itoa(i) + "]"
		if fd.Message() != nil && !wellKnown(fd.Message()) && isObject(e) {
			var inner map[string]json.RawMessage
			if json.Unmarshal(e, &inner) == nil {
				el := list.NewElement()
				decodeObject(inner, el.Message(), at+".", vs)
				list.Append(el)
				continue
			}
		}
		tmp := m.New()
		if err := unmarshalField(tmp, fd, []byte("["+string(e)+"]")); err != nil || tmp.Get(fd).List().Len() != 1 {
			*vs = append(*vs, Violation{Field: at, Reason: Reason(fd)})
			continue
		}
		list.Append(tmp.Get(fd).List().Get(0))
	}
}

// decodeField decodes one field on its own, through protojson, and copies it into m.
func decodeField(raw json.RawMessage, m protoreflect.Message, fd protoreflect.FieldDescriptor, path string, vs *[]Violation) {
	tmp := m.New()
	if err := unmarshalField(tmp, fd, raw); err != nil {
		*vs = append(*vs, Violation{Field: path, Reason: Reason(fd)})
		return
	}
	if tmp.Has(fd) {
		m.Set(fd, tmp.Get(fd))
	}
}

func unmarshalField(tmp protoreflect.Message, fd protoreflect.FieldDescriptor, raw []byte) error {
	var b bytes.Buffer
	b.WriteString(`{`)
	b.WriteString(strconv.Quote(fd.JSONName()))
	b.WriteString(`:`)
	b.Write(raw)
	b.WriteString(`}`)
	return strict.Unmarshal(b.Bytes(), tmp.Interface())
}

func lookup(fields protoreflect.FieldDescriptors, name string) protoreflect.FieldDescriptor {
	if fd := fields.ByJSONName(name); fd != nil {
		return fd
	}
	return fields.ByTextName(name)
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func orBody(prefix string) string {
	if prefix == "" {
		return "body"
	}
	return ""
}

func wellKnown(md protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(md.FullName()), "google.protobuf.")
}

// Reason says what a field takes, in the contract's terms, without the value it got:
// "must be one of MALE, FEMALE, ...".
func Reason(fd protoreflect.FieldDescriptor) string {
	what := kindText(fd)
	if fd.IsList() {
		return "must be a JSON list of " + what
	}
	return "must be " + what
}

func kindText(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "a JSON object"
	}
	switch fd.Kind() {
	case protoreflect.EnumKind:
		var names []string
		vals := fd.Enum().Values()
		for i := range vals.Len() {
			if n := string(vals.Get(i).Name()); vals.Get(i).Number() != 0 || !strings.HasSuffix(n, "UNSPECIFIED") {
				names = append(names, n)
			}
		}
		return "one of " + strings.Join(names, ", ")
	case protoreflect.BoolKind:
		return "true or false"
	case protoreflect.StringKind:
		return "a JSON string"
	case protoreflect.BytesKind:
		return "base64 text"
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return "a whole number between -2147483648 and 2147483647"
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Int64Kind, protoreflect.Sint64Kind,
		protoreflect.Sfixed64Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return "a whole number in range"
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "a number"
	case protoreflect.MessageKind, protoreflect.GroupKind:
		switch fd.Message().FullName() {
		case "google.protobuf.Timestamp":
			return "an RFC 3339 time such as 2026-11-21T22:10:00Z"
		case "google.protobuf.Duration":
			return "a duration in seconds such as \"3600s\""
		}
		return "a JSON object"
	}
	return fmt.Sprintf("a value of type %s", fd.Kind())
}
