package peers

import (
	"context"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/mash-hub/mash/pkg/auth"
)

func TestParseAddrs(t *testing.T) {
	got, err := ParseAddrs(" rules=rules:9090, intake=10.0.0.5:9090 ,")
	if err != nil {
		t.Fatal(err)
	}
	if got["rules"] != "rules:9090" || got["intake"] != "10.0.0.5:9090" || len(got) != 2 {
		t.Fatalf("ParseAddrs = %v", got)
	}
	for _, bad := range []string{"rules", "rules=", "=x:1", "rules=nohostport"} {
		if _, err := ParseAddrs(bad); err == nil {
			t.Errorf("ParseAddrs(%q) accepted", bad)
		}
	}
	b := NewBook("127.0.0.1:9090", got)
	if b.Addr("rules") != "rules:9090" || b.Addr("audit") != "127.0.0.1:9090" {
		t.Fatalf("Addr: rules %s, audit %s", b.Addr("rules"), b.Addr("audit"))
	}
}

func TestAsCallerForwardsTheCallersCredential(t *testing.T) {
	outgoing := func(ctx context.Context) []string {
		md, _ := metadata.FromOutgoingContext(AsCaller(ctx))
		return md.Get("authorization")
	}
	if got := outgoing(context.Background()); len(got) != 0 {
		t.Fatalf("no caller: forwarded %v", got)
	}
	in := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer grpc-token"))
	if got := outgoing(in); len(got) != 1 || got[0] != "Bearer grpc-token" {
		t.Fatalf("gRPC caller: forwarded %v", got)
	}
	// An HTTP caller's token, put in the context by the server, wins over any metadata.
	if got := outgoing(WithCredential(in, "http-token")); len(got) != 1 || got[0] != "Bearer http-token" {
		t.Fatalf("HTTP caller: forwarded %v", got)
	}
}

// A call made for a caller carries where the caller is, so the peer's trail names the
// person's address and not only the service that relayed the call.
func TestAsCallerForwardsTheCallersAddress(t *testing.T) {
	ctx := auth.WithClientAddress(WithCredential(context.Background(), "tok"), "127.0.0.1", "203.0.113.5")
	md, _ := metadata.FromOutgoingContext(AsCaller(ctx))
	if got := md.Get(auth.ForwardedForHeader); len(got) != 1 || got[0] != "203.0.113.5" {
		t.Fatalf("forwarded for %v", got)
	}
	direct := auth.WithClientAddress(WithCredential(context.Background(), "tok"), "198.51.100.2", "")
	md, _ = metadata.FromOutgoingContext(AsCaller(direct))
	if got := md.Get(auth.ForwardedForHeader); len(got) != 1 || got[0] != "198.51.100.2" {
		t.Fatalf("forwarded for %v", got)
	}
	md, _ = metadata.FromOutgoingContext(AsCaller(WithCredential(context.Background(), "tok")))
	if got := md.Get(auth.ForwardedForHeader); len(got) != 0 {
		t.Fatalf("an address forwarded without one known: %v", got)
	}
}
