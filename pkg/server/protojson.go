package server

import (
	"mime"
	"net/http"

	"google.golang.org/protobuf/encoding/protojson"
)

// MaxJSONBody bounds HTTP/JSON request bodies of the gateway's routes.
const MaxJSONBody = 1 << 20

var jsonOut = protojson.MarshalOptions{}

// MediaType is r's Content-Type without its parameters ("application/yaml" for
// "application/yaml; charset=utf-8"), or "" when there is none or it cannot be read.
func MediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}
