// Package testport hands tests loopback addresses for servers they start and stop on a
// known address (see package loopback for why not ":0").
package testport

import (
	"testing"

	"github.com/mash-hub/mash/pkg/loopback"
)

// Addr returns a loopback address ("127.0.0.1:port") nothing listens on right now.
func Addr(t testing.TB) string {
	t.Helper()
	addr, err := loopback.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
