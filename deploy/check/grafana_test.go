package main

import "testing"

// The dashboard must stay valid JSON on the Prometheus variable, and query only metrics
// mash's Go code defines.
func TestDashboardPolicy(t *testing.T) {
	for _, c := range []struct {
		name, old, new string
		want           []string
	}{
		{"metric mash does not export", "sum(rate(mash_notify_escalations_total{", "sum(rate(mash_notify_escalation_total{",
			[]string{"grafana/mash.json", `"Escalations per second"`, "mash_notify_escalation_total, which mash does not export"}},
		{"not JSON", "\"title\": \"mash\",", "\"title\": \"mash\"",
			[]string{"grafana/mash.json", "not valid dashboard JSON"}},
		{"fixed datasource", "\"uid\": \"${datasource}\"\n      },\n      \"gridPos\": {\n        \"x\": 0,\n        \"y\": 1,", "\"uid\": \"prom-1\"\n      },\n      \"gridPos\": {\n        \"x\": 0,\n        \"y\": 1,",
			[]string{"grafana/mash.json", `"Requests per second by method"`, "${datasource}"}},
		{"no uid", "\"uid\": \"mash-overview\"", "\"uid\": \"\"",
			[]string{"grafana/mash.json", "title and uid are required"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, problems(t, mutated(t, "grafana/mash.json", c.old, c.new)), c.want...)
		})
	}
}
