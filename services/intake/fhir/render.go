package fhir

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

func ptr[T any](v T) *T { return &v }

// Route paths, also the CapabilityStatement's.
const (
	Prefix             = "/fhir/r4"
	ServiceRequestPath = Prefix + "/ServiceRequest"
)

// Location is the address of a referral's ServiceRequest.
func Location(referralID string) string { return ServiceRequestPath + "/" + referralID }

// AgencySystem is the identifier system of an agency's own references when the sender's
// system is not known (a referral submitted through /v1/referrals).
func AgencySystem(agency string) string { return Base + "/Id/external-reference/" + agency }

// status is a referral's status in FHIR terms: a received referral awaits the hub's threshold
// decision (active); once decided, the request for a decision has been fulfilled.
func status(s intakev1.ReferralStatus) r4.RequestStatus {
	switch s {
	case intakev1.ReferralStatus_RECEIVED:
		return r4.RequestStatusActive
	case intakev1.ReferralStatus_DECIDED:
		return r4.RequestStatusCompleted
	}
	return r4.RequestStatusUnknown
}

func display(cat intakev1.ConcernCategory) string {
	s := strings.ReplaceAll(strings.ToLower(cat.String()), "_", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// ServiceRequest is a referral in FHIR terms: its identifiers (the sender's reference, the
// MASH reference and the referral id), status, partnership, child and reasons. sender is the
// identifier the referral arrived with (nil: an agency-scoped system is used).
func ServiceRequest(ref *intakev1.Referral, sender *r4.Identifier) r4.ServiceRequest {
	ext := r4.Identifier{System: ptr(AgencySystem(ref.GetAgency())), Value: ptr(ref.GetExternalReference())}
	if sender != nil {
		ext = r4.Identifier{System: sender.System, Value: ptr(ref.GetExternalReference())}
	}
	sr := r4.ServiceRequest{
		Id:     ptr(ref.GetId()),
		Meta:   &r4.Meta{},
		Status: status(ref.GetStatus()),
		Intent: r4.RequestIntentOrder,
		Identifier: []r4.Identifier{
			ext,
			{System: ptr(ReferenceSystem), Value: ptr(ref.GetReference())},
			{System: ptr(ReferralIDSystem), Value: ptr(ref.GetId())},
		},
		Performer: []r4.Reference{{Identifier: &r4.Identifier{System: ptr(PartnershipSystem), Value: ptr(ref.GetPartnership())}}},
	}
	if v := ref.GetVersion(); v > 0 {
		sr.Meta.VersionId = ptr(strconv.FormatInt(v, 10))
	}
	if t := ref.GetReceivedAt(); t != nil {
		sr.Meta.LastUpdated = ptr(t.AsTime().UTC().Format(time.RFC3339Nano))
		sr.Extension = append(sr.Extension, r4.Extension{Url: ExtReceivedAt, ValueDateTime: ptr(t.AsTime().UTC().Format(time.RFC3339))})
	}
	if t := ref.GetDecisionDue(); t != nil {
		sr.Extension = append(sr.Extension, r4.Extension{Url: ExtDecisionDue, ValueDateTime: ptr(t.AsTime().UTC().Format(time.RFC3339))})
	}
	sub := ref.GetSubmission()
	// The subject is named by NHS number alone: the status view need not repeat the child's
	// personal details.
	sr.Subject = r4.Reference{Type: ptr("Patient"), Display: ptr("the child of referral " + ref.GetReference())}
	if nhs := sub.GetChild().GetNhsNumber(); nhs != "" {
		sr.Subject.Identifier = &r4.Identifier{System: ptr(NHSNumberSystem), Value: ptr(nhs)}
	}
	for _, c := range sub.GetConcerns() {
		cc := r4.CodeableConcept{Coding: []r4.Coding{{System: ptr(ConcernCategorySystem), Code: ptr(c.GetCategory().String()), Display: ptr(display(c.GetCategory()))}}}
		if c.GetSummary() != "" {
			cc.Text = ptr(c.GetSummary())
		}
		sr.ReasonCode = append(sr.ReasonCode, cc)
	}
	return sr
}

// entryResponse is the answer for the ServiceRequest entry of a transaction.
func entryResponse(code int, ref *intakev1.Referral) *r4.BundleEntryResponse {
	return &r4.BundleEntryResponse{Status: fmt.Sprintf("%d %s", code, statusText(code)), Location: ptr(Location(ref.GetId()))}
}

func statusText(code int) string {
	if code == 201 {
		return "Created"
	}
	return "OK"
}

// Response is the answer to an accepted request: the ServiceRequest itself, a
// transaction-response Bundle, or a response message Bundle. code is 201 for a new referral
// and 200 for a replay.
func Response(req *Request, code int, ref *intakev1.Referral, now time.Time) (any, error) {
	sr := ServiceRequest(ref, &req.Identifier)
	raw, err := json.Marshal(sr)
	if err != nil {
		return nil, fmt.Errorf("encode ServiceRequest: %w", err)
	}
	switch req.Kind {
	case KindTransaction:
		b := r4.Bundle{Type: r4.BundleTypeTransactionResponse}
		for i := 0; i < req.Entries; i++ {
			e := r4.BundleEntry{}
			if i == req.SREntry {
				e.FullUrl, e.Resource, e.Response = ptr(Location(ref.GetId())), raw, entryResponse(code, ref)
			} else {
				// The other resources are part of the referral, not stored on their own.
				e.Response = &r4.BundleEntryResponse{Status: "200 OK"}
			}
			b.Entry = append(b.Entry, e)
		}
		return b, nil
	case KindMessage:
		mh := map[string]any{
			"resourceType": "MessageHeader",
			"id":           ref.GetId() + "-response",
			"eventCoding":  req.Header.EventCoding,
			"source":       map[string]any{"name": "mash intake", "endpoint": Base + "/intake"},
			"response":     map[string]any{"identifier": str(req.Header.Id), "code": "ok"},
			"focus":        []any{map[string]any{"reference": Location(ref.GetId())}},
		}
		mhRaw, err := json.Marshal(mh)
		if err != nil {
			return nil, fmt.Errorf("encode MessageHeader: %w", err)
		}
		return r4.Bundle{Type: r4.BundleTypeMessage, Timestamp: ptr(now.UTC().Format(time.RFC3339)),
			Identifier: &r4.Identifier{System: ptr(ReferralIDSystem), Value: ptr(ref.GetId())},
			Entry: []r4.BundleEntry{
				{FullUrl: ptr("urn:uuid:" + ref.GetId() + "-response"), Resource: mhRaw},
				{FullUrl: ptr(Location(ref.GetId())), Resource: raw},
			}}, nil
	}
	return sr, nil
}

// CapabilityStatement describes what this server does with FHIR.
func CapabilityStatement(date time.Time) r4.CapabilityStatement {
	doc := func(s string) *string { return &s }
	return r4.CapabilityStatement{
		Name: ptr("MashIntake"), Title: ptr("MASH intake for health referrals"),
		Status: r4.PublicationStatusActive, Date: date.UTC().Format("2006-01-02"), Kind: r4.CapabilityStatementKindInstance,
		FhirVersion: r4.FHIRVersion4_0_1, Format: []string{ContentType},
		Implementation: &r4.CapabilityStatementImplementation{Description: "Safeguarding referrals to a Multi-Agency Safeguarding Hub", Url: ptr(Prefix)},
		Rest: []r4.CapabilityStatementRest{{
			Mode:     r4.RestfulCapabilityModeServer,
			Security: &r4.CapabilityStatementRestSecurity{Description: doc("Bearer credential issued by the hub to the referring agency, as for the rest of the API.")},
			Resource: []r4.CapabilityStatementRestResource{{
				Type:          r4.ResourceTypeServiceRequest,
				Documentation: doc("A safeguarding referral: subject, requester and RelatedPersons contained. Its first identifier is the sender's reference; a retry with the same reference and content answers the same referral."),
				Interaction: []r4.CapabilityStatementRestResourceInteraction{
					{Code: r4.TypeRestfulInteractionCreate}, {Code: r4.TypeRestfulInteractionRead},
				},
			}},
			Interaction: []r4.CapabilityStatementRestInteraction{{Code: r4.SystemRestfulInteractionTransaction,
				Documentation: doc("POST " + Prefix + "/Bundle: a transaction holding one ServiceRequest with its Patient, Practitioner and RelatedPersons.")}},
		}},
		Messaging: []r4.CapabilityStatementMessaging{{Documentation: doc("POST " + Prefix + "/Bundle: a message Bundle whose MessageHeader is followed by one ServiceRequest and its resources; answered with a response message.")}},
	}
}
