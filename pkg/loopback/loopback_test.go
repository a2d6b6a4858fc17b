package loopback

import (
	"net"
	"strconv"
	"testing"
)

// Addresses come from below the ephemeral range, differ from one call to the next, and skip
// a port something listens on.
func TestFreeAddrAvoidsEphemeralAndTakenPorts(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		host, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if host != "127.0.0.1" || port < low || port >= high {
			t.Fatalf("%s: want 127.0.0.1 and a port in [%d, %d)", addr, low, high)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
	}

	// The next port in turn is taken: FreeAddr passes it by.
	taken := "127.0.0.1:" + strconv.FormatInt(low+(next.Load()+1)%(high-low), 10)
	l, err := net.Listen("tcp", taken)
	if err != nil {
		t.Skipf("%s is in use already: %v", taken, err)
	}
	defer l.Close()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if addr == taken {
		t.Fatalf("FreeAddr returned %s, where a listener is", addr)
	}
}
