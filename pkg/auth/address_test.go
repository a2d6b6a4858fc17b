package auth

import (
	"context"
	"strings"
	"testing"
)

// The address kept is the peer the connection proved, with the one it forwards for in
// front; control characters (a forged log line) and excess length are dropped.
func TestClientAddress(t *testing.T) {
	for _, c := range []struct{ peer, fwd, want, origin string }{
		{"10.0.0.7", "", "10.0.0.7", "10.0.0.7"},
		{"10.0.0.7", "203.0.113.5", "203.0.113.5 via 10.0.0.7", "203.0.113.5"},
		{"10.0.0.7", "10.0.0.7", "10.0.0.7", "10.0.0.7"},
		{"127.0.0.1", "203.0.113.5\r\nadmin: yes", "203.0.113.5admin: yes via 127.0.0.1", "203.0.113.5admin: yes"},
		{"", "", "", ""},
	} {
		ctx := WithClientAddress(context.Background(), c.peer, c.fwd)
		if got := ClientAddress(ctx); got != c.want {
			t.Errorf("%q/%q: %q, want %q", c.peer, c.fwd, got, c.want)
		}
		if got := OriginAddress(ctx); got != c.origin {
			t.Errorf("%q/%q: origin %q, want %q", c.peer, c.fwd, got, c.origin)
		}
	}
	long := WithClientAddress(context.Background(), "1.2.3.4", strings.Repeat("9", 1000))
	if len(ClientAddress(long)) > 220 {
		t.Fatalf("address of %d bytes kept", len(ClientAddress(long)))
	}
	if ClientAddress(context.Background()) != "" {
		t.Fatal("an address without one set")
	}
}
