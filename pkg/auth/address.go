package auth

import (
	"context"
	"strings"
)

// ForwardedForHeader carries, from a proxy or from a service calling another for a person
// (the console), the address of the client that started the request.
const ForwardedForHeader = "x-forwarded-for"

type addressKey struct{}

// WithClientAddress returns a context carrying the caller's network address: the transport
// peer, and the address it says it forwards for, when it says one. Audit records name it as
// where an act came from.
func WithClientAddress(ctx context.Context, peer, forwardedFor string) context.Context {
	peer, forwardedFor = cleanAddress(peer), cleanAddress(forwardedFor)
	addr := peer
	if forwardedFor != "" && forwardedFor != peer {
		// A forwarded address is the caller's claim; the peer is what the connection proved,
		// so both are kept.
		addr = forwardedFor + " via " + peer
	}
	return context.WithValue(ctx, addressKey{}, addr)
}

// ClientAddress is the caller's address as WithClientAddress recorded it ("" if unknown).
func ClientAddress(ctx context.Context) string {
	s, _ := ctx.Value(addressKey{}).(string)
	return s
}

// OriginAddress is the address of the client that started the request: the forwarded one
// when there is one, else the peer. A service forwards this when it calls another.
func OriginAddress(ctx context.Context) string {
	addr := ClientAddress(ctx)
	if i := strings.Index(addr, " via "); i >= 0 {
		return addr[:i]
	}
	return addr
}

// cleanAddress keeps an address printable and short: it ends up in logs and the audit trail.
func cleanAddress(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			if r == ' ' {
				return r
			}
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
