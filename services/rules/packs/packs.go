// Package packs holds the rule packs shipped with the service, embedded so
// the binary needs no files at run time. default.yaml is the pack for the
// five-level framework (1, 2, 3a, 3b, 4 with RAG); a partnership starts
// from a copy of it. See github.com/mash-hub/mash/services/rules/pack for the format.
package packs

import _ "embed"

//go:embed default.yaml
var defaultPack []byte

// Default returns the default pack file. The slice is a copy, so a caller
// cannot change the embedded pack for everyone else.
func Default() []byte {
	return append([]byte(nil), defaultPack...)
}
