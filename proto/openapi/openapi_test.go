package openapi

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/mash-hub/mash/proto/mash/audit/v1"
	_ "github.com/mash-hub/mash/proto/mash/intake/v1"
	_ "github.com/mash-hub/mash/proto/mash/notify/v1"
	_ "github.com/mash-hub/mash/proto/mash/rules/v1"
	_ "github.com/mash-hub/mash/proto/mash/triage/v1"
)

var variable = regexp.MustCompile(`\{([a-z_]+)\}`)

// Every route a google.api.http annotation declares, in any mash contract, is in the
// document, with its method, and the document's errors are pkg/apierr's shape.
func TestDocumentCoversEveryAnnotatedRoute(t *testing.T) {
	var doc struct {
		Paths       map[string]map[string]json.RawMessage `json:"paths"`
		Definitions map[string]json.RawMessage            `json:"definitions"`
	}
	if err := json.Unmarshal(Document, &doc); err != nil {
		t.Fatal(err)
	}
	routes := 0
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "mash.") {
			return true
		}
		for i := range fd.Services().Len() {
			ms := fd.Services().Get(i).Methods()
			for j := range ms.Len() {
				rule, _ := proto.GetExtension(ms.Get(j).Options(), annotations.E_Http).(*annotations.HttpRule)
				if rule == nil {
					continue
				}
				for _, b := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					method, path := binding(b)
					// The document names path variables by their JSON names, as the routes do.
					path = variable.ReplaceAllStringFunc(path, func(v string) string {
						f := ms.Get(j).Input().Fields().ByName(protoreflect.Name(strings.Trim(v, "{}")))
						if f == nil {
							t.Errorf("%s: %s names no field", ms.Get(j).FullName(), v)
							return v
						}
						return "{" + f.JSONName() + "}"
					})
					routes++
					if _, ok := doc.Paths[path][method]; !ok {
						t.Errorf("%s %s (%s) is not in the OpenAPI document; run scripts/proto", method, path, ms.Get(j).FullName())
					}
				}
			}
		}
		return true
	})
	if routes == 0 {
		t.Fatal("no annotated routes found")
	}
	if _, ok := doc.Definitions["v1ErrorBody"]; !ok {
		t.Error("the document does not describe the error body")
	}
}

func binding(b *annotations.HttpRule) (string, string) {
	switch p := b.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "get", p.Get
	case *annotations.HttpRule_Put:
		return "put", p.Put
	case *annotations.HttpRule_Post:
		return "post", p.Post
	case *annotations.HttpRule_Delete:
		return "delete", p.Delete
	case *annotations.HttpRule_Patch:
		return "patch", p.Patch
	case *annotations.HttpRule_Custom:
		return strings.ToLower(p.Custom.GetKind()), p.Custom.GetPath()
	}
	return "", ""
}
