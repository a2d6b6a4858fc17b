package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mash-hub/mash/proto/openapi"
)

// TestOpenAPIDescribesQueryAliases checks that the generated OpenAPI document tells
// integrators about the query parameters the gateway's shared parser takes under another
// name than the field's (the services' GatewayService.Query): each is described on the
// parameter of the field it sets, with an example of its form. protoc-gen-openapiv2's
// options declare only header parameters, so the field's comment in the contract carries
// the description; this test keeps the comment and the services' aliases together.
func TestOpenAPIDescribesQueryAliases(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name        string `json:"name"`
				In          string `json:"in"`
				Description string `json:"description"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, field, alias string }{
		{"/v1/queue", "states", "state="},
		{"/v1/queue", "rags", "rag="},
		{"/v1/queue", "levels", "level="},
		{"/v1/audit/entries", "oldestFirst", "order=oldest"},
	} {
		found := false
		for _, p := range doc.Paths[c.path]["get"].Parameters {
			if p.Name == c.field && p.In == "query" {
				found = true
				if !strings.Contains(p.Description, c.alias) {
					t.Errorf("GET %s: parameter %s does not describe %s: %q", c.path, c.field, c.alias, p.Description)
				}
			}
		}
		if !found {
			t.Errorf("GET %s has no query parameter %s", c.path, c.field)
		}
	}
}
