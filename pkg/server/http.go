package server

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/peers"
)

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// HandleAPI registers an authenticated API route. pattern is a Go 1.22 mux pattern such as
// "POST /v1/referrals"; it is also the method label in logs and metrics.
func (s *Server) HandleAPI(pattern string, h http.HandlerFunc) {
	s.HandleAPIWithErrors(pattern, apierr.WriteHTTP, h)
}

// ErrorWriter writes err as an HTTP response and returns the status written; apierr.WriteHTTP
// is the default.
type ErrorWriter func(w http.ResponseWriter, err error) int

// HandleAPIWithErrors is HandleAPI for a route whose callers expect errors in another shape
// (FHIR clients expect an OperationOutcome): refusals before the handler (rate limits, a
// missing or bad credential, an unreadable access reason) and panics are written with
// writeErr, so such a client never meets the JSON error of the other routes.
func (s *Server) HandleAPIWithErrors(pattern string, writeErr ErrorWriter, h http.HandlerFunc) {
	s.mux.Handle(pattern, s.traced(pattern, s.wrapWith(pattern, routeAPI, writeErr, h)))
	s.routes = append(s.routes, Route{Pattern: pattern})
}

// HandlePublic registers a route that needs no credential, such as the console's pages
// (which check their own session); it is still limited per client address.
func (s *Server) HandlePublic(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.traced(pattern, s.wrap(pattern, routePublic, h.ServeHTTP)))
	s.routes = append(s.routes, Route{Pattern: pattern, Public: true})
}

// handleProbe registers a public route the platform polls (health, readiness, metrics):
// it is not rate-limited, so a busy scraper never makes a healthy process look dead.
func (s *Server) handleProbe(pattern string, h http.HandlerFunc) {
	s.mux.Handle(pattern, s.wrap(pattern, routeProbe, h))
	s.routes = append(s.routes, Route{Pattern: pattern, Public: true})
}

// Route is one registered HTTP route.
type Route struct {
	Pattern string
	// Public routes need no credential (health, metrics, the console's own sign-in).
	Public bool
	// Gateway routes come from a google.api.http annotation (see HandleGateway), so the
	// OpenAPI document describes them.
	Gateway bool
}

// Routes lists the HTTP routes registered so far, in order: the authorisation matrix test
// calls every one.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// routeKind says what wrap does before the handler.
type routeKind int

const (
	routeAPI    routeKind = iota // rate limits, bearer credential, access reason
	routePublic                  // the per-address rate limit only
	routeProbe                   // nothing: health, readiness, metrics
)

// setSecurityHeaders marks every response as not to be cached or sniffed: API answers and
// console pages carry children's personal data, which must not linger in a browser's or a
// proxy's cache. A handler that serves something cacheable (static files) overrides
// Cache-Control. Over TLS (or behind a proxy that ends it), browsers are told to use HTTPS
// only.
func (s *Server) setSecurityHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.TLS != nil || s.cfg.BehindTLS {
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	}
}

func (s *Server) wrap(route string, kind routeKind, h http.HandlerFunc) http.Handler {
	return s.wrapWith(route, kind, apierr.WriteHTTP, h)
}

func (s *Server) wrapWith(route string, kind routeKind, writeErr ErrorWriter, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, reqID := withRequestID(r.Context(), r.Header.Get(RequestIDHeader))
		ctx = auth.WithClientAddress(ctx, hostOf(r.RemoteAddr), r.Header.Get(auth.ForwardedForHeader))
		w.Header().Set(RequestIDHeader, reqID)
		s.setSecurityHeaders(w, r)
		rec := &statusRecorder{ResponseWriter: w}
		var ident auth.Identity
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in handler", zap.String("route", route), zap.String("request_id", reqID),
					zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
				if rec.code == 0 {
					writeErr(rec, fmt.Errorf("panic: %v", p))
				}
			}
			elapsed := time.Since(start)
			s.metrics.observe("http", route, fmt.Sprint(rec.code), elapsed.Seconds())
			if kind == routeAPI {
				s.log.Info("request", zap.String("transport", "http"), zap.String("method", route),
					zap.String("request_id", reqID), zap.String("agency", ident.Agency), zap.String("client", ident.ClientID),
					zap.Int("code", rec.code), zap.Duration("latency", elapsed))
			}
		}()
		if kind == routeProbe {
			h(rec, r.WithContext(ctx))
			return
		}
		addr := s.limits.httpAddr(r)
		if kind == routePublic {
			if err := s.limits.byAddress(addr); err != nil {
				writeErr(rec, err)
				return
			}
			h(rec, r.WithContext(ctx))
			return
		}
		if err := s.limits.beforeAuth(addr); err != nil {
			writeErr(rec, err)
			return
		}
		token, ok := auth.BearerToken(r.Header.Get("Authorization"))
		if !ok {
			s.limits.authFailed(addr)
			writeErr(rec, auth.ErrUnauthenticated)
			return
		}
		var err error
		ident, err = s.authn.Authenticate(ctx, token)
		if err != nil {
			if errors.Is(err, auth.ErrUnauthenticated) {
				s.limits.authFailed(addr)
			}
			s.WriteErrorWith(rec, r.WithContext(ctx), err, writeErr)
			return
		}
		if err := s.limits.afterAuth(ident.ClientID); err != nil {
			writeErr(rec, err)
			return
		}
		ctx, err = withAccessReason(ctx, r.Header.Get(AccessReasonHeader), "X-Access-Reason")
		if err != nil {
			writeErr(rec, err)
			return
		}
		ctx = peers.WithCredential(auth.WithIdentity(ctx, ident), token)
		h(rec, r.WithContext(ctx))
	})
}

// WriteError writes err through apierr, logging internal errors in full first.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	s.WriteErrorWith(w, r, err, apierr.WriteHTTP)
}

// WriteErrorWith is WriteError with another writer for the response (see HandleAPIWithErrors).
func (s *Server) WriteErrorWith(w http.ResponseWriter, r *http.Request, err error, writeErr ErrorWriter) {
	if apierr.IsInternal(err) {
		s.log.Error("request failed", zap.String("method", r.Method+" "+r.URL.Path),
			zap.String("request_id", RequestID(r.Context())), zap.Error(err))
	}
	writeErr(w, err)
}
