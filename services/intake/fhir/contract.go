package fhir

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// resolver finds the resources a ServiceRequest refers to.
type resolver struct {
	others    []resource
	contained bool
}

func (rv resolver) find(ref *r4.Reference, typ string) (resource, bool) {
	if ref == nil || ref.Reference == nil {
		return resource{}, false
	}
	s := *ref.Reference
	for _, o := range rv.others {
		if o.typ != typ {
			continue
		}
		switch {
		case rv.contained && s == "#"+o.id,
			!rv.contained && o.fullURL != "" && s == o.fullURL,
			!rv.contained && o.id != "" && s == o.typ+"/"+o.id:
			return o, true
		}
	}
	return resource{}, false
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func mapServiceRequest(srRes resource, others []resource, contained bool) (*Request, *Error) {
	root := srRes.path
	sr, err := r4.UnmarshalServiceRequest(srRes.raw)
	if err != nil {
		return nil, invalid(r4.IssueTypeStructure, root, "is not a valid ServiceRequest: "+describe(err))
	}
	rv := resolver{others: others, contained: contained}
	paths := &Paths{root: root, fields: map[string]string{}}
	sub := &intakev1.ReferralSubmission{}
	req := &Request{Submission: sub, Paths: paths}

	paths.set("externalReference", root+".identifier")
	for i, id := range sr.Identifier {
		if str(id.Value) != "" {
			sub.ExternalReference, req.Identifier = *id.Value, id
			paths.set("externalReference", fmt.Sprintf("%s.identifier[%d].value", root, i))
			break
		}
	}

	paths.set("partnership", root+".performer")
	for i, p := range sr.Performer {
		if p.Identifier != nil && str(p.Identifier.System) == PartnershipSystem {
			sub.Partnership = str(p.Identifier.Value)
			paths.set("partnership", fmt.Sprintf("%s.performer[%d].identifier.value", root, i))
			break
		}
	}

	patient, ok := rv.find(&sr.Subject, "Patient")
	if !ok {
		return nil, invalid(r4.IssueTypeRequired, root+".subject", "must refer to the child's Patient resource, held in the request")
	}
	paths.set("child", root+".subject")
	if ferr := mapPatient(sub, paths, patient); ferr != nil {
		return nil, ferr
	}
	if ferr := mapRequester(sub, paths, rv, sr, root); ferr != nil {
		return nil, ferr
	}
	for _, o := range others {
		if o.typ != "RelatedPerson" {
			continue
		}
		if ferr := mapRelatedPerson(sub, paths, o, patient, contained); ferr != nil {
			return nil, ferr
		}
	}
	if ferr := mapReasons(sub, paths, sr, root); ferr != nil {
		return nil, ferr
	}
	if sr.Priority != nil && *sr.Priority == r4.RequestPriorityStat {
		sub.RiskIndicators = &intakev1.RiskIndicators{ImmediateDanger: true}
	}
	mapConsent(sub, paths, sr, root)
	var notes []string
	for _, n := range sr.Note {
		if n.Text != "" {
			notes = append(notes, n.Text)
		}
	}
	sub.Narrative = strings.Join(notes, "\n\n")
	paths.set("narrative", root+".note")
	return req, nil
}

func extIndex(exts []r4.Extension, url string) int {
	for i, e := range exts {
		if e.Url == url {
			return i
		}
	}
	return -1
}

func extBool(exts []r4.Extension, url string) bool {
	if i := extIndex(exts, url); i >= 0 && exts[i].ValueBoolean != nil {
		return *exts[i].ValueBoolean
	}
	return false
}

func extPath(base string, i int) string {
	return fmt.Sprintf("%s.extension[%d]", base, i)
}

func mapPatient(sub *intakev1.ReferralSubmission, paths *Paths, res resource) *Error {
	p, err := r4.UnmarshalPatient(res.raw)
	if err != nil {
		return invalid(r4.IssueTypeStructure, res.path, "is not a valid Patient: "+describe(err))
	}
	at := res.path
	ch := &intakev1.Child{}
	sub.Child = ch
	if n, i := pickName(p.Name); i >= 0 {
		if len(n.Given) > 0 {
			ch.GivenName = n.Given[0]
		}
		ch.FamilyName = str(n.Family)
		paths.set("child.givenName", fmt.Sprintf("%s.name[%d].given[0]", at, i))
		paths.set("child.familyName", fmt.Sprintf("%s.name[%d].family", at, i))
	} else {
		paths.set("child.givenName", at+".name")
		paths.set("child.familyName", at+".name")
	}
	ch.DateOfBirth = str(p.BirthDate)
	paths.set("child.dateOfBirth", at+".birthDate")
	for i, id := range p.Identifier {
		if str(id.System) == NHSNumberSystem {
			ch.NhsNumber = strings.ReplaceAll(str(id.Value), " ", "")
			paths.set("child.nhsNumber", fmt.Sprintf("%s.identifier[%d].value", at, i))
			break
		}
	}
	if p.Gender != nil {
		ch.Sex = map[r4.AdministrativeGender]intakev1.Sex{
			r4.AdministrativeGenderMale: intakev1.Sex_MALE, r4.AdministrativeGenderFemale: intakev1.Sex_FEMALE,
			r4.AdministrativeGenderOther: intakev1.Sex_INDETERMINATE, r4.AdministrativeGenderUnknown: intakev1.Sex_SEX_NOT_KNOWN,
		}[*p.Gender]
	}
	paths.set("child.sex", at+".gender")
	if len(p.Address) > 0 {
		a := p.Address[0]
		addr := &intakev1.Address{Town: str(a.City), County: str(a.District), Postcode: str(a.PostalCode)}
		if len(a.Line) > 0 {
			addr.Line1 = a.Line[0]
		}
		if len(a.Line) > 1 {
			addr.Line2 = strings.Join(a.Line[1:], ", ")
		}
		ch.Address = addr
		ap := at + ".address[0]"
		paths.set("child.address", ap)
		paths.set("child.address.line1", ap+".line[0]")
		paths.set("child.address.line2", ap+".line[1]")
		paths.set("child.address.town", ap+".city")
		paths.set("child.address.county", ap+".district")
		paths.set("child.address.postcode", ap+".postalCode")
	}
	if len(p.Communication) > 0 {
		for _, c := range p.Communication[0].Language.Coding {
			if code := str(c.Code); code != "" {
				// BCP 47 tags such as en-GB: the contract keeps the language alone.
				ch.PreferredLanguage = strings.ToLower(strings.SplitN(code, "-", 2)[0])
				break
			}
		}
		paths.set("child.preferredLanguage", at+".communication[0].language")
	}
	if i := extIndex(p.Extension, UKCoreEthnicCategoryURL); i >= 0 && p.Extension[i].ValueCodeableConcept != nil {
		cc := p.Extension[i].ValueCodeableConcept
		ch.Ethnicity = str(cc.Text)
		if ch.Ethnicity == "" && len(cc.Coding) > 0 {
			ch.Ethnicity = str(cc.Coding[0].Display)
		}
		paths.set("child.ethnicity", extPath(at, i))
	}
	return nil
}

// pickName prefers the official name, as PDS and GP systems mark the registered one.
func pickName(names []r4.HumanName) (r4.HumanName, int) {
	for i, n := range names {
		if n.Use != nil && *n.Use == r4.NameUseOfficial {
			return n, i
		}
	}
	if len(names) > 0 {
		return names[0], 0
	}
	return r4.HumanName{}, -1
}

func mapRequester(sub *intakev1.ReferralSubmission, paths *Paths, rv resolver, sr r4.ServiceRequest, root string) *Error {
	ref := &intakev1.Referrer{KeepIdentityFromFamily: extBool(sr.Extension, ExtKeepIdentity)}
	sub.Referrer = ref
	paths.set("referrer", root+".requester")
	var telecom []r4.ContactPoint
	telecomAt := ""
	pract, ok := rv.find(sr.Requester, "Practitioner")
	if role, isRole := rv.find(sr.Requester, "PractitionerRole"); isRole {
		pr, err := r4.UnmarshalPractitionerRole(role.raw)
		if err != nil {
			return invalid(r4.IssueTypeStructure, role.path, "is not a valid PractitionerRole: "+describe(err))
		}
		if len(pr.Code) > 0 {
			ref.Role = str(pr.Code[0].Text)
			if ref.Role == "" && len(pr.Code[0].Coding) > 0 {
				ref.Role = str(pr.Code[0].Coding[0].Display)
			}
		}
		paths.set("referrer.role", role.path+".code[0]")
		telecom, telecomAt = pr.Telecom, role.path
		pract, ok = rv.find(pr.Practitioner, "Practitioner")
	}
	if !ok {
		return invalid(r4.IssueTypeRequired, root+".requester", "must refer to the referring Practitioner or PractitionerRole, held in the request")
	}
	p, err := r4.UnmarshalPractitioner(pract.raw)
	if err != nil {
		return invalid(r4.IssueTypeStructure, pract.path, "is not a valid Practitioner: "+describe(err))
	}
	if n, i := pickName(p.Name); i >= 0 {
		ref.Name = str(n.Text)
		if ref.Name == "" {
			ref.Name = strings.TrimSpace(strings.Join(append(append(append([]string{}, n.Prefix...), n.Given...), str(n.Family)), " "))
		}
		paths.set("referrer.name", fmt.Sprintf("%s.name[%d]", pract.path, i))
	} else {
		paths.set("referrer.name", pract.path+".name")
	}
	if telecomAt == "" {
		telecom, telecomAt = p.Telecom, pract.path
	}
	paths.set("referrer.phone", telecomAt+".telecom")
	paths.set("referrer.email", telecomAt+".telecom")
	for i, t := range telecom {
		if t.System == nil || str(t.Value) == "" {
			continue
		}
		switch *t.System {
		case r4.ContactPointSystemPhone:
			if ref.Phone == "" {
				ref.Phone = *t.Value
				paths.set("referrer.phone", fmt.Sprintf("%s.telecom[%d].value", telecomAt, i))
			}
		case r4.ContactPointSystemEmail:
			if ref.Email == "" {
				ref.Email = *t.Value
				paths.set("referrer.email", fmt.Sprintf("%s.telecom[%d].value", telecomAt, i))
			}
		}
	}
	return nil
}

// roleCodes are the v3 RoleCode personal relationships with a contract counterpart.
var roleCodes = map[string]intakev1.Relationship{
	"MTH": intakev1.Relationship_MOTHER, "FTH": intakev1.Relationship_FATHER,
	"STPPRN": intakev1.Relationship_STEP_PARENT, "SIB": intakev1.Relationship_SIBLING,
	"HSIB": intakev1.Relationship_HALF_SIBLING, "STPSIB": intakev1.Relationship_STEP_SIBLING,
	"GRPRN": intakev1.Relationship_GRANDPARENT, "AUNT": intakev1.Relationship_AUNT_OR_UNCLE,
	"UNCLE": intakev1.Relationship_AUNT_OR_UNCLE, "FRND": intakev1.Relationship_FAMILY_FRIEND,
}

func mapRelatedPerson(sub *intakev1.ReferralSubmission, paths *Paths, res resource, patient resource, contained bool) *Error {
	rp, err := r4.UnmarshalRelatedPerson(res.raw)
	if err != nil {
		return invalid(r4.IssueTypeStructure, res.path, "is not a valid RelatedPerson: "+describe(err))
	}
	if _, ok := (resolver{others: []resource{patient}, contained: contained}).find(&rp.Patient, "Patient"); !ok {
		return invalid(r4.IssueTypeInvalid, res.path+".patient", "must refer to the child's Patient of the ServiceRequest")
	}
	i := len(sub.Household)
	field := fmt.Sprintf("household[%d]", i)
	m := &intakev1.HouseholdMember{DateOfBirth: str(rp.BirthDate), LivesWithChild: extBool(rp.Extension, ExtLivesWithChild)}
	if n, ni := pickName(rp.Name); ni >= 0 {
		if len(n.Given) > 0 {
			m.GivenName = n.Given[0]
		}
		m.FamilyName = str(n.Family)
		paths.set(field+".givenName", fmt.Sprintf("%s.name[%d].given[0]", res.path, ni))
		paths.set(field+".familyName", fmt.Sprintf("%s.name[%d].family", res.path, ni))
	}
	paths.set(field, res.path)
	paths.set(field+".dateOfBirth", res.path+".birthDate")
	paths.set(field+".relationship", res.path+".relationship")
	for ci, cc := range rp.Relationship {
		for ki, c := range cc.Coding {
			var rel intakev1.Relationship
			switch str(c.System) {
			case RoleCodeSystem:
				rel = roleCodes[str(c.Code)]
			case RelationshipSystem:
				rel = intakev1.Relationship(intakev1.Relationship_value[str(c.Code)])
			}
			if rel == intakev1.Relationship_RELATIONSHIP_UNSPECIFIED {
				continue
			}
			m.Relationship = rel
			paths.set(field+".relationship", fmt.Sprintf("%s.relationship[%d].coding[%d]", res.path, ci, ki))
			break
		}
		if m.Relationship != intakev1.Relationship_RELATIONSHIP_UNSPECIFIED {
			break
		}
	}
	if m.Relationship == intakev1.Relationship_RELATIONSHIP_UNSPECIFIED && len(rp.Relationship) > 0 {
		return invalid(r4.IssueTypeCodeInvalid, res.path+".relationship",
			"has no code mash knows: use a v3 RoleCode (MTH, FTH, STPPRN, SIB, HSIB, STPSIB, GRPRN, AUNT, UNCLE, FRND) or "+RelationshipSystem)
	}
	sub.Household = append(sub.Household, m)
	return nil
}

// category reads a contract concern category from a code or text; ok is false when there is
// neither a known code nor text naming a category.
func category(cc r4.CodeableConcept) (intakev1.ConcernCategory, bool) {
	for _, c := range cc.Coding {
		if str(c.System) == ConcernCategorySystem {
			v, ok := intakev1.ConcernCategory_value[str(c.Code)]
			return intakev1.ConcernCategory(v), ok && v != 0
		}
	}
	name, _ := splitCategoryText(str(cc.Text))
	v, ok := intakev1.ConcernCategory_value[name]
	return intakev1.ConcernCategory(v), ok && v != 0
}

// splitCategoryText reads reason text that names a category as the contract spells it,
// alone ("NEGLECT") or followed by the summary ("NEGLECT: what was seen").
func splitCategoryText(text string) (name, summary string) {
	name, summary, _ = strings.Cut(text, ":")
	return strings.ToUpper(strings.TrimSpace(name)), strings.TrimSpace(summary)
}

func mapReasons(sub *intakev1.ReferralSubmission, paths *Paths, sr r4.ServiceRequest, root string) *Error {
	paths.set("concerns", root+".reasonCode")
	var issues []Issue
	for i, cc := range sr.ReasonCode {
		at := fmt.Sprintf("%s.reasonCode[%d]", root, i)
		cat, ok := category(cc)
		if !ok {
			issues = append(issues, Issue{Code: r4.IssueTypeCodeInvalid, Expression: at,
				Reason: "names no concern category: use a code of " + ConcernCategorySystem + ", or text that is a category such as NEGLECT"})
			continue
		}
		c := &intakev1.Concern{Category: cat, ChildPresent: extBool(cc.Extension, ExtChildPresent),
			ChildDisclosure: extBool(cc.Extension, ExtChildDisclosure), InjuryToChild: extBool(cc.Extension, ExtInjuryToChild)}
		field := fmt.Sprintf("concerns[%d]", len(sub.Concerns))
		paths.set(field, at)
		paths.set(field+".category", at+".coding")
		// The text is the concern's summary, less the category's name where it leads.
		c.Summary = str(cc.Text)
		if name, summary := splitCategoryText(c.Summary); name == cat.String() {
			c.Summary = summary
		}
		paths.set(field+".summary", at+".text")
		paths.set(field+".observedAt", at+".extension")
		if ei := extIndex(cc.Extension, ExtObservedAt); ei >= 0 {
			paths.set(field+".observedAt", extPath(at, ei)+".valueDateTime")
			if t, err := time.Parse(time.RFC3339, str(cc.Extension[ei].ValueDateTime)); err == nil {
				c.ObservedAt = timestamppb.New(t)
			} else {
				issues = append(issues, Issue{Code: r4.IssueTypeValue, Expression: extPath(at, ei) + ".valueDateTime",
					Reason: "must be a FHIR dateTime with a time and zone, e.g. 2026-11-25T16:30:00Z"})
			}
		}
		sub.Concerns = append(sub.Concerns, c)
	}
	if len(issues) > 0 {
		return &Error{Status: http.StatusBadRequest, Issues: issues}
	}
	return nil
}

func mapConsent(sub *intakev1.ReferralSubmission, paths *Paths, sr r4.ServiceRequest, root string) {
	si := extIndex(sr.Extension, ExtConsentStatus)
	if si < 0 {
		paths.set("consent", root+".extension")
		return
	}
	c := &intakev1.Consent{Status: intakev1.ConsentStatus(intakev1.ConsentStatus_value[str(sr.Extension[si].ValueCode)])}
	paths.set("consent", extPath(root, si))
	paths.set("consent.status", extPath(root, si)+".valueCode")
	paths.set("consent.reason", root+".extension")
	if i := extIndex(sr.Extension, ExtConsentReason); i >= 0 {
		c.Reason = str(sr.Extension[i].ValueString)
		paths.set("consent.reason", extPath(root, i)+".valueString")
	}
	if i := extIndex(sr.Extension, ExtConsentAuthorisedBy); i >= 0 {
		c.AuthorisedBy = str(sr.Extension[i].ValueString)
		paths.set("consent.authorisedBy", extPath(root, i)+".valueString")
	}
	sub.Consent = c
}
