package console

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/server"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
)

// A contact is what a practitioner takes by telephone or email: one referrer (a
// professional, or a member of the public who may stay anonymous), one or more concerns,
// and one or more children of a family. It goes to intake as one referral per child through the same
// API and validation every referring system uses, the children's referrals sharing a family
// group, so each child is decided on their own and the hub sees them together.

// maxContactChildren is how many children one contact form takes.
const maxContactChildren = 8

// maxContactConcerns is how many concerns one contact form takes.
const maxContactConcerns = 8

// concernPrefix is the form's field prefix of the nth concern: the first keeps the names
// the form had when it took one concern ("concern-summary"), so saved links and scripts
// still fill it; later ones are numbered ("concern-2-summary").
func concernPrefix(n int) string {
	if n <= 1 {
		return "concern-"
	}
	return fmt.Sprintf("concern-%d-", n)
}

// concernFields are the fields of one concern row, without the prefix.
var concernFields = []string{"category", "summary", "observed_at", "location", "child_present", "disclosure", "injury"}

// contactHouseholdRows is how many household members the form offers.
const contactHouseholdRows = 2

// contactIDPattern is the form's contact id: made when the form is first shown, it keys
// the referrals' external references, so sending the same form twice records nothing twice.
var contactIDPattern = regexp.MustCompile(`^[0-9]{8}-[0-9a-f]{12}$`)

// contactData is what the contact form shows.
type contactData struct {
	ContactID    string
	Children     []int
	Concerns     []concernRow
	Household    []int
	Partnerships []string
	Categories   []intakev1.ConcernCategory
	Relations    []intakev1.Relationship
	Sexes        []intakev1.Sex
	Grades       []intakev1.DomesticAbuseRisk
	Consents     []intakev1.ConsentStatus
	// Recorded are the referrals the contact made, once it is saved.
	Recorded []recordedReferral
	// Now prefills when the concern was seen: the time of the call, which the
	// practitioner changes when the caller says otherwise.
	Now string
}

// concernRow is one concern's place on the form.
type concernRow struct {
	N      int
	Prefix string
}

// recordedReferral is one referral a contact made.
type recordedReferral struct {
	ReferralID, Reference, Child string
	Replay                       bool
}

func (s *Service) contactForm(w http.ResponseWriter, r *http.Request, rs *reqState) {
	pg := s.newPage(r, rs, "contact.title")
	pg.Data = s.contactData(rs, newContactID(s.now()), 1, 1)
	s.render(w, http.StatusOK, "contact", pg)
}

func newContactID(now time.Time) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return now.In(london).Format("20060102") + "-" + hex.EncodeToString(b)
}

func (s *Service) contactData(rs *reqState, id string, children, concerns int) contactData {
	d := contactData{ContactID: id, Partnerships: rs.ident.Partnerships, Now: s.now().In(london).Format("2006-01-02T15:04")}
	for i := 1; i <= children; i++ {
		d.Children = append(d.Children, i)
	}
	for i := 1; i <= concerns; i++ {
		d.Concerns = append(d.Concerns, concernRow{N: i, Prefix: concernPrefix(i)})
	}
	for i := 1; i <= contactHouseholdRows; i++ {
		d.Household = append(d.Household, i)
	}
	for v := range intakev1.ConcernCategory_name {
		if v != 0 {
			d.Categories = append(d.Categories, intakev1.ConcernCategory(v))
		}
	}
	slices.Sort(d.Categories)
	for v := range intakev1.Relationship_name {
		if v != 0 {
			d.Relations = append(d.Relations, intakev1.Relationship(v))
		}
	}
	slices.Sort(d.Relations)
	d.Sexes = []intakev1.Sex{intakev1.Sex_FEMALE, intakev1.Sex_MALE, intakev1.Sex_INDETERMINATE, intakev1.Sex_SEX_NOT_KNOWN}
	d.Grades = []intakev1.DomesticAbuseRisk{intakev1.DomesticAbuseRisk_STANDARD, intakev1.DomesticAbuseRisk_MEDIUM,
		intakev1.DomesticAbuseRisk_HIGH, intakev1.DomesticAbuseRisk_NOT_ASSESSED}
	d.Consents = []intakev1.ConsentStatus{intakev1.ConsentStatus_GIVEN, intakev1.ConsentStatus_REFUSED, intakev1.ConsentStatus_NOT_SOUGHT}
	return d
}

// recordContact sends the contact to intake, one referral per child. The form is shown
// again with every fault beside its field when intake or the console refuses it. Intake
// validates one child's referral at a time; a referral already recorded is recorded once
// whatever the retries, as its external reference and content are the same.
func (s *Service) recordContact(w http.ResponseWriter, r *http.Request, rs *reqState) {
	f := r.PostForm
	id := f.Get("contact_id")
	if !contactIDPattern.MatchString(id) {
		id = newContactID(s.now())
	}
	n, _ := strconv.Atoi(f.Get("children"))
	n = min(max(n, 1), maxContactChildren)
	nc, _ := strconv.Atoi(f.Get("concerns"))
	nc = min(max(nc, 1), maxContactConcerns)
	pg := s.newPage(r, rs, "contact.title")
	pg.Form = f
	if f.Get("add_child") != "" {
		// Another child's fields, keeping what was typed (no script needed).
		pg.Data = s.contactData(rs, id, min(n+1, maxContactChildren), nc)
		s.render(w, http.StatusOK, "contact", pg)
		return
	}
	if f.Get("add_concern") != "" {
		pg.Data = s.contactData(rs, id, n, min(nc+1, maxContactConcerns))
		s.render(w, http.StatusOK, "contact", pg)
		return
	}
	if v := f.Get("remove_concern"); v != "" {
		// The row goes and those after it move up, keeping what was typed in them.
		if k, err := strconv.Atoi(v); err == nil && k >= 1 && k <= nc && nc > 1 {
			removeConcern(f, k, nc)
			nc--
		}
		pg.Data = s.contactData(rs, id, n, nc)
		s.render(w, http.StatusOK, "contact", pg)
		return
	}
	subs, pre := contactSubmissions(f, id, n, nc)
	if len(pre) > 0 {
		for _, c := range pre {
			pg.Errors = append(pg.Errors, fieldErr{Field: c.field, Text: pg.T(c.key)})
		}
		pg.Data = s.contactData(rs, id, n, nc)
		s.render(w, http.StatusBadRequest, "contact", pg)
		return
	}
	var recorded []recordedReferral
	for i, sub := range subs {
		resp, err := s.b.Intake.SubmitReferral(rs.call(r.Context()), &intakev1.SubmitReferralRequest{Referral: sub})
		if err != nil {
			st, _ := status.FromError(err)
			code, refused := refusalStatus(st.Code())
			if !refused {
				s.pageError(w, r, rs, err)
				return
			}
			pg.Errors = contactViolations(st, i+1)
			if len(pg.Errors) == 0 || st.Code() != codes.InvalidArgument {
				pg.ErrorText = st.Message()
			}
			if len(recorded) > 0 {
				pg.ErrorKey = "contact.partly_recorded"
			}
			d := s.contactData(rs, id, n, nc)
			d.Recorded = recorded
			pg.Data = d
			s.render(w, code, "contact", pg)
			return
		}
		ack := resp.GetAcknowledgement()
		child := strings.TrimSpace(sub.GetChild().GetGivenName() + " " + sub.GetChild().GetFamilyName())
		recorded = append(recorded, recordedReferral{ReferralID: ack.GetReferralId(), Reference: ack.GetReference(), Child: child, Replay: ack.GetReplay()})
		s.log.Info("console: contact recorded", zap.String("referral_id", ack.GetReferralId()), zap.String("reference", ack.GetReference()),
			zap.Int("child", i+1), zap.String("session", rs.sessionID), zap.String("request_id", server.RequestID(r.Context())))
	}
	pg = s.newPage(r, rs, "contact.done_title")
	d := s.contactData(rs, newContactID(s.now()), 1, 1)
	d.Recorded = recorded
	pg.Data = d
	s.render(w, http.StatusOK, "contact", pg)
}

// contactSubmissions builds one submission per child from the form. The checks here are
// only those the form itself needs (a date and time it can read, a number, a choice from
// its own lists); everything else intake checks, as for every referring system.
func contactSubmissions(f map[string][]string, contactID string, children, concerns int) ([]*intakev1.ReferralSubmission, []check) {
	get := func(k string) string {
		if v := f[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	on := func(k string) bool { return get(k) != "" }
	var errs []check
	bad := func(field, key string) { errs = append(errs, check{field, key}) }

	base := &intakev1.ReferralSubmission{
		Partnership: get("partnership"),
		Referrer: &intakev1.Referrer{Name: get("referrer-name"), Role: get("referrer-role"), Phone: get("referrer-phone"),
			Email: get("referrer-email"), KeepIdentityFromFamily: on("referrer-keep_identity"), Anonymous: on("referrer-anonymous")},
		Narrative: get("narrative"),
		Consent:   &intakev1.Consent{Reason: get("consent-reason"), AuthorisedBy: get("consent-authorised_by")},
	}
	if v, ok := intakev1.ConsentStatus_value[get("consent-status")]; ok {
		base.Consent.Status = intakev1.ConsentStatus(v)
	}
	for n := 1; n <= concerns; n++ {
		p := concernPrefix(n)
		concern := &intakev1.Concern{Summary: get(p + "summary"), Location: get(p + "location"),
			ChildPresent: on(p + "child_present"), ChildDisclosure: on(p + "disclosure"), InjuryToChild: on(p + "injury")}
		if v, ok := intakev1.ConcernCategory_value[get(p+"category")]; ok {
			concern.Category = intakev1.ConcernCategory(v)
		}
		if t := get(p + "observed_at"); t != "" {
			if at, err := time.ParseInLocation("2006-01-02T15:04", t, london); err != nil {
				bad(p+"observed_at", "contact.datetime_invalid")
			} else {
				concern.ObservedAt = timestamppb.New(at)
			}
		}
		// Every row is sent, an empty one too: intake names what it lacks, and the form
		// shows that beside the row (rows are removed with their own button).
		base.Concerns = append(base.Concerns, concern)
	}
	risk := &intakev1.RiskIndicators{ImmediateDanger: on("risk-immediate_danger"), SuspectHasAccessToChild: on("risk-suspect_access"),
		DangerousAdultWithAccess: on("risk-dangerous_adult"), ChildNonMobile: on("risk-non_mobile")}
	if v, ok := intakev1.DomesticAbuseRisk_value[get("risk-dash")]; ok {
		risk.DomesticAbuseRisk = intakev1.DomesticAbuseRisk(v)
	}
	if t := get("risk-police_incidents"); t != "" {
		if n, err := strconv.Atoi(t); err != nil || n < 0 {
			bad("risk-police_incidents", "contact.number_invalid")
		} else {
			risk.PoliceIncidentsLast_12Months = int32(n)
		}
	}
	if proto.Size(risk) > 0 {
		base.RiskIndicators = risk
	}
	for m := 1; m <= contactHouseholdRows; m++ {
		p := fmt.Sprintf("household-%d-", m)
		if get(p+"relationship") == "" && get(p+"given_name") == "" && get(p+"family_name") == "" {
			continue
		}
		h := &intakev1.HouseholdMember{GivenName: get(p + "given_name"), FamilyName: get(p + "family_name"),
			DateOfBirth: get(p + "dob"), LivesWithChild: on(p + "lives_with")}
		if v, ok := intakev1.Relationship_value[get(p+"relationship")]; ok {
			h.Relationship = intakev1.Relationship(v)
		}
		base.Household = append(base.Household, h)
	}
	address := &intakev1.Address{Line1: get("address-line1"), Line2: get("address-line2"), Town: get("address-town"),
		Postcode: strings.ToUpper(get("address-postcode"))}
	if proto.Size(address) == 0 {
		address = nil
	}
	if children > 1 {
		base.FamilyGroup = "CONTACT-" + contactID
	}
	var subs []*intakev1.ReferralSubmission
	for i := 1; i <= children; i++ {
		p := fmt.Sprintf("child-%d-", i)
		sub := proto.Clone(base).(*intakev1.ReferralSubmission)
		sub.ExternalReference = fmt.Sprintf("CONTACT-%s-%d", contactID, i)
		ch := &intakev1.Child{GivenName: get(p + "given_name"), FamilyName: get(p + "family_name"), NhsNumber: strings.ReplaceAll(get(p+"nhs_number"), " ", ""),
			School: get(p + "school"), PreferredLanguage: get(p + "language"), Address: address}
		if v, ok := intakev1.Sex_value[get(p+"sex")]; ok {
			ch.Sex = intakev1.Sex(v)
		}
		switch get(p + "age") {
		case "estimated":
			n, err := strconv.Atoi(get(p + "estimated_age"))
			if err != nil {
				bad(p+"estimated_age", "contact.age_estimate_missing")
			} else {
				ch.EstimatedAgeYears = proto.Int32(int32(n))
			}
		case "unknown":
			ch.AgeUnknown = true
		default:
			ch.DateOfBirth = get(p + "dob")
		}
		sub.Child = ch
		subs = append(subs, sub)
	}
	return subs, errs
}

// removeConcern deletes concern row k of n from the form, moving later rows up.
func removeConcern(f url.Values, k, n int) {
	for i := k; i < n; i++ {
		from, to := concernPrefix(i+1), concernPrefix(i)
		for _, name := range concernFields {
			if v, ok := f[from+name]; ok {
				f[to+name] = v
			} else {
				delete(f, to+name)
			}
		}
	}
	for _, name := range concernFields {
		delete(f, concernPrefix(n)+name)
	}
	f.Set("concerns", strconv.Itoa(n-1))
}

// contactViolations reads intake's refusal of child's referral as the form's fields.
func contactViolations(st *status.Status, child int) []fieldErr {
	var out []fieldErr
	seen := map[string]bool{}
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, fv := range br.GetFieldViolations() {
			field := contactField(fv.GetField(), child)
			if seen[field] {
				continue
			}
			seen[field] = true
			out = append(out, fieldErr{Field: field, Text: fv.GetDescription()})
		}
	}
	return out
}

var indexPattern = regexp.MustCompile(`\[(\d+)\]`)

// concernPath is a concern's field after the index rewriting: "concerns-2-summary", or
// "concerns-2" for the concern as a whole.
var concernPath = regexp.MustCompile(`^concerns-(\d+)(?:-|$)`)

// contactFields renames intake's field paths (after contactField's general rewriting) to
// the form's field names where they differ.
var contactFields = map[string]string{
	"referrer":                            "referrer-name",
	"child":                               "child-N-given_name",
	"child-date_of_birth":                 "child-N-dob",
	"child-age_unknown":                   "child-N-estimated_age",
	"child-estimated_age_years":           "child-N-estimated_age",
	"child-preferred_language":            "child-N-language",
	"child-address":                       "address-line1",
	"concerns":                            "concern-summary",
	"risk_indicators-domestic_abuse_risk": "risk-dash",
	"risk_indicators-police_incidents_last12_months": "risk-police_incidents",
	"consent":            "consent-status",
	"external_reference": "partnership",
	"family_group":       "partnership",
}

// contactField maps an intake field path ("child.dateOfBirth", "household[1].relationship",
// "concerns[0].observedAt") to the contact form's field ("child-2-dob",
// "household-2-relationship", "concern-observed_at") for the child whose referral it was.
func contactField(path string, child int) string {
	// household[1] is the form's second row the contact used; rows left empty were not
	// sent, so a later row moves up. The form keeps rows in order, so this is exact when
	// rows are filled from the first.
	path = indexPattern.ReplaceAllStringFunc(path, func(m string) string {
		n, _ := strconv.Atoi(m[1 : len(m)-1])
		return "-" + strconv.Itoa(n+1)
	})
	parts := strings.Split(path, ".")
	for i, p := range parts {
		parts[i] = formField(p)
	}
	f := strings.Join(parts, "-")
	if m := concernPath.FindStringSubmatch(f); m != nil {
		n, _ := strconv.Atoi(m[1])
		if f = strings.TrimPrefix(f, m[0]); f == "" {
			f = "summary" // the concern as a whole: shown by its summary
		}
		f = concernPrefix(n) + f
	}
	f = strings.Replace(f, "child-address-", "address-", 1)
	if to, ok := contactFields[f]; ok {
		f = to
	} else if strings.HasPrefix(f, "child-") {
		f = "child-N-" + strings.TrimPrefix(f, "child-")
	} else if strings.HasPrefix(f, "household-") {
		f = strings.Replace(f, "-date_of_birth", "-dob", 1)
	}
	return strings.Replace(f, "child-N-", "child-"+strconv.Itoa(child)+"-", 1)
}
