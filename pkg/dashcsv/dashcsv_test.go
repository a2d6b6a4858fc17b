package dashcsv

import (
	"bytes"
	"encoding/csv"
	"testing"

	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// A label a spreadsheet would run as a formula is written as text; figures stay numbers.
func TestWriteGuardsLabelsAgainstFormulas(t *testing.T) {
	d := &triagev1.GetDashboardResponse{Referrals: 3, BySourceAgency: []*triagev1.Tally{
		{Label: "=HYPERLINK(\"http://x\")", Count: 2}, {Label: "police", Count: 1}}}
	var buf bytes.Buffer
	if err := Write(&buf, d); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r[0]+","+r[1]] = r[2]
	}
	for k, v := range map[string]string{
		"section,label":     "value",
		"summary,referrals": "3",
		"by_source_agency,'=HYPERLINK(\"http://x\")": "2",
		"by_source_agency,police":                    "1",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (rows %v)", k, got[k], v, rows)
		}
	}
}
