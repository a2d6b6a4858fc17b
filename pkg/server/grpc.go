package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"mash/pkg/apierr"
	"mash/pkg/auth"
	"mash/pkg/peers"
)

// Authenticator turns a bearer token into an identity.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (auth.Identity, error)
}

// RequestIDHeader carries the caller's request id (or ours, if none) on both transports.
const RequestIDHeader = "x-request-id"

// AccessReasonHeader lets a caller say why it reads a child's record; the reason is kept
// (encrypted) with the access entry in the audit log.
const AccessReasonHeader = "x-access-reason"

type accessReasonKey struct{}

// AccessReason returns the reason the caller gave for this request, if any.
func AccessReason(ctx context.Context) string {
	s, _ := ctx.Value(accessReasonKey{}).(string)
	return s
}

func withAccessReason(ctx context.Context, reason string) context.Context {
	if reason == "" {
		return ctx
	}
	if len(reason) > 500 {
		reason = reason[:500]
	}
	return context.WithValue(ctx, accessReasonKey{}, reason)
}

type requestIDKey struct{}

// RequestID returns the id of the request being served.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

func withRequestID(ctx context.Context, incoming string) (context.Context, string) {
	id := incoming
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	return context.WithValue(ctx, requestIDKey{}, id), id
}

// publicMethods need no credential: health checks and reflection.
func publicMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// unaryInterceptor does, for every unary call and in this order: request id, panic recovery,
// authentication, the handler, mapping the error to a status (the one place), then one log
// line and the metrics.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	md, _ := metadata.FromIncomingContext(ctx)
	ctx, reqID := withRequestID(ctx, first(md.Get(RequestIDHeader)))
	ctx = withAccessReason(ctx, first(md.Get(AccessReasonHeader)))
	peerAddr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		peerAddr = hostOf(p.Addr.String())
	}
	ctx = auth.WithClientAddress(ctx, peerAddr, first(md.Get(auth.ForwardedForHeader)))
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, reqID))
	var ident auth.Identity

	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in handler", zap.String("method", info.FullMethod), zap.String("request_id", reqID),
				zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
			resp = nil
		}
		st := apierr.Status(err)
		if err != nil {
			if st.Code() == codes.Internal {
				s.log.Error("request failed", zap.String("method", info.FullMethod), zap.String("request_id", reqID), zap.Error(err))
			}
			err = st.Err()
		}
		elapsed := time.Since(start)
		s.metrics.observe("grpc", info.FullMethod, st.Code().String(), elapsed.Seconds())
		if !publicMethod(info.FullMethod) {
			s.log.Info("request", zap.String("transport", "grpc"), zap.String("method", info.FullMethod),
				zap.String("request_id", reqID), zap.String("agency", ident.Agency), zap.String("client", ident.ClientID),
				zap.String("code", st.Code().String()), zap.Duration("latency", elapsed))
		}
	}()

	if !publicMethod(info.FullMethod) {
		token, ok := "", false
		if v := first(md.Get("authorization")); v != "" {
			token, ok = auth.BearerToken(v)
		}
		if !ok {
			return nil, auth.ErrUnauthenticated
		}
		ident, err = s.authn.Authenticate(ctx, token)
		if err != nil {
			return nil, err
		}
		ctx = peers.WithCredential(auth.WithIdentity(ctx, ident), token)
	}
	return handler(ctx, req)
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// streamInterceptor guards streaming calls (today only reflection and health Watch) with the
// same authentication rule.
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if publicMethod(info.FullMethod) {
		return handler(srv, ss)
	}
	return status.Error(codes.Unimplemented, "streaming calls are not offered")
}

// Authorize returns the caller's identity if it holds one of roles. Otherwise the error is
// UNAUTHENTICATED (no caller) or PERMISSION_DENIED naming what the role may not do and
// which roles may.
func Authorize(ctx context.Context, action string, roles ...auth.Role) (auth.Identity, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Identity{}, auth.ErrUnauthenticated
	}
	if !id.HasRole(roles...) {
		names := make([]string, len(roles))
		for i, r := range roles {
			names[i] = string(r)
		}
		return id, apierr.PermissionDenied(fmt.Sprintf("role %s may not %s; it needs one of: %s", id.Role, action, strings.Join(names, ", ")))
	}
	return id, nil
}

// Require returns the caller's identity if its role holds p in auth's one permission table.
// Otherwise the error is UNAUTHENTICATED (no caller) or PERMISSION_DENIED naming what the
// role may not do and which roles may.
func Require(ctx context.Context, p auth.Permission) (auth.Identity, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Identity{}, auth.ErrUnauthenticated
	}
	if !id.Can(p) {
		return id, apierr.PermissionDenied(id.Denial(p))
	}
	return id, nil
}
