package server

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/jsonfields"
	"github.com/mash-hub/mash/pkg/text"
)

// lenientCheck is a body route's Validator at work: on a body with values that cannot be
// read, it decodes every field it can, adds the path's values, and answers with the values
// that could not be read, then the text and the method's check of the rest, in one 400.
type lenientCheck struct {
	typ       protoreflect.MessageType
	bodyField protoreflect.FieldDescriptor // the field the body is, or nil when it is the whole request
	vars      []pathVar
	validator Validator
}

func newLenientCheck(in protoreflect.MessageDescriptor, body string, vars []pathVar, v Validator) (*lenientCheck, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(in.FullName())
	if err != nil {
		return nil, fmt.Errorf("validator for %s: %w", in.FullName(), err)
	}
	c := &lenientCheck{typ: mt, vars: vars, validator: v}
	if body != "*" {
		fd := in.Fields().ByName(protoreflect.Name(body))
		if fd == nil || fd.Message() == nil || fd.IsList() || fd.IsMap() {
			return nil, fmt.Errorf("validator for %s: body %q must name a message field", in.FullName(), body)
		}
		c.bodyField = fd
	}
	return c, nil
}

// check returns nil when the body decodes, or when its fault belongs to no one field (a
// syntax error): the gateway then reads it as it always does, and the method checks it.
// Otherwise it returns the one InvalidArgument error for the request. Fields are named as
// in the body: for a body that is one field of the request, from that field down.
func (c *lenientCheck) check(r *http.Request, body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	req := c.typ.New()
	target := req
	if c.bodyField != nil {
		target = req.Mutable(c.bodyField).Message()
	}
	decoded, err := jsonfields.Decode(body, target.Interface())
	if err == nil || len(decoded) == 0 {
		return nil
	}
	for _, v := range c.vars {
		setPathValue(req, v.field, r.PathValue(v.wildcard))
	}
	out := make([]apierr.Violation, 0, len(decoded))
	for _, v := range decoded {
		out = append(out, apierr.Violation{Field: v.Field, Reason: v.Reason})
	}
	return apierr.Invalid(mergeViolations(out, text.Check(target.Interface()), c.validator.check(req.Interface())))
}

// mergeViolations returns decoded, the fields of a body that could not be read, followed by
// each of more's violations that is not about one of those fields or a field inside one:
// such a field is absent from the request that was checked, so its "is required" would
// only repeat the problem already named.
func mergeViolations(decoded []apierr.Violation, more ...[]apierr.Violation) []apierr.Violation {
	covered := func(field string) bool {
		for _, d := range decoded {
			if field == d.Field || strings.HasPrefix(field, d.Field+".") || strings.HasPrefix(field, d.Field+"[") {
				return true
			}
		}
		return false
	}
	out := append([]apierr.Violation{}, decoded...)
	for _, vs := range more {
		for _, v := range vs {
			if !covered(v.Field) {
				out = append(out, v)
			}
		}
	}
	return out
}

// setPathValue sets the string field at path ("agency.id") of m to value, as the gateway
// sets a path variable: the path's value wins over the body's.
func setPathValue(m protoreflect.Message, path, value string) {
	if value == "" {
		return
	}
	parts := strings.Split(path, ".")
	for i, part := range parts {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(part))
		switch {
		case fd == nil || fd.IsList() || fd.IsMap():
			return
		case i < len(parts)-1:
			if fd.Message() == nil {
				return
			}
			m = m.Mutable(fd).Message()
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(value))
		}
	}
}
