package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// alertsFile holds mash's Prometheus alerting rules, relative to the deploy directory.
const alertsFile = "prometheus/alerts.yaml"

// RuleFile is a Prometheus rule file: groups of alerting rules.
type RuleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// checkAlerts requires the rule file to decode strictly, every rule to be a named alert
// with an expression, a duration, a severity and a summary, and every mash metric an
// expression names to be one the Go source defines.
func (r *Report) checkAlerts() {
	data, err := os.ReadFile(filepath.Join(r.Root, alertsFile))
	if err != nil {
		r.fileProblem(alertsFile, "missing: mash's Prometheus alerting rules (%v)", err)
		return
	}
	var f RuleFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		r.fileProblem(alertsFile, "not a Prometheus rule file: %v", err)
		return
	}
	metrics, err := definedMetrics(sourceRoot)
	if err != nil || len(metrics) == 0 {
		r.fileProblem(alertsFile, "cannot read the metric definitions under %s: %v", sourceRoot, err)
		return
	}
	if len(f.Groups) == 0 {
		r.fileProblem(alertsFile, "no rule groups")
	}
	names := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			r.fileProblem(alertsFile, "group %q: a name and at least one rule are required", g.Name)
		}
		for _, rule := range g.Rules {
			where := fmt.Sprintf("alert %q", rule.Alert)
			if rule.Alert == "" || strings.TrimSpace(rule.Expr) == "" {
				r.fileProblem(alertsFile, "%s in group %q: alert and expr are required", where, g.Name)
			}
			if names[rule.Alert] {
				r.fileProblem(alertsFile, "%s: defined twice", where)
			}
			names[rule.Alert] = true
			if d, err := time.ParseDuration(rule.For); err != nil || d <= 0 {
				r.fileProblem(alertsFile, "%s: for %q must be a positive duration, so a blip does not page", where, rule.For)
			}
			if s := rule.Labels["severity"]; s != "warning" && s != "critical" {
				r.fileProblem(alertsFile, "%s: labels.severity must be warning or critical", where)
			}
			if rule.Annotations["summary"] == "" {
				r.fileProblem(alertsFile, "%s: annotations.summary is required", where)
			}
			for _, m := range metricUseRE.FindAllString(rule.Expr, -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && metrics[b] {
						base = b
					}
				}
				if !metrics[base] {
					r.fileProblem(alertsFile, "%s: expr uses %s, which mash does not export", where, m)
				}
			}
		}
	}
}
