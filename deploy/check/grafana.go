package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// grafanaDir holds the Grafana dashboards, relative to the deploy directory.
const grafanaDir = "grafana"

// sourceRoot is the repository's root relative to this module's directory, where run.sh and
// go test run: the dashboards' metric names are checked against the Go source that defines them.
var sourceRoot = filepath.Join("..", "..")

// Dashboard is the part of a Grafana dashboard JSON the check reads; other keys are Grafana's
// own and pass through.
type Dashboard struct {
	Title  string           `json:"title"`
	UID    string           `json:"uid"`
	Panels []DashboardPanel `json:"panels"`
}

// DashboardPanel is one panel (or row).
type DashboardPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos *struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

var (
	// metricDefRE finds metric names where the Go source defines them.
	metricDefRE = regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(mash_[a-z0-9_]+)"`)
	// metricUseRE finds mash metric names in a PromQL expression.
	metricUseRE = regexp.MustCompile(`\bmash_[a-z0-9_]+`)
)

// definedMetrics collects every mash metric name the repository's Go code defines.
func definedMetrics(root string) (map[string]bool, error) {
	names := map[string]bool{}
	for _, dir := range []string{"pkg", "services"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range metricDefRE.FindAllSubmatch(data, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return names, nil
}

// checkDashboards requires every dashboard to be valid JSON with a title and uid, every
// panel titled and placed, queries on the datasource variable, and every mash metric a
// query names defined in the Go source (histogram series by their base name).
func (r *Report) checkDashboards() {
	files, _ := filepath.Glob(filepath.Join(r.Root, grafanaDir, "*.json"))
	if len(files) == 0 {
		r.fileProblem(grafanaDir, "missing: a Grafana dashboard for mash's metrics (grafana/*.json)")
		return
	}
	metrics, err := definedMetrics(sourceRoot)
	if err != nil || len(metrics) == 0 {
		r.fileProblem(grafanaDir, "cannot read the metric definitions under %s: %v", sourceRoot, err)
		return
	}
	for _, f := range files {
		rel := filepath.ToSlash(filepath.Join(grafanaDir, filepath.Base(f)))
		data, err := os.ReadFile(f)
		if err != nil {
			r.fileProblem(rel, "%v", err)
			continue
		}
		var d Dashboard
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&d); err != nil {
			r.fileProblem(rel, "not valid dashboard JSON: %v", err)
			continue
		}
		if d.Title == "" || d.UID == "" {
			r.fileProblem(rel, "title and uid are required (the uid keeps links stable across imports)")
		}
		if len(d.Panels) == 0 {
			r.fileProblem(rel, "no panels")
		}
		ids := map[int]bool{}
		for i, p := range d.Panels {
			where := fmt.Sprintf("panels[%d] %q", i, p.Title)
			if p.Title == "" || p.Type == "" || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				r.fileProblem(rel, "%s: title, type and gridPos (w, h) are required", where)
			}
			if ids[p.ID] {
				r.fileProblem(rel, "%s: duplicate id %d", where, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				r.fileProblem(rel, "%s: no queries", where)
			}
			if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
				r.fileProblem(rel, "%s: datasource must be the Prometheus variable ${datasource}, so the dashboard imports anywhere", where)
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					r.fileProblem(rel, "%s: query %s is empty", where, t.RefID)
				}
				for _, m := range metricUseRE.FindAllString(t.Expr, -1) {
					base := m
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if b, ok := strings.CutSuffix(m, suffix); ok && metrics[b] {
							base = b
						}
					}
					if !metrics[base] {
						r.fileProblem(rel, "%s: query %s uses %s, which mash does not export", where, t.RefID, m)
					}
				}
			}
		}
	}
}
