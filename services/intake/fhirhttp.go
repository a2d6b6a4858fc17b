package intake

import (
	"fmt"
	"io"
	"net/http"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/referral"
	"github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/pkg/text"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"github.com/mash-hub/mash/services/intake/fhir"
)

func writeOutcome(w http.ResponseWriter, err error) int { return fhir.WriteError(w, err, nil) }

// registerFHIR maps FHIR R4 referrals onto the same submit path as /v1/referrals: the same
// credential, authorisation, validation and idempotency, answered with FHIR resources and
// OperationOutcome errors.
func registerFHIR(srv *server.Server, s *Service) {
	api := &grpcAPI{svc: s}
	post := func(parse func([]byte) (*fhir.Request, *fhir.Error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			fail := func(err error, paths *fhir.Paths) {
				srv.WriteErrorWith(w, r, err, func(w http.ResponseWriter, err error) int { return fhir.WriteError(w, err, paths) })
			}
			// Authorisation first, so a caller who may not submit learns nothing about its body.
			if _, err := server.Require(r.Context(), auth.SubmitReferrals); err != nil {
				fail(err, nil)
				return
			}
			if mt := server.MediaType(r); mt != fhir.ContentType && mt != "application/json" {
				fail(&fhir.Error{Status: http.StatusUnsupportedMediaType, Issues: []fhir.Issue{{Code: r4.IssueTypeNotSupported,
					Reason: fmt.Sprintf("Content-Type %q is not accepted: send FHIR R4 JSON as %s", r.Header.Get("Content-Type"), fhir.ContentType)}}}, nil)
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, referral.MaxBodyBytes+1))
			if err != nil || len(body) > referral.MaxBodyBytes {
				fail(&fhir.Error{Status: http.StatusRequestEntityTooLarge, Issues: []fhir.Issue{{Code: r4.IssueTypeTooCostly,
					Reason: fmt.Sprintf("the body could not be read or is larger than %d bytes", referral.MaxBodyBytes)}}}, nil)
				return
			}
			req, ferr := parse(body)
			if ferr != nil {
				fail(ferr, nil)
				return
			}
			// The same free-text rule as /v1/referrals, named at the FHIR element.
			if err := text.Invalid(req.Submission); err != nil {
				fail(err, req.Paths)
				return
			}
			resp, err := api.SubmitReferral(r.Context(), &intakev1.SubmitReferralRequest{Referral: req.Submission})
			if err != nil {
				fail(err, req.Paths)
				return
			}
			ack := resp.GetAcknowledgement()
			code := http.StatusCreated
			if ack.GetReplay() {
				code = http.StatusOK
			}
			ref := &intakev1.Referral{Id: ack.GetReferralId(), Reference: ack.GetReference(), ExternalReference: ack.GetExternalReference(),
				Partnership: req.Submission.GetPartnership(), ReceivedAt: ack.GetReceivedAt(), Status: ack.GetStatus(),
				DecisionDue: ack.GetDecisionDue(), Submission: req.Submission}
			out, err := fhir.Response(req, code, ref, s.now())
			if err != nil {
				fail(err, nil)
				return
			}
			// Location names the referral on a replay too: a FHIR client follows it either way.
			w.Header().Set("Location", fhir.Location(ack.GetReferralId()))
			fhir.Write(w, code, out)
		}
	}
	srv.HandleAPIWithErrors("POST "+fhir.Prefix+"/Bundle", writeOutcome, post(fhir.ParseBundle))
	srv.HandleAPIWithErrors("POST "+fhir.ServiceRequestPath, writeOutcome, post(fhir.ParseServiceRequest))
	srv.HandleAPIWithErrors("GET "+fhir.ServiceRequestPath+"/{id}", writeOutcome, func(w http.ResponseWriter, r *http.Request) {
		get := &intakev1.GetReferralRequest{Id: r.PathValue("id")}
		if err := text.Invalid(get); err != nil {
			srv.WriteErrorWith(w, r, err, writeOutcome)
			return
		}
		resp, err := api.GetReferral(r.Context(), get)
		if err != nil {
			srv.WriteErrorWith(w, r, err, writeOutcome)
			return
		}
		fhir.Write(w, http.StatusOK, fhir.ServiceRequest(resp.GetReferral(), nil))
	})
	srv.HandleAPIWithErrors("GET "+fhir.Prefix+"/metadata", writeOutcome, func(w http.ResponseWriter, r *http.Request) {
		fhir.Write(w, http.StatusOK, fhir.CapabilityStatement(s.now()))
	})
}
