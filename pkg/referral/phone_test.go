package referral

import "testing"

func TestNormalisePhone(t *testing.T) {
	for in, want := range map[string]string{
		"01443 000000":        "+441443000000",
		"(01443) 000-000":     "+441443000000",
		"07700 900123":        "+447700900123",
		"07700.900.123":       "+447700900123",
		"+44 (0)1443 000-000": "+441443000000",
		"+44 1443 000000":     "+441443000000",
		"0044 1443 000000":    "+441443000000",
		"016977 3000":         "+44169773000",
		"+353 1 000 0000":     "+35310000000",
		"00 353 1 000 0000":   "+35310000000",
		"+1 (202) 555-0100":   "+12025550100",
	} {
		if got, reason := NormalisePhone(in); got != want || reason != "" {
			t.Errorf("NormalisePhone(%q) = %q, %q; want %q", in, got, reason, want)
		}
	}
	for _, in := range []string{
		"1443 000000",       // neither 0, + nor 00
		"01443 000",         // too short for a UK number
		"014430000000000",   // too long for a UK number
		"+44 1443 00",       // too short after +44
		"+0 1443 000000",    // a country code never starts with 0
		"+1234567890123456", // longer than E.164
		"+123 45",           // too short
		"01443 ABC000",      // letters
		"01443+000000",      // + inside
		"ext. 01443 000000", // words
	} {
		if got, reason := NormalisePhone(in); got != "" || reason == "" {
			t.Errorf("NormalisePhone(%q) = %q, %q; want a reason", in, got, reason)
		}
	}
}
