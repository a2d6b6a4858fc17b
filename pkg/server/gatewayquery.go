package server

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/jsonfields"
)

// queryRules is how the query of one request type is read beyond its field names
// (GatewayService.Query and StrictQuery).
type queryRules struct {
	// params by parameter name, each Field the proto name of a field of the request.
	params map[string]QueryParam
	strict bool
}

// queryRulesByType holds queryRules by request type (protoreflect.FullName). The runtime
// has one query parser for the whole process, so the rules travel with the type, not the
// mux; every server of a process registers the same rules for a type.
var queryRulesByType sync.Map

// setQueryRules records the rules for the request type in of an annotated method: the
// service's parameters that set one of its fields, and whether it is strict.
func setQueryRules(in protoreflect.MessageDescriptor, params map[string]QueryParam, strict bool) {
	r := queryRules{strict: strict}
	for name, p := range params {
		fd, _ := fieldAt(in, p.Field)
		if fd == nil {
			continue // a parameter of the service's other routes
		}
		if r.params == nil {
			r.params = map[string]QueryParam{}
		}
		p.Field = string(fd.Name())
		r.params[name] = p
	}
	queryRulesByType.Store(in.FullName(), r)
}

// queryParser is the gateway's query parser. It reads each parameter by the field's proto
// or JSON name (or a QueryParam's name), treats an empty value as absent, takes an enum by
// its name in any case, with or without the prefix its values share (red, RED or RAG_RED),
// a list of enums also as one comma-separated value, and a time also as a date
// (2026-11-01, midnight UTC). It names every parameter it cannot read, by the name the
// caller used, and for strict requests every parameter that names nothing.
type queryParser struct{}

// queryField is what the query gives for one field.
type queryField struct {
	name   string // for errors: the parameter's name, or the field's JSON path
	path   string // the field's JSON path, as the default parser takes it
	fd     protoreflect.FieldDescriptor
	values []string
}

func (queryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	desc := msg.ProtoReflect().Descriptor()
	var rules queryRules
	if v, ok := queryRulesByType.Load(desc.FullName()); ok {
		rules = v.(queryRules)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var fields []*queryField
	var later violationsError // refused names and values, after the fields' own problems
	for _, k := range keys {
		vals := slices.DeleteFunc(slices.Clone(values[k]), func(v string) bool { return strings.TrimSpace(v) == "" })
		if len(vals) == 0 {
			continue
		}
		key, name := k, ""
		if p, ok := rules.params[k]; ok {
			key, name = p.Field, k
			if p.Values != nil {
				mapped := make([]string, len(vals))
				for i, v := range vals {
					if mapped[i], ok = p.Values[v]; !ok {
						break
					}
				}
				if !ok {
					later = append(later, apierr.Violation{Field: k, Reason: p.Reason})
					continue
				}
				vals = mapped
			}
		}
		fd, path := fieldAt(desc, key)
		if fd == nil {
			if rules.strict {
				later = append(later, apierr.Violation{Field: k, Reason: "is not a parameter of this call"})
			}
			continue
		}
		if name == "" {
			name = path
		}
		i := slices.IndexFunc(fields, func(f *queryField) bool { return f.path == path })
		if i < 0 {
			fields = append(fields, &queryField{name: name, path: path, fd: fd})
			i = len(fields) - 1
		}
		fields[i].values = append(fields[i].values, vals...)
	}
	var def runtime.DefaultQueryParser
	var vs violationsError
	out := url.Values{}
	for _, f := range fields {
		vals, ok := normaliseQuery(f.fd, f.values)
		if ok {
			ok = def.Parse(msg.ProtoReflect().New().Interface(), url.Values{f.path: vals}, filter) == nil
		}
		if !ok {
			reason := jsonfields.Reason(f.fd)
			if f.fd.IsList() {
				reason = strings.Replace(reason, "must be a JSON list of ", "each must be ", 1)
			}
			vs = append(vs, apierr.Violation{Field: f.name, Reason: reason})
			continue
		}
		out[f.path] = vals
	}
	if vs = append(vs, later...); len(vs) > 0 {
		return vs
	}
	return def.Parse(msg, out, filter)
}

// ReadQuery fills m from r's query as the gateway reads its routes' queries (see
// queryParser, and GatewayService.Query for m's type), for a route served by hand; what
// cannot be read is an InvalidArgument naming every parameter concerned.
func ReadQuery(r *http.Request, m proto.Message) error {
	if err := (queryParser{}).Parse(m, r.URL.Query(), utilities.NewDoubleArray(nil)); err != nil {
		return gatewayError(status.Error(codes.InvalidArgument, err.Error()))
	}
	return nil
}

// fieldAt finds the field a parameter names ("page_size", "pageSize", or a path through
// singular message fields, "a.b"), and returns it with its JSON path.
func fieldAt(desc protoreflect.MessageDescriptor, key string) (protoreflect.FieldDescriptor, string) {
	var fd protoreflect.FieldDescriptor
	var path []string
	for _, part := range strings.Split(key, ".") {
		if desc == nil || (fd != nil && fd.IsList()) {
			return nil, ""
		}
		if fd = desc.Fields().ByTextName(part); fd == nil {
			if fd = desc.Fields().ByJSONName(part); fd == nil {
				return nil, ""
			}
		}
		path = append(path, fd.JSONName())
		desc = fd.Message()
	}
	return fd, strings.Join(path, ".")
}

// normaliseQuery turns a field's query values into what the default parser reads; false
// when one cannot be.
func normaliseQuery(fd protoreflect.FieldDescriptor, values []string) ([]string, bool) {
	switch {
	case fd.Kind() == protoreflect.EnumKind:
		if fd.IsList() {
			var split []string
			for _, v := range values {
				for part := range strings.SplitSeq(v, ",") {
					if part = strings.TrimSpace(part); part != "" {
						split = append(split, part)
					}
				}
			}
			values = split
		}
		out := make([]string, len(values))
		for i, v := range values {
			ev := enumValue(fd.Enum(), strings.TrimSpace(v))
			if ev == nil || ev.Number() == 0 {
				return nil, false
			}
			out[i] = string(ev.Name())
		}
		return out, true
	case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Timestamp":
		out := make([]string, len(values))
		for i, v := range values {
			out[i] = strings.TrimSpace(v)
			if d, err := time.Parse(time.DateOnly, out[i]); err == nil {
				out[i] = d.Format(time.RFC3339)
			}
		}
		return out, true
	}
	return values, true
}

// enumValue finds an enum value by its name or number, or by its name in another case or
// without the prefix the enum's values share (RED for RAG_RED, pending for
// DIRECTORY_CHANGE_PENDING).
func enumValue(ed protoreflect.EnumDescriptor, v string) protoreflect.EnumValueDescriptor {
	vals := ed.Values()
	up := strings.ToUpper(v)
	for _, name := range []string{v, up, enumPrefix(ed) + up} {
		if ev := vals.ByName(protoreflect.Name(name)); ev != nil {
			return ev
		}
	}
	if n, err := strconv.ParseInt(v, 10, 32); err == nil {
		return vals.ByNumber(protoreflect.EnumNumber(n))
	}
	return nil
}

// enumPrefix is the prefix, up to an underscore, that the names of an enum's values other
// than its zero value share ("RAG_" for RAG_RED, RAG_AMBER, ...), or "".
func enumPrefix(ed protoreflect.EnumDescriptor) string {
	var prefix string
	n := 0
	for i := range ed.Values().Len() {
		ev := ed.Values().Get(i)
		if ev.Number() == 0 {
			continue
		}
		name := string(ev.Name())
		if n++; n == 1 {
			prefix = name
			continue
		}
		for !strings.HasPrefix(name, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	if n < 2 {
		return ""
	}
	return prefix[:strings.LastIndexByte(prefix, '_')+1]
}
