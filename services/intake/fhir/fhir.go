// Package fhir maps FHIR R4 referrals from health systems onto the intake contract and
// answers them in FHIR terms. A GP system sends a ServiceRequest (inside a transaction or
// message Bundle, or alone with its Patient and RelatedPersons contained); Parse turns it into
// a ReferralSubmission and remembers, for every contract field it filled, the FHIRPath of the
// element it came from, so a validation violation of the one intake contract is reported
// against the element the sender wrote. Resources are the structs of the samply R4 models.
package fhir

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/mash-hub/mash/pkg/apierr"
)

// ContentType is the media type of every FHIR answer.
const ContentType = "application/fhir+json"

// Base is the namespace of mash's own FHIR code systems, identifier systems and extensions.
const Base = "https://mash.example/fhir"

// Systems and extensions a sender uses; the README's mapping table documents each.
const (
	NHSNumberSystem         = "https://fhir.nhs.uk/Id/nhs-number"
	ConcernCategorySystem   = Base + "/CodeSystem/concern-category"
	RelationshipSystem      = Base + "/CodeSystem/relationship"
	RoleCodeSystem          = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
	PartnershipSystem       = Base + "/Id/partnership"
	ReferenceSystem         = Base + "/Id/referral-reference"
	ReferralIDSystem        = Base + "/Id/referral"
	UKCoreEthnicCategoryURL = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
	ExtKeepIdentity         = Base + "/StructureDefinition/keep-identity-from-family"
	ExtConsentStatus        = Base + "/StructureDefinition/consent-status"
	ExtConsentReason        = Base + "/StructureDefinition/consent-reason"
	ExtConsentAuthorisedBy  = Base + "/StructureDefinition/consent-authorised-by"
	ExtObservedAt           = Base + "/StructureDefinition/concern-observed-at"
	ExtChildPresent         = Base + "/StructureDefinition/child-present"
	ExtChildDisclosure      = Base + "/StructureDefinition/child-disclosure"
	ExtInjuryToChild        = Base + "/StructureDefinition/injury-to-child"
	ExtLivesWithChild       = Base + "/StructureDefinition/lives-with-child"
	ExtDecisionDue          = Base + "/StructureDefinition/decision-due"
	ExtReceivedAt           = Base + "/StructureDefinition/received-at"
)

// Issue is one problem with a FHIR request: what is wrong and the FHIRPath of the element.
type Issue struct {
	Code       r4.IssueType
	Expression string
	Reason     string
}

// Error is a FHIR request refused before it reached the intake contract.
type Error struct {
	Status int
	Issues []Issue
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(is.Expression + " " + is.Reason)
	}
	return b.String()
}

func invalid(code r4.IssueType, expr, reason string) *Error {
	return &Error{Status: http.StatusBadRequest, Issues: []Issue{{Code: code, Expression: expr, Reason: reason}}}
}

// Outcome renders issues as an OperationOutcome.
func Outcome(issues []Issue) r4.OperationOutcome {
	oo := r4.OperationOutcome{}
	for _, is := range issues {
		d := is.Reason
		if is.Expression != "" {
			d = is.Expression + " " + is.Reason
		}
		iss := r4.OperationOutcomeIssue{Severity: r4.IssueSeverityError, Code: is.Code, Diagnostics: &d}
		if is.Expression != "" {
			iss.Expression = []string{is.Expression}
		}
		oo.Issue = append(oo.Issue, iss)
	}
	return oo
}

// WriteError writes err as an OperationOutcome with the HTTP status apierr maps its code to.
// Violations of the intake contract are mapped to FHIRPath with paths (nil: field names as
// they are); errors of this package keep their own status and issues.
func WriteError(w http.ResponseWriter, err error, paths *Paths) int {
	if fe, ok := err.(*Error); ok {
		return Write(w, fe.Status, Outcome(fe.Issues))
	}
	st := apierr.Status(err)
	var issues []Issue
	if vs := violations(err); len(vs) > 0 {
		for _, v := range vs {
			issues = append(issues, Issue{Code: issueCodeFor(v.Reason), Expression: paths.Expression(v.Field), Reason: v.Reason})
		}
	} else {
		issues = []Issue{{Code: issueType(st.Code()), Reason: st.Message()}}
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			w.Header().Set("Retry-After", apierr.RetryAfterSeconds(ri.GetRetryDelay().AsDuration()))
		}
	}
	code := apierr.HTTPCode(st.Code())
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mash"`)
	}
	return Write(w, code, Outcome(issues))
}

func violations(err error) []apierr.Violation {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e.Violations
	}
	return nil
}

func issueCodeFor(reason string) r4.IssueType {
	if strings.HasPrefix(reason, "is required") {
		return r4.IssueTypeRequired
	}
	return r4.IssueTypeInvalid
}

// issueType maps a gRPC code onto the FHIR issue type integrators expect with it.
func issueType(c codes.Code) r4.IssueType {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange:
		return r4.IssueTypeInvalid
	case codes.Unauthenticated:
		return r4.IssueTypeLogin
	case codes.PermissionDenied:
		return r4.IssueTypeForbidden
	case codes.NotFound:
		return r4.IssueTypeNotFound
	case codes.AlreadyExists:
		return r4.IssueTypeDuplicate
	case codes.Aborted, codes.FailedPrecondition:
		return r4.IssueTypeConflict
	case codes.ResourceExhausted:
		return r4.IssueTypeThrottled
	case codes.Unavailable, codes.Canceled:
		return r4.IssueTypeTransient
	case codes.DeadlineExceeded:
		return r4.IssueTypeTimeout
	default:
		return r4.IssueTypeException
	}
}

// Write writes a FHIR resource as application/fhir+json.
func Write(w http.ResponseWriter, code int, resource any) int {
	b, err := json.Marshal(resource)
	if err != nil {
		// Only a model that cannot encode itself gets here: answer as FHIR all the same.
		code, b = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"internal error"}]}`)
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
	return code
}

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }
