package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/jsonfields"
	"github.com/mash-hub/mash/pkg/text"
)

// GatewayService is a gRPC service whose HTTP/JSON routes come from the google.api.http
// annotations in its contract, served by grpc-gateway's generated handlers.
//
// The generated handlers call the service in process, through the same method handlers the
// gRPC server uses: the HTTP route has already done what the gRPC interceptor does for a
// gRPC call (rate limits, the credential, the access reason; see wrapWith), so the identity,
// the access reason and the request id reach the method in the request's context, and only
// the text check of every field is left to do on the way in.
type GatewayService struct {
	// Desc and Impl are what the service registers on the gRPC server.
	Desc *grpc.ServiceDesc
	Impl any
	// Register is the generated Register<Service>HandlerClient, bound to the service's
	// client type.
	Register func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error
	// Before, by route pattern ("POST /v1/referrals"), runs on the raw body before the
	// gateway decodes it. It may refuse the request (its error is the answer) or return the
	// body the gateway decodes instead (a YAML rule pack becomes a JSON request, say).
	Before map[string]BodyHook
	// Respond may set a status or headers from a method's answer before it is written
	// (201 Created with a Location, say). m embeds the method's response message.
	Respond func(ctx context.Context, w http.ResponseWriter, m proto.Message) error
	// Query names query parameters that are not simply a field's name (see QueryParam),
	// for every route of the service whose request has the field they set.
	Query map[string]QueryParam
	// StrictQuery lists requests whose routes refuse a query parameter that names no field
	// (nor a Query parameter), so a misspelt filter is an error rather than silently ignored.
	StrictQuery []proto.Message
	// Marshalers, by media type, write answers for a request that asks for that type in its
	// Accept header (a Before hook may set it, as a ".csv" route does).
	Marshalers map[string]runtime.Marshaler
	// Validators check the requests of the service's body routes whose bodies could not be
	// fully decoded (see Validator), so the 400 names every problem, not only the values
	// that could not be read.
	Validators []Validator
}

// Validator is a method's own check of its request's fields (see ValidateWith), for the
// gateway to run on a request whose body it could not fully decode. Such a request never
// reaches the method, so without it one unknown enum value would hide every other problem
// of the request; with it, the 400 names the values that could not be read and, in the
// same list, what the method's check makes of the fields that could (with the path's
// values), after the text check the method would have had.
type Validator struct {
	message protoreflect.FullName
	check   func(proto.Message) []apierr.Violation
}

// ValidateWith makes a Validator for requests of type T from the check the method itself
// runs (no more: it must not need the store or the caller), which names fields by their
// paths in the body's JSON names ("referral.child.sex"; for a route whose body is one field
// of the request, from that field down, as the values that could not be read are named).
// A violation of a field that could not be decoded, or of a field inside it, is left out:
// that field is absent from the request the check sees, and its "is required" would only
// repeat the problem already named.
func ValidateWith[T proto.Message](check func(T) []apierr.Violation) Validator {
	var zero T
	return Validator{
		message: zero.ProtoReflect().Descriptor().FullName(),
		check:   func(m proto.Message) []apierr.Violation { return check(m.(T)) },
	}
}

// QueryParam is a query parameter that sets a request field under another name, such as
// the singular "state" for the repeated field states, or whose values stand for other
// values of the field (order=oldest for oldest_first=true).
type QueryParam struct {
	// Field is the request field it sets, by its proto or JSON name.
	Field string
	// Values, when set, maps each value the parameter takes to the field's value; any
	// other value is refused with Reason.
	Values map[string]string
	Reason string
}

// BodyHook is a GatewayService's per-route hook on the raw request body.
type BodyHook func(r *http.Request, body []byte) ([]byte, error)

// HandleGateway registers every HTTP route the service's annotations declare, each as an
// authenticated API route (see HandleAPI) under a mux pattern made from its path template
// ("/v1/packs/{pack_id}/activate" becomes "POST /v1/packs/{packId}/activate": wildcards take
// the field's JSON name, as the JSON bodies do; see wildcardName). An annotation it cannot serve is a
// programming error, reported by Err so the process does not start.
func (s *Server) HandleGateway(svc GatewayService) {
	if err := s.handleGateway(svc); err != nil {
		s.setupErrs = append(s.setupErrs, err)
	}
}

// Err reports what could not be registered (see HandleGateway).
func (s *Server) Err() error { return errors.Join(s.setupErrs...) }

func (s *Server) handleGateway(svc GatewayService) error {
	sd, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc.Desc.ServiceName))
	if err != nil {
		return fmt.Errorf("gateway %s: %w", svc.Desc.ServiceName, err)
	}
	service, ok := sd.(protoreflect.ServiceDescriptor)
	if !ok {
		return fmt.Errorf("gateway %s: not a service", svc.Desc.ServiceName)
	}
	opts := []runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, jsonMarshaler{}),
		runtime.WithErrorHandler(func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
			s.WriteError(w, r, gatewayError(err))
		}),
		// The parser is the runtime's one global: it finds each request's rules by its type.
		runtime.SetQueryParameterParser(queryParser{}),
		// A header or a form body must not turn a POST into another method or route.
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithDisablePathLengthFallback(),
		// Only the gateway's own metadata: headers reach the method through the context.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
	}
	if svc.Respond != nil {
		opts = append(opts, runtime.WithForwardResponseOption(svc.Respond))
	}
	for mt, m := range svc.Marshalers {
		opts = append(opts, runtime.WithMarshalerOption(mt, m))
	}
	mux := runtime.NewServeMux(opts...)
	conn := &localConn{desc: svc.Desc, impl: svc.Impl}
	if err := svc.Register(context.Background(), mux, conn); err != nil {
		return fmt.Errorf("gateway %s: %w", svc.Desc.ServiceName, err)
	}
	validators := map[protoreflect.FullName]Validator{}
	for _, v := range svc.Validators {
		validators[v.message] = v
	}
	strict := map[protoreflect.FullName]bool{}
	for _, m := range svc.StrictQuery {
		strict[m.ProtoReflect().Descriptor().FullName()] = true
	}
	methods := service.Methods()
	for i := range methods.Len() {
		rule, ok := proto.GetExtension(methods.Get(i).Options(), annotations.E_Http).(*annotations.HttpRule)
		if !ok || rule == nil {
			continue
		}
		setQueryRules(methods.Get(i).Input(), svc.Query, strict[methods.Get(i).Input().FullName()])
		for _, b := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			in := methods.Get(i).Input()
			pattern, vars, err := muxPattern(b, in)
			if err != nil {
				return fmt.Errorf("gateway %s: %w", methods.Get(i).FullName(), err)
			}
			var lenient *lenientCheck
			if v, ok := validators[in.FullName()]; ok && b.GetBody() != "" {
				if lenient, err = newLenientCheck(in, b.GetBody(), vars, v); err != nil {
					return fmt.Errorf("gateway %s: %w", methods.Get(i).FullName(), err)
				}
			}
			s.HandleAPI(pattern, s.gatewayRoute(mux, svc.Before[pattern], lenient))
			s.routes[len(s.routes)-1].Gateway = true
		}
	}
	return nil
}

// gatewayRoute reads the body (bounded), runs the route's hook, refuses a media type the
// route does not take, and hands the request to the gateway.
func (s *Server) gatewayRoute(mux *runtime.ServeMux, before BodyHook, lenient *lenientCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBody))
		if err != nil {
			s.WriteError(w, r, apierr.Invalid([]apierr.Violation{{Field: "body", Reason: fmt.Sprintf("could not be read or is larger than %d bytes", MaxJSONBody)}}))
			return
		}
		if before != nil {
			if body, err = before(r, body); err != nil {
				s.WriteError(w, r, err)
				return
			}
		}
		ct, mt := r.Header.Get("Content-Type"), MediaType(r)
		if len(body) > 0 && ct != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			s.WriteError(w, r, apierr.Invalid([]apierr.Violation{{Field: "body", Reason: fmt.Sprintf("has Content-Type %q; this route takes application/json", ct)}}))
			return
		}
		if lenient != nil {
			if err := lenient.check(r, body); err != nil {
				s.WriteError(w, r, err)
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		mux.ServeHTTP(w, r)
	}
}

// SourceBody is a BodyHook for routes that also take a document as the body, of one of
// mediaTypes (a YAML rule pack): such a body becomes a JSON request whose field holds it,
// with the query parameters as the request's other fields (?last=500), so a lead can send
// the file itself. JSON bodies pass unchanged.
func SourceBody(field string, mediaTypes ...string) BodyHook {
	return func(r *http.Request, body []byte) ([]byte, error) {
		mt := MediaType(r)
		if !slices.Contains(mediaTypes, mt) {
			if ct := r.Header.Get("Content-Type"); len(body) > 0 && ct != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
				return nil, apierr.Invalid([]apierr.Violation{{Field: "body", Reason: fmt.Sprintf("has Content-Type %q; this route takes %s",
					ct, strings.Join(append([]string{"application/json"}, mediaTypes...), " or "))}})
			}
			return body, nil
		}
		req := map[string]string{field: string(body)}
		for k, vs := range r.URL.Query() {
			if k != field && len(vs) > 0 {
				req[k] = vs[0]
			}
		}
		out, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("encode %s request: %w", mt, err)
		}
		r.Header.Set("Content-Type", "application/json")
		r.URL.RawQuery = ""
		return out, nil
	}
}

// pathVar is a path variable: the request field it sets (its proto path, "agency.id") and
// its mux wildcard ("agencyId").
type pathVar struct{ field, wildcard string }

// muxPattern turns an HttpRule into a Go mux pattern, with the variables of its path.
func muxPattern(rule *annotations.HttpRule, in protoreflect.MessageDescriptor) (string, []pathVar, error) {
	var method, path string
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		method, path = http.MethodGet, p.Get
	case *annotations.HttpRule_Put:
		method, path = http.MethodPut, p.Put
	case *annotations.HttpRule_Post:
		method, path = http.MethodPost, p.Post
	case *annotations.HttpRule_Delete:
		method, path = http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		method, path = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Custom:
		method, path = p.Custom.GetKind(), p.Custom.GetPath()
	default:
		return "", nil, errors.New("http rule has no pattern")
	}
	var vars []pathVar
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			b.WriteString(path)
			break
		}
		j := strings.IndexByte(path[i:], '}')
		if j < 0 {
			return "", nil, fmt.Errorf("path %q: unclosed variable", path)
		}
		name := path[i+1 : i+j]
		wildcard, err := wildcardName(name, in)
		if err != nil {
			return "", nil, fmt.Errorf("path %q: %w", path, err)
		}
		vars = append(vars, pathVar{field: name, wildcard: wildcard})
		b.WriteString(path[:i] + "{" + wildcard + "}")
		path = path[i+j+1:]
	}
	return method + " " + b.String(), vars, nil
}

// wildcardName names a path variable's mux wildcard after the JSON names of the field it
// binds: "pack_id" becomes "packId", and a field of a field, "agency.id", "agencyId" (a
// wildcard must be a Go identifier).
func wildcardName(variable string, in protoreflect.MessageDescriptor) (string, error) {
	var b strings.Builder
	msg := in
	for k, part := range strings.Split(variable, ".") {
		var fd protoreflect.FieldDescriptor
		if msg != nil && !strings.Contains(part, "=") {
			fd = msg.Fields().ByName(protoreflect.Name(part))
		}
		if fd == nil || fd.IsList() || fd.IsMap() {
			return "", fmt.Errorf("variable %q must name a singular field of %s", variable, in.FullName())
		}
		name := fd.JSONName()
		if k > 0 {
			name = strings.ToUpper(name[:1]) + name[1:]
		}
		b.WriteString(name)
		msg = fd.Message()
	}
	if msg != nil {
		return "", fmt.Errorf("variable %q must name a field that is not a message", variable)
	}
	return b.String(), nil
}

// localConn is a grpc.ClientConnInterface that calls a service's method handlers in
// process, checking the text of every field first as the gRPC interceptor does. Errors
// come back as the method returned them, for apierr to map.
type localConn struct {
	desc *grpc.ServiceDesc
	impl any
}

func (c *localConn) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	name := method[strings.LastIndexByte(method, '/')+1:]
	i := slices.IndexFunc(c.desc.Methods, func(m grpc.MethodDesc) bool { return m.MethodName == name })
	if i < 0 {
		return status.Errorf(codes.Unimplemented, "%s is not served over HTTP", method)
	}
	in, ok := args.(proto.Message)
	if !ok {
		return fmt.Errorf("gateway call %s: request is %T, not a protobuf message", method, args)
	}
	dec := func(v any) error {
		m, ok := v.(proto.Message)
		if !ok {
			return fmt.Errorf("gateway call %s: handler wants %T", method, v)
		}
		proto.Merge(m, in)
		return nil
	}
	check := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if m, ok := req.(proto.Message); ok {
			if err := text.Invalid(m); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
	resp, err := c.desc.Methods[i].Handler(c.impl, ctx, dec, check)
	if err != nil {
		return err
	}
	out, ok1 := reply.(proto.Message)
	got, ok2 := resp.(proto.Message)
	if !ok1 || !ok2 {
		return fmt.Errorf("gateway call %s: response is %T", method, resp)
	}
	proto.Merge(out, got)
	return nil
}

func (c *localConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "streaming calls are not offered over HTTP")
}

// violationsPrefix marks an error the gateway's decoders return, whose violations the error
// handler restores: the generated handlers keep only an error's text.
const violationsPrefix = "mash-violations:"

type violationsError []apierr.Violation

func (v violationsError) Error() string {
	b, _ := json.Marshal([]apierr.Violation(v))
	return violationsPrefix + string(b)
}

// gatewayError restores the violations of a decoding error, so a request the gateway could
// not read gets the same 400 naming its fields as one the method refused.
func gatewayError(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return err
	}
	msg := st.Message()
	if i := strings.Index(msg, violationsPrefix); i >= 0 {
		var vs []apierr.Violation
		if json.Unmarshal([]byte(msg[i+len(violationsPrefix):]), &vs) == nil && len(vs) > 0 {
			return apierr.Invalid(vs)
		}
	}
	return err
}

// jsonMarshaler reads and writes the protobuf JSON mapping as the hand-written routes did:
// lowerCamelCase names, unset fields left out, unknown fields refused, and every field that
// cannot be read named (jsonfields), not only the first.
type jsonMarshaler struct{}

func (jsonMarshaler) ContentType(any) string { return "application/json" }

func (jsonMarshaler) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return json.Marshal(v)
	}
	b, err := jsonOut.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return append(b, '\n'), nil
}

func (jsonMarshaler) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		// A body mapped to one field arrives as the address of that field's pointer.
		if m, ok = messageAt(v); !ok {
			return fmt.Errorf("decode body into %T: not a protobuf message", v)
		}
	}
	vs, err := jsonfields.Decode(data, m)
	switch {
	case len(vs) > 0:
		out := make(violationsError, len(vs))
		for i, v := range vs {
			out[i] = apierr.Violation{Field: v.Field, Reason: v.Reason}
		}
		return out
	case err != nil:
		return violationsError{{Field: "body", Reason: "is not a valid JSON request: " + strings.TrimPrefix(err.Error(), "proto: ")}}
	}
	return nil
}

// messageAt returns the message *v points to, allocating it if nil, when v is a pointer to a
// pointer to a protobuf message.
func messageAt(v any) (proto.Message, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Pointer {
		return nil, false
	}
	if rv.Elem().IsNil() {
		rv.Elem().Set(reflect.New(rv.Elem().Type().Elem()))
	}
	m, ok := rv.Elem().Interface().(proto.Message)
	return m, ok
}

func (j jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return io.EOF // no body: the request's fields come from the path and query alone
		}
		return j.Unmarshal(b, v)
	})
}

func (j jsonMarshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := j.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}
