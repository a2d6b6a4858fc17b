// Package dashcsv writes the triage dashboard (management information) as CSV: the one
// layout both the triage API's /v1/dashboard.csv and the console's download use.
package dashcsv

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// Write writes the dashboard as section,label,value rows, one figure a row, so a spreadsheet
// can pivot it. Labels come from data (agency ids, outcome names), so one that a spreadsheet
// would read as a formula is written with a leading apostrophe.
func Write(w io.Writer, d *triagev1.GetDashboardResponse) error {
	cw := csv.NewWriter(w)
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	count := func(v int64) string { return strconv.FormatInt(v, 10) }
	rows := [][]string{
		{"section", "label", "value"},
		{"range", "from", d.GetFrom().AsTime().UTC().Format(time.RFC3339)},
		{"range", "to", d.GetTo().AsTime().UTC().Format(time.RFC3339)},
		{"summary", "referrals", count(d.GetReferrals())},
		{"summary", "decided_within_one_working_day_percent", num(d.GetDecidedWithinOneWorkingDayPercent())},
		{"summary", "median_minutes_to_decision", num(d.GetMedianMinutesToDecision())},
		{"summary", "within_rag_time_percent", num(d.GetWithinRagTimePercent())},
		{"summary", "re_referral_percent", num(d.GetReReferralPercent())},
		{"summary", "re_referral_after_nfa_percent", num(d.GetReReferralAfterNfaPercent())},
		{"summary", "step_ups", count(d.GetStepUps())},
		{"summary", "step_downs", count(d.GetStepDowns())},
		{"summary", "disagreements_raised", count(d.GetDisagreementsRaised())},
		{"summary", "disagreements_resolved", count(d.GetDisagreementsResolved())},
		{"summary", "encompass_notifications", count(d.GetEncompassNotifications())},
		{"summary", "encompass_on_time_percent", num(d.GetEncompassOnTimePercent())},
	}
	for _, t := range d.GetBySourceAgency() {
		rows = append(rows, []string{"by_source_agency", t.GetLabel(), count(t.GetCount())})
	}
	for _, t := range d.GetRagDistribution() {
		rows = append(rows, []string{"rag_distribution", t.GetLabel(), count(t.GetCount())})
	}
	for _, l := range d.GetOutcomesByLevel() {
		for _, t := range l.GetOutcomes() {
			rows = append(rows, []string{"outcomes_by_level", l.GetLevel().String() + "/" + t.GetLabel(), count(t.GetCount())})
		}
	}
	for _, sec := range []struct {
		name string
		ts   []*triagev1.AgencyTurnaround
	}{{"acknowledgement_times", d.GetAcknowledgementTimes()}, {"information_request_turnaround", d.GetInformationRequestTurnaround()}} {
		for _, t := range sec.ts {
			rows = append(rows,
				[]string{sec.name, t.GetAgency() + "/count", count(t.GetCount())},
				[]string{sec.name, t.GetAgency() + "/median_minutes", num(t.GetMedianMinutes())},
				[]string{sec.name, t.GetAgency() + "/on_time_percent", num(t.GetOnTimePercent())})
		}
	}
	for _, t := range d.GetReferralsByWeek() {
		rows = append(rows, []string{"referrals_by_week", t.GetLabel(), count(t.GetCount())})
	}
	// Lead professionals come last, so the rows above keep their places for existing readers.
	rows = append(rows, []string{"summary", "lead_professionals_named", count(d.GetLeadProfessionalsNamed())},
		[]string{"summary", "lead_professional_percent", num(d.GetLeadProfessionalPercent())})
	for _, t := range d.GetLeadProfessionalAgencies() {
		rows = append(rows, []string{"lead_professional_agencies", t.GetLabel(), count(t.GetCount())})
	}
	for _, r := range rows[1:] {
		r[1] = safe(r[1])
	}
	return cw.WriteAll(rows) // WriteAll flushes and returns the writer's error
}

// safe stops a label being read as a formula by a spreadsheet.
func safe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
