package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mash-hub/mash/pkg/calendar"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"github.com/mash-hub/mash/services/mash/demo"
)

// sourced is one referral to submit and the agency that refers it.
type sourced struct {
	agency string
	sub    *intakev1.ReferralSubmission
}

// demoMix is the demo's mix of referrals (services/mash/demo): its scenarios in their
// weights, from its referring agencies, most of them below the immediate-danger threshold,
// as a hub's front door sees them. The example referral alone (Red, level 4, eight agencies
// told) is the pipeline's dearest case, not its usual one.
func demoMix(n int) ([]sourced, error) {
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		return nil, err
	}
	plan, err := demo.Generate(demo.Params{Seed: 22, Referrals: min(max(n, 1), demo.MaxReferrals), Days: 60, End: time.Now(), Calendar: cal})
	if err != nil {
		return nil, err
	}
	out := make([]sourced, len(plan.Referrals))
	for i, r := range plan.Referrals {
		// The plan's referrals arrive over its days and the bench's now: each child's dates
		// move with them, so the child is the age the scenario chose (a 17-year-old is not
		// 18 by the time the bench refers them).
		days := int(plan.End.Sub(r.ReceivedAt).Hours() / 24)
		c := r.Submission.GetChild()
		c.DateOfBirth, c.DueDate = laterBy(c.GetDateOfBirth(), days), laterBy(c.GetDueDate(), days)
		out[i] = sourced{agency: r.Source.Agency, sub: r.Submission}
	}
	return out, nil
}

// laterBy is the ISO date d moved days later; "" stays "".
func laterBy(d string, days int) string {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return d
	}
	return t.AddDate(0, 0, days).Format(time.DateOnly)
}

// printDemoSources lists the demo's referring agencies, "agency kind" per line, for the
// bench to make each a referrer's credential.
func printDemoSources() {
	for _, s := range demo.Sources() {
		fmt.Println(s.Agency, s.Kind)
	}
}

// readSourceTokens reads "agency token" lines.
func readSourceTokens(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-source-tokens: %w", err)
	}
	defer f.Close()
	tokens := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("-source-tokens %s line %d: want \"agency token\"", path, line)
		}
		tokens[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("-source-tokens: %w", err)
	}
	if len(tokens) == 0 {
		return nil, errors.New("-source-tokens: no credentials in the file")
	}
	return tokens, nil
}
