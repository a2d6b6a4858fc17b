package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/mash-hub/mash/pkg/apierr"
)

// Limits bound what one caller, one client address and the listeners may take, so a
// runaway integrator or a flood of bad credentials cannot starve everyone else. A rate of
// zero turns that limit off; zero durations and caps take the defaults below.
type Limits struct {
	// CredentialRate is requests per second per authenticated credential (a machine
	// client, or a person across all their sessions), with CredentialBurst in hand.
	CredentialRate  float64
	CredentialBurst int
	// AddressRate is requests per second per client address, counted before any other
	// work, with AddressBurst in hand.
	AddressRate  float64
	AddressBurst int
	// FailedAuthRate is failed authentications per second per client address, with
	// FailedAuthBurst in hand: once spent, the address is refused before its credential
	// is looked up, so a flood of bad tokens costs neither a database round trip nor a
	// real client's turn.
	FailedAuthRate  float64
	FailedAuthBurst int
	// Exempt lists client networks the per-address limits do not apply to: this host's
	// loopback, where the console and co-located services call the APIs for everyone they
	// serve (the per-credential limit still applies to each person), and in a cluster the
	// network the services call each other from.
	Exempt []netip.Prefix
	// TrustedProxies lists the proxies (an ingress controller, a load balancer) whose
	// X-Forwarded-For names the client: behind them, the client address the limits count
	// is the nearest address in that header that is not itself a trusted proxy. From any
	// other peer the header is ignored, so a client cannot choose its own address.
	TrustedProxies []netip.Prefix
	// MaxConns caps open connections on each listener (gRPC and HTTP); further
	// connections wait in the kernel's backlog until one closes. Zero: no cap.
	MaxConns int
	// IdleTimeout closes an HTTP keep-alive connection, or a gRPC connection with no call
	// in flight, idle this long.
	IdleTimeout time.Duration
	// ReadHeaderTimeout bounds how long an HTTP client may take to send its headers.
	ReadHeaderTimeout time.Duration
}

// Defaults of the durations when Limits leaves them zero.
const (
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultReadHeaderTimeout = 5 * time.Second
)

// Validate names the first setting out of range, by its field name.
func (l Limits) Validate() error {
	switch {
	case l.CredentialRate < 0 || l.AddressRate < 0 || l.FailedAuthRate < 0:
		return errors.New("rates must not be negative (0 turns a limit off)")
	case l.CredentialRate > 0 && l.CredentialBurst < 1:
		return errors.New("CredentialBurst: must be at least 1 when CredentialRate is set")
	case l.AddressRate > 0 && l.AddressBurst < 1:
		return errors.New("AddressBurst: must be at least 1 when AddressRate is set")
	case l.FailedAuthRate > 0 && l.FailedAuthBurst < 1:
		return errors.New("FailedAuthBurst: must be at least 1 when FailedAuthRate is set")
	case l.MaxConns < 0:
		return errors.New("MaxConns: must not be negative (0: no cap)")
	case l.IdleTimeout < 0 || l.ReadHeaderTimeout < 0:
		return errors.New("timeouts must not be negative")
	}
	return nil
}

func (l Limits) withDefaults() Limits {
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	return l
}

// maxLimiterKeys bounds the memory one limiter set may hold, whatever number of addresses
// or credentials a flood cycles through.
const maxLimiterKeys = 1 << 16

// limiterSet keeps one token bucket per key (a client address or credential). A nil set
// limits nothing.
type limiterSet struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLimiterSet(perSecond float64, burst int, now func() time.Time) *limiterSet {
	if perSecond <= 0 {
		return nil
	}
	return &limiterSet{limit: rate.Limit(perSecond), burst: burst, now: now, m: map[string]*rate.Limiter{}}
}

func (l *limiterSet) get(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxLimiterKeys {
			l.prune(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[key] = lim
	}
	return lim
}

// prune drops buckets that have refilled: a full bucket is the same as a new one, so
// forgetting it changes nothing. If a flood keeps most buckets part-spent, all are
// dropped: bounded memory matters more than the flood's own counts.
func (l *limiterSet) prune(now time.Time) {
	for k, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
	if len(l.m) > maxLimiterKeys/2 {
		clear(l.m)
	}
}

// take spends one token of key's bucket. When there is none, nothing is spent, ok is false
// and wait says when there will be one.
func (l *limiterSet) take(key string) (wait time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	now := l.now()
	r := l.get(key, now).ReserveN(now, 1)
	if !r.OK() {
		return time.Second, false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// spent reports, without spending, whether key's bucket is empty, and if so how long
// until it holds a token again.
func (l *limiterSet) spent(key string) (wait time.Duration, empty bool) {
	if l == nil {
		return 0, false
	}
	l.mu.Lock()
	lim, ok := l.m[key]
	l.mu.Unlock()
	if !ok {
		return 0, false
	}
	now := l.now()
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second)), true
}

// limiter applies Limits to requests on both transports.
type limiter struct {
	credential, address, failedAuth *limiterSet
	exempt, proxies                 []netip.Prefix
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	return &limiter{
		exempt:     l.Exempt,
		proxies:    l.TrustedProxies,
		credential: newLimiterSet(l.CredentialRate, l.CredentialBurst, now),
		address:    newLimiterSet(l.AddressRate, l.AddressBurst, now),
		failedAuth: newLimiterSet(l.FailedAuthRate, l.FailedAuthBurst, now),
	}
}

// beforeAuth is the check made before any other work on a request from addr: the
// address's request rate, and whether it has spent its failed authentications.
func (l *limiter) beforeAuth(addr string) error {
	if l.exempted(addr) {
		return nil
	}
	key := addrKey(addr)
	if wait, ok := l.address.take(key); !ok {
		return apierr.TooManyRequests("too many requests from this address; retry after the time given", wait)
	}
	if wait, empty := l.failedAuth.spent(key); empty {
		return apierr.TooManyRequests("too many failed authentications from this address; retry after the time given", wait)
	}
	return nil
}

// authFailed counts a refused credential against addr.
func (l *limiter) authFailed(addr string) {
	if !l.exempted(addr) {
		l.failedAuth.take(addrKey(addr))
	}
}

// byAddress is the per-address request rate alone, for routes that authenticate no one.
func (l *limiter) byAddress(addr string) error {
	if l.exempted(addr) {
		return nil
	}
	if wait, ok := l.address.take(addrKey(addr)); !ok {
		return apierr.TooManyRequests("too many requests from this address; retry after the time given", wait)
	}
	return nil
}

// addrKey is what the per-address limits count by: an IPv4 address, or an IPv6 address's
// /64 network, since one host commonly holds a whole /64 and could otherwise take a fresh
// address per request.
func addrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Unmap().Is6() {
		return addr
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

func (l *limiter) exempted(addr string) bool { return within(l.exempt, addr) }

// within reports whether addr is an IP address in one of nets.
func within(nets []netip.Prefix, addr string) bool {
	if len(nets) == 0 {
		return false
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// client is the address the limits count for a request that came from peer with these
// X-Forwarded-For values: peer itself unless it is a trusted proxy; else the rightmost
// forwarded address that is not one (each proxy appends the address it heard from, so
// addresses to the left of the first untrusted one could be made up by the client).
func (l *limiter) client(peer string, forwardedFor []string) string {
	if !within(l.proxies, peer) {
		return peer
	}
	var hops []string
	for _, v := range forwardedFor {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(hostOf(hops[i]))
		if err != nil {
			// Not an address: whatever is further left cannot be trusted either.
			return addr
		}
		addr = ip.Unmap().String()
		if !within(l.proxies, addr) {
			return addr
		}
	}
	return addr
}

// afterAuth is the authenticated caller's own rate.
func (l *limiter) afterAuth(clientID string) error {
	if wait, ok := l.credential.take(clientID); !ok {
		return apierr.TooManyRequests(fmt.Sprintf("credential %s is over its rate limit; retry after the time given", clientID), wait)
	}
	return nil
}

// httpAddr is the client address of r, without its port.
func (l *limiter) httpAddr(r *http.Request) string {
	return l.client(hostOf(r.RemoteAddr), r.Header.Values("X-Forwarded-For"))
}

// grpcAddr is the client address of a gRPC call, without its port.
func (l *limiter) grpcAddr(ctx context.Context, md metadata.MD) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	return l.client(hostOf(p.Addr.String()), md.Get("x-forwarded-for"))
}

// hostOf is an address without its port.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
