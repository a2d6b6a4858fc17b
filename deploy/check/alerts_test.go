package main

import "testing"

// The alerting rules must decode strictly, be complete, and name only metrics mash's Go
// code defines.
func TestAlertPolicy(t *testing.T) {
	for _, c := range []struct {
		name, old, new string
		want           []string
	}{
		{"metric mash does not export", "max by (consumer) (mash_consumer_lag) > 1000", "max by (consumer) (mash_consumers_lag) > 1000",
			[]string{"prometheus/alerts.yaml", `"MashConsumerLagging"`, "mash_consumers_lag, which mash does not export"}},
		{"unknown key", "        for: 10m\n", "        for: 10m\n        fro: 10m\n",
			[]string{"prometheus/alerts.yaml", "not a Prometheus rule file"}},
		{"no duration", "        for: 10m\n", "",
			[]string{"prometheus/alerts.yaml", `"MashConsumerLagging"`, "positive duration"}},
		{"no severity", "          severity: critical\n", "          team: hub\n",
			[]string{"prometheus/alerts.yaml", `"MashConsumerStalled"`, "severity"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, problems(t, mutated(t, "prometheus/alerts.yaml", c.old, c.new)), c.want...)
		})
	}
}
