// Command protoc-gen-mash-catalogue generates the event catalogue from the
// (mash.catalogue.v1.event) options on the protobuf messages: one Go constant per subject
// and a table of every subject with its message and producer, in package eventsv1. Code,
// SQL checks and each service's bus permissions read subjects from there, so a subject is
// written once, on the message it carries. scripts/proto runs it through buf (strategy
// all: it must see every file at once).
package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/pluginpb"
)

const (
	optionFile = "mash/catalogue/v1/catalogue.proto"
	optionName = "event"
	// The catalogue is generated into the package of the envelope.
	targetFile = "mash/events/v1/envelope.proto"
	outName    = "mash/events/v1/catalogue.pb.go"
)

// entry is one (mash.catalogue.v1.event) option.
type entry struct {
	Subject, Producer           string
	Message                     protoreflect.FullName
	Source                      string
	Retired, TrailOnly, Channel bool
}

func main() {
	protogen.Options{}.Run(func(gen *protogen.Plugin) error {
		// Proto3 optional fields change nothing in the catalogue.
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		opt, ok := gen.FilesByPath[optionFile]
		if !ok {
			return fmt.Errorf("%s is not among the files given", optionFile)
		}
		target, ok := gen.FilesByPath[targetFile]
		if !ok {
			return fmt.Errorf("%s is not among the files given", targetFile)
		}
		xd := opt.Desc.Extensions().ByName(optionName)
		if xd == nil {
			return fmt.Errorf("%s declares no extension %q", optionFile, optionName)
		}
		var entries []entry
		for _, f := range gen.Files {
			for _, m := range f.Messages {
				es, err := read(m.Desc, xd)
				if err != nil {
					return fmt.Errorf("%s: %w", m.Desc.FullName(), err)
				}
				for i := range es {
					es[i].Source = f.Desc.Path()
				}
				entries = append(entries, es...)
			}
		}
		if err := check(entries); err != nil {
			return err
		}
		write(gen.NewGeneratedFile(outName, target.GoImportPath), entries)
		return nil
	})
}

// read returns the event options of message m. The plugin does not link the option's Go
// type, so the options arrive as unknown fields: each occurrence of the extension's number
// is one EventSubject, decoded with the option file's own descriptor.
func read(m protoreflect.MessageDescriptor, xd protoreflect.ExtensionDescriptor) ([]entry, error) {
	opts, ok := m.Options().(*descriptorpb.MessageOptions)
	if !ok || opts == nil {
		return nil, nil
	}
	var out []entry
	b := opts.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num != xd.Number() || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		raw, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		v := dynamicpb.NewMessage(xd.Message())
		if err := proto.Unmarshal(raw, v); err != nil {
			return nil, err
		}
		field := func(name string) protoreflect.Value {
			return v.Get(v.Descriptor().Fields().ByName(protoreflect.Name(name)))
		}
		out = append(out, entry{
			Subject: field("subject").String(), Producer: field("producer").String(), Message: m.FullName(),
			Retired: field("retired").Bool(), TrailOnly: field("trail_only").Bool(), Channel: field("channel").Bool(),
		})
	}
	return out, nil
}

// check refuses a catalogue that would mislead: an entry without subject or producer, a
// subject that is not mash.<tokens>, or one subject declared with two producers or names.
func check(entries []entry) error {
	producers := map[string]string{}
	names := map[string]string{}
	for _, e := range entries {
		if e.Producer == "" {
			return fmt.Errorf("%s: subject %q names no producer", e.Message, e.Subject)
		}
		if !strings.HasPrefix(e.Subject, "mash.") {
			return fmt.Errorf("%s: subject %q does not start with mash.", e.Message, e.Subject)
		}
		for _, tok := range strings.Split(e.Subject, ".") {
			if tok == "" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") || (strings.Contains(tok, "*") && tok != "*") {
				return fmt.Errorf("%s: subject %q: each token is a word or a lone *", e.Message, e.Subject)
			}
		}
		if p, ok := producers[e.Subject]; ok && p != e.Producer {
			return fmt.Errorf("subject %q has two producers, %s and %s", e.Subject, p, e.Producer)
		}
		producers[e.Subject] = e.Producer
		n := constName(e.Subject)
		if s, ok := names[n]; ok && s != e.Subject {
			return fmt.Errorf("subjects %q and %q would both be %s", s, e.Subject, n)
		}
		names[n] = e.Subject
	}
	return nil
}

// constName is a subject's Go name: mash.case.legal_hold_placed is SubjectCaseLegalHoldPlaced,
// and a * token is Any (mash.notify.*.ack is SubjectNotifyAnyAck).
func constName(subject string) string {
	var b strings.Builder
	b.WriteString("Subject")
	for _, word := range strings.FieldsFunc(strings.TrimPrefix(subject, "mash."), func(r rune) bool {
		return r == '.' || r == '_' || r == '-'
	}) {
		if word == "*" {
			word = "any"
		}
		r := []rune(word)
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	return b.String()
}

func write(g *protogen.GeneratedFile, entries []entry) {
	g.P("// Code generated by protoc-gen-mash-catalogue. DO NOT EDIT.")
	g.P("// source: the (mash.catalogue.v1.event) options of the messages in proto/")
	g.P()
	g.P("package eventsv1")
	g.P()
	g.P("// The subjects of the event catalogue, each declared once on the message it carries.")
	g.P("const (")
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.Subject] {
			continue
		}
		seen[e.Subject] = true
		var msgs []string
		for _, o := range entries {
			if o.Subject == e.Subject {
				msgs = append(msgs, string(o.Message))
			}
		}
		verb := ", published by "
		if e.TrailOnly {
			verb = ", written by "
		}
		g.P("// ", constName(e.Subject), " carries ", strings.Join(msgs, " or "), verb, e.Producer, flags(e), ".")
		g.P(constName(e.Subject), " = ", strconv.Quote(e.Subject))
	}
	g.P(")")
	g.P()
	g.P("// CatalogueEntry is one subject a message is published on, and who publishes it.")
	g.P("type CatalogueEntry struct {")
	g.P("// Subject is literal, or has * tokens the producer fills in (one agency's channel).")
	g.P("Subject string")
	g.P("// Producer is the service (its bus role) that publishes it, or \"agency\".")
	g.P("Producer string")
	g.P("// Message is the full name of the protobuf message it carries.")
	g.P("Message string")
	g.P("// Retired subjects are no longer published; they are declared to read the trail.")
	g.P("Retired bool")
	g.P("// TrailOnly subjects are audit log entries that are never published.")
	g.P("TrailOnly bool")
	g.P("// Channel subjects carry an agency's JSON document, not an Envelope.")
	g.P("Channel bool")
	g.P("}")
	g.P()
	g.P("// Catalogue is every subject of every event message, in the order of the proto files.")
	g.P("var Catalogue = []CatalogueEntry{")
	sorted := append([]entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Source < sorted[j].Source })
	for _, e := range sorted {
		g.P("{Subject: ", constName(e.Subject), ", Producer: ", strconv.Quote(e.Producer), ", Message: ", strconv.Quote(string(e.Message)),
			", Retired: ", e.Retired, ", TrailOnly: ", e.TrailOnly, ", Channel: ", e.Channel, "},")
	}
	g.P("}")
}

func flags(e entry) string {
	switch {
	case e.Retired:
		return " (retired: read from the trail, no longer published)"
	case e.TrailOnly:
		return " (an audit log entry, never published)"
	case e.Channel:
		return " (agency channel: JSON, not an Envelope)"
	}
	return ""
}
