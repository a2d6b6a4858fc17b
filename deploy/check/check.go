package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	v1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Problem is one thing wrong with a deployment file. Field is a JSON path into the
// document ("spec.template.spec.containers[0].livenessProbe") or empty for the whole object.
type Problem struct {
	File   string // relative to the deploy directory
	Doc    int    // 1-based document number in the file; 0 for the file as a whole
	Line   int    // first line of the document
	Object string // "Deployment mash/mash-intake", when known
	Field  string
	Msg    string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Doc > 0 {
		fmt.Fprintf(&b, " document %d (line %d)", p.Doc, p.Line)
	}
	if p.Object != "" {
		fmt.Fprintf(&b, " %s", p.Object)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Doc is one decoded YAML document.
type Doc struct {
	File       string // relative to the deploy directory
	Index      int    // 1-based
	Line       int
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	Obj        any // the typed object, nil when it could not be decoded
}

// ID names the object as problems do: "Deployment mash/mash-intake".
func (d *Doc) ID() string {
	switch {
	case d.Kind == "":
		return ""
	case d.Namespace != "":
		return d.Kind + " " + d.Namespace + "/" + d.Name
	case d.Name != "":
		return d.Kind + " " + d.Name
	}
	return d.Kind
}

// Report is the outcome of a check.
type Report struct {
	Root     string
	Docs     []*Doc
	Problems []Problem
	docProbs map[*Doc]int
	nats     natsFacts
}

func (r *Report) problem(d *Doc, field, format string, args ...any) {
	p := Problem{Field: field, Msg: fmt.Sprintf(format, args...)}
	if d != nil {
		p.File, p.Doc, p.Line, p.Object = d.File, d.Index, d.Line, d.ID()
		r.docProbs[d]++
	}
	r.Problems = append(r.Problems, p)
}

func (r *Report) fileProblem(file, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{File: file, Msg: fmt.Sprintf(format, args...)})
}

// Print writes one line per document, every problem, and a summary.
func (r *Report) Print(w io.Writer) {
	for _, d := range r.Docs {
		status := "ok  "
		if r.docProbs[d] > 0 {
			status = "FAIL"
		}
		fmt.Fprintf(w, "%s %s#%d %s\n", status, d.File, d.Index, d.ID())
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w)
		for _, p := range r.Problems {
			fmt.Fprintln(w, "problem:", p)
		}
	}
	files := map[string]bool{}
	for _, d := range r.Docs {
		files[d.File] = true
	}
	failed := 0
	for _, d := range r.Docs {
		if r.docProbs[d] > 0 {
			failed++
		}
	}
	fmt.Fprintf(w, "\n%d documents in %d files validated: %d passed, %d failed; %d problems\n",
		len(r.Docs), len(files), len(r.Docs)-failed, failed, len(r.Problems))
}

// manifestDirs are the directories of Kubernetes objects, relative to the deploy directory.
var manifestDirs = []string{"kubernetes", "postgres", "certs", "minio"}

// natsValues is the NATS Helm chart's values file, relative to the deploy directory.
const natsValues = "nats/values.yaml"

// Check validates the deploy directory root.
func Check(root string) (*Report, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	r := &Report{Root: root, docProbs: map[*Doc]int{}}
	for _, dir := range manifestDirs {
		full := filepath.Join(root, dir)
		if _, err := os.Stat(full); err != nil {
			r.fileProblem(dir, "missing: the deploy directory must have %s/", dir)
			continue
		}
		err := filepath.WalkDir(full, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || !isYAML(path) {
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			return r.loadFile(path, filepath.ToSlash(rel))
		})
		if err != nil {
			return nil, err
		}
	}
	r.checkNATS(filepath.Join(root, natsValues), natsValues)
	r.checkKustomizations()
	r.checkPolicy()
	r.checkTLS()
	r.checkIngresses()
	r.checkBackups()
	r.checkDashboards()
	r.checkAlerts()
	return r, nil
}

func isYAML(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".yaml" || ext == ".yml"
}

var separator = regexp.MustCompile(`^---\s*(#.*)?$`)

// rawDoc is one document of a multi-document YAML file.
type rawDoc struct {
	line int
	text []byte
}

// splitDocuments splits a YAML stream on "---" lines, keeping each document's first line
// and dropping documents with nothing but comments and blank lines.
func splitDocuments(data []byte) []rawDoc {
	var docs []rawDoc
	var cur bytes.Buffer
	start, content := 1, false
	flush := func() {
		if content {
			docs = append(docs, rawDoc{line: start, text: bytes.Clone(cur.Bytes())})
		}
		cur.Reset()
		content = false
	}
	for i, line := range strings.Split(string(data), "\n") {
		if separator.MatchString(strings.TrimRight(line, "\r")) {
			flush()
			start = i + 2
			continue
		}
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			if !content {
				start = i + 1
			}
			content = true
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func (r *Report) loadFile(path, rel string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	raw := splitDocuments(data)
	if len(raw) == 0 {
		r.fileProblem(rel, "no YAML document in the file")
	}
	for i, rd := range raw {
		d := &Doc{File: rel, Index: i + 1, Line: rd.line}
		r.Docs = append(r.Docs, d)
		r.decode(d, rd.text)
	}
	return nil
}

// decode decodes one document strictly into the type its apiVersion and kind name.
func (r *Report) decode(d *Doc, text []byte) {
	js, err := yaml.YAMLToJSONStrict(text)
	if err != nil {
		r.problem(d, "", "not valid YAML: %v", err)
		return
	}
	var head struct {
		v1.TypeMeta `json:",inline"`
		Metadata    struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		r.problem(d, "", "not a Kubernetes object: %v", err)
		return
	}
	d.APIVersion, d.Kind, d.Name, d.Namespace = head.APIVersion, head.Kind, head.Metadata.Name, head.Metadata.Namespace
	if d.APIVersion == "" || d.Kind == "" {
		r.problem(d, "", "apiVersion and kind are required")
		return
	}
	newObj, ok := schemas[d.APIVersion+"/"+d.Kind]
	if !ok {
		if d.Kind == "Secret" && d.APIVersion == "v1" {
			r.problem(d, "", "a Secret must not be committed: secrets are created out of band (see deploy/README.md)")
			return
		}
		r.problem(d, "apiVersion", "no schema for %s %s in this validator: use a supported kind or add its type to schemas in deploy/check", d.APIVersion, d.Kind)
		return
	}
	obj := newObj()
	if !r.strict(d, js, obj) {
		return
	}
	d.Obj = obj
	if d.Kind != "Kustomization" && d.Name == "" {
		r.problem(d, "metadata.name", "required")
	}
}

// strict decodes js into obj rejecting unknown and duplicate fields; every problem names
// its field. It reports whether obj was decoded.
func (r *Report) strict(d *Doc, js []byte, obj any) bool {
	strictErrs, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		field := ""
		if m := typeErrorRE.FindStringSubmatch(err.Error()); m != nil {
			field = m[1]
		}
		r.problem(d, field, "does not decode: %v", err)
		return false
	}
	for _, e := range strictErrs {
		field, msg := splitStrictError(e.Error())
		r.problem(d, field, "%s", msg)
	}
	// Unknown or duplicate fields do not change what was decoded: keep the object so the
	// cross-object checks still see it.
	return true
}

// typeErrorRE finds the field of a type error: "... Go struct field Deployment.spec.replicas of type int32".
var typeErrorRE = regexp.MustCompile(`Go struct field [A-Za-z0-9_]+\.(\S+) of type`)

var strictErrorRE = regexp.MustCompile(`^(unknown|duplicate) field "(.*)"$`)

// splitStrictError turns `unknown field "spec.foo"` into ("spec.foo", "unknown field: ...").
func splitStrictError(s string) (field, msg string) {
	m := strictErrorRE.FindStringSubmatch(s)
	if m == nil {
		return "", s
	}
	if m[1] == "unknown" {
		return m[2], "unknown field (not in the API type: a typo, or a field of another version)"
	}
	return m[2], "duplicate field"
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
