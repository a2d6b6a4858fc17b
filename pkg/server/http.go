package server

import (
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"go.uber.org/zap"

	"mash/pkg/apierr"
	"mash/pkg/auth"
	"mash/pkg/peers"
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
	s.mux.Handle(pattern, s.wrap(pattern, true, h))
	s.routes = append(s.routes, Route{Pattern: pattern})
}

// HandlePublic registers a route that needs no credential (health, metrics).
func (s *Server) HandlePublic(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.wrap(pattern, false, h.ServeHTTP))
	s.routes = append(s.routes, Route{Pattern: pattern, Public: true})
}

// Route is one registered HTTP route.
type Route struct {
	Pattern string
	// Public routes need no credential (health, metrics, the console's own sign-in).
	Public bool
}

// Routes lists the HTTP routes registered so far, in order: the authorisation matrix test
// calls every one.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

func (s *Server) wrap(route string, authenticate bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, reqID := withRequestID(r.Context(), r.Header.Get(RequestIDHeader))
		ctx = withAccessReason(ctx, r.Header.Get(AccessReasonHeader))
		ctx = auth.WithClientAddress(ctx, hostOf(r.RemoteAddr), r.Header.Get(auth.ForwardedForHeader))
		w.Header().Set(RequestIDHeader, reqID)
		rec := &statusRecorder{ResponseWriter: w}
		var ident auth.Identity
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in handler", zap.String("route", route), zap.String("request_id", reqID),
					zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
				if rec.code == 0 {
					apierr.WriteHTTP(rec, fmt.Errorf("panic: %v", p))
				}
			}
			elapsed := time.Since(start)
			s.metrics.observe("http", route, fmt.Sprint(rec.code), elapsed.Seconds())
			if authenticate {
				s.log.Info("request", zap.String("transport", "http"), zap.String("method", route),
					zap.String("request_id", reqID), zap.String("agency", ident.Agency), zap.String("client", ident.ClientID),
					zap.Int("code", rec.code), zap.Duration("latency", elapsed))
			}
		}()
		if authenticate {
			token, ok := auth.BearerToken(r.Header.Get("Authorization"))
			if !ok {
				apierr.WriteHTTP(rec, auth.ErrUnauthenticated)
				return
			}
			var err error
			ident, err = s.authn.Authenticate(ctx, token)
			if err != nil {
				s.WriteError(rec, r.WithContext(ctx), err)
				return
			}
			ctx = peers.WithCredential(auth.WithIdentity(ctx, ident), token)
		}
		h(rec, r.WithContext(ctx))
	})
}

// hostOf is an address without its port.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// WriteError writes err through apierr, logging internal errors in full first.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if apierr.IsInternal(err) {
		s.log.Error("request failed", zap.String("method", r.Method+" "+r.URL.Path),
			zap.String("request_id", RequestID(r.Context())), zap.Error(err))
	}
	apierr.WriteHTTP(w, err)
}
