package server

import (
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"
)

// Rendering is a runtime.Marshaler (see GatewayService.Marshalers) for a route that answers
// with a document rather than JSON, such as the dashboard as CSV. It renders answers of
// one type; any other (another route's answer, to a client that asked for this media type)
// is written as JSON, as it would have been. Requests are read as JSON.
type Rendering struct {
	// MediaType is the document's Content-Type ("text/csv; charset=utf-8").
	MediaType string
	// For is a message of the type rendered.
	For proto.Message
	// Render writes an answer of that type as the document.
	Render func(m proto.Message) ([]byte, error)
}

func (r Rendering) renders(v any) (proto.Message, bool) {
	m, ok := v.(proto.Message)
	return m, ok && m.ProtoReflect().Descriptor().FullName() == r.For.ProtoReflect().Descriptor().FullName()
}

// ContentType is MediaType for the rendered type, JSON's otherwise.
func (r Rendering) ContentType(v any) string {
	if _, ok := r.renders(v); ok {
		return r.MediaType
	}
	return jsonMarshaler{}.ContentType(v)
}

// Marshal renders v, or writes it as JSON.
func (r Rendering) Marshal(v any) ([]byte, error) {
	if m, ok := r.renders(v); ok {
		return r.Render(m)
	}
	return jsonMarshaler{}.Marshal(v)
}

// Unmarshal reads JSON.
func (Rendering) Unmarshal(data []byte, v any) error { return jsonMarshaler{}.Unmarshal(data, v) }

// NewDecoder reads JSON.
func (Rendering) NewDecoder(rd io.Reader) runtime.Decoder { return jsonMarshaler{}.NewDecoder(rd) }

// NewEncoder writes as Marshal does.
func (r Rendering) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := r.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}
