package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// Paths maps contract fields (validation's names, e.g. child.nhsNumber) to the FHIRPath of
// the element they came from.
type Paths struct {
	root   string
	fields map[string]string
}

// Expression is the FHIRPath for a contract field: the element it came from, else that of its
// nearest mapped parent (child.address.postcode before child.address), else the ServiceRequest.
func (p *Paths) Expression(field string) string {
	if p == nil {
		return field
	}
	for f := field; f != ""; {
		if e, ok := p.fields[f]; ok {
			return e
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return p.root
}

func (p *Paths) set(field, expr string) { p.fields[field] = expr }

// Kind is how a referral arrived.
type Kind int

// The three forms a referral may take.
const (
	KindServiceRequest Kind = iota
	KindTransaction
	KindMessage
)

// Request is a FHIR referral mapped onto the contract.
type Request struct {
	Kind       Kind
	Submission *intakev1.ReferralSubmission
	Paths      *Paths
	// Identifier is the ServiceRequest identifier that became externalReference.
	Identifier r4.Identifier
	// Entries is the number of Bundle entries (a transaction answers each), and SREntry the
	// index of the ServiceRequest among them.
	Entries, SREntry int
	// Header is the request MessageHeader of a message Bundle.
	Header *r4.MessageHeader
}

// resource is a resource of the request with the FHIRPath at which it sits.
type resource struct {
	path, typ, id, fullURL string
	raw                    json.RawMessage
}

type header struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Contained    []json.RawMessage `json:"contained"`
}

func decodeObject(body []byte, expr string) (header, *Error) {
	var h header
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return h, invalid(r4.IssueTypeStructure, expr, "must be a JSON object (a FHIR R4 resource)")
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return h, invalid(r4.IssueTypeStructure, expr, "is not valid FHIR JSON: "+describe(err))
	}
	if h.ResourceType == "" {
		return h, invalid(r4.IssueTypeRequired, expr+".resourceType", "is required")
	}
	return h, nil
}

// describe names what failed to decode without echoing any submitted value.
func describe(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case asErr(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case asErr(err, &te):
		return fmt.Sprintf("element %s has the wrong JSON type (want %s)", te.Field, te.Type)
	}
	return "it cannot be decoded"
}

// ParseServiceRequest maps a ServiceRequest whose Patient, Practitioner and RelatedPersons are
// contained resources.
func ParseServiceRequest(body []byte) (*Request, *Error) {
	h, ferr := decodeObject(body, "ServiceRequest")
	if ferr != nil {
		return nil, ferr
	}
	if h.ResourceType != "ServiceRequest" {
		return nil, invalid(r4.IssueTypeInvalid, "ServiceRequest.resourceType", fmt.Sprintf("is %s; this endpoint takes a ServiceRequest", safeName(h.ResourceType)))
	}
	var others []resource
	for i, raw := range h.Contained {
		ch, err := decodeObject(raw, fmt.Sprintf("ServiceRequest.contained[%d]", i))
		if err != nil {
			return nil, err
		}
		others = append(others, resource{path: fmt.Sprintf("ServiceRequest.contained[%d]", i), typ: ch.ResourceType, id: ch.ID, raw: raw})
	}
	sr := resource{path: "ServiceRequest", typ: "ServiceRequest", id: h.ID, raw: body}
	req, ferr := mapServiceRequest(sr, others, true)
	if ferr != nil {
		return nil, ferr
	}
	req.Kind = KindServiceRequest
	return req, nil
}

// ParseBundle maps a transaction or message Bundle holding one ServiceRequest.
func ParseBundle(body []byte) (*Request, *Error) {
	h, ferr := decodeObject(body, "Bundle")
	if ferr != nil {
		return nil, ferr
	}
	if h.ResourceType != "Bundle" {
		return nil, invalid(r4.IssueTypeInvalid, "Bundle.resourceType", fmt.Sprintf("is %s; this endpoint takes a Bundle", safeName(h.ResourceType)))
	}
	b, err := r4.UnmarshalBundle(body)
	if err != nil {
		return nil, invalid(r4.IssueTypeStructure, "Bundle", "is not a valid FHIR R4 Bundle: "+describe(err))
	}
	var kind Kind
	switch b.Type {
	case r4.BundleTypeTransaction:
		kind = KindTransaction
	case r4.BundleTypeMessage:
		kind = KindMessage
	default:
		return nil, invalid(r4.IssueTypeNotSupported, "Bundle.type", "must be transaction or message")
	}
	var all []resource
	srAt := -1
	for i, e := range b.Entry {
		p := fmt.Sprintf("Bundle.entry[%d].resource", i)
		if len(e.Resource) == 0 {
			return nil, invalid(r4.IssueTypeRequired, p, "is required")
		}
		eh, ferr := decodeObject(e.Resource, p)
		if ferr != nil {
			return nil, ferr
		}
		r := resource{path: p, typ: eh.ResourceType, id: eh.ID, raw: e.Resource}
		if e.FullUrl != nil {
			r.fullURL = *e.FullUrl
		}
		if kind == KindTransaction && e.Request == nil {
			return nil, invalid(r4.IssueTypeRequired, fmt.Sprintf("Bundle.entry[%d].request", i), "is required in a transaction")
		}
		if eh.ResourceType == "ServiceRequest" {
			if srAt >= 0 {
				return nil, invalid(r4.IssueTypeNotSupported, p, "is a second ServiceRequest; send one referral per Bundle")
			}
			srAt = i
		}
		all = append(all, r)
	}
	var mh *r4.MessageHeader
	if kind == KindMessage {
		if len(all) == 0 || all[0].typ != "MessageHeader" {
			return nil, invalid(r4.IssueTypeStructure, "Bundle.entry[0].resource", "must be a MessageHeader in a message Bundle")
		}
		m, err := r4.UnmarshalMessageHeader(all[0].raw)
		if err != nil {
			return nil, invalid(r4.IssueTypeStructure, "Bundle.entry[0].resource", "is not a valid MessageHeader: "+describe(err))
		}
		if str(m.Id) == "" {
			// The response message names the request's MessageHeader by its id.
			return nil, invalid(r4.IssueTypeRequired, "Bundle.entry[0].resource.id", "is required: the response message names the MessageHeader it answers")
		}
		mh = &m
	}
	if srAt < 0 {
		return nil, invalid(r4.IssueTypeRequired, "Bundle.entry", "must hold a ServiceRequest (the referral)")
	}
	others := append(append([]resource{}, all[:srAt]...), all[srAt+1:]...)
	req, ferr := mapServiceRequest(all[srAt], others, false)
	if ferr != nil {
		return nil, ferr
	}
	req.Kind, req.Entries, req.SREntry, req.Header = kind, len(all), srAt, mh
	return req, nil
}

// safeName echoes a resourceType only when it looks like one, never arbitrary text.
func safeName(s string) string {
	if len(s) > 64 {
		return "not a FHIR resource type"
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "not a FHIR resource type"
		}
	}
	return s
}
