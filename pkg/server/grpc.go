package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/text"
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

// MaxAccessReason is how much of an access reason is kept, in bytes; a longer one is cut
// at a character boundary.
const MaxAccessReason = 500

// withAccessReason keeps the caller's reason, cut to MaxAccessReason. A reason that is not
// single-line UTF-8 text is refused naming the header (field), as the audit log could not
// store it.
func withAccessReason(ctx context.Context, reason, field string) (context.Context, error) {
	if reason == "" {
		return ctx, nil
	}
	if p := text.Problem(reason, false); p != "" {
		return ctx, apierr.Invalid([]apierr.Violation{{Field: field, Reason: p}})
	}
	return context.WithValue(ctx, accessReasonKey{}, text.Truncate(reason, MaxAccessReason)), nil
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
// the client address's rate and failed-authentication limits (before any other work),
// authentication, the credential's rate limit, the access reason and the text of every
// field, the handler, mapping the error to a status (the one place), then one log line and
// the metrics.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	md, _ := metadata.FromIncomingContext(ctx)
	ctx, reqID := withRequestID(ctx, first(md.Get(RequestIDHeader)))
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
		addr := s.limits.grpcAddr(ctx, md)
		if err := s.limits.beforeAuth(addr); err != nil {
			return nil, s.retryAfterHeader(ctx, err)
		}
		token, ok := "", false
		if v := first(md.Get("authorization")); v != "" {
			token, ok = auth.BearerToken(v)
		}
		if !ok {
			s.limits.authFailed(addr)
			return nil, auth.ErrUnauthenticated
		}
		ident, err = s.authn.Authenticate(ctx, token)
		if err != nil {
			if errors.Is(err, auth.ErrUnauthenticated) {
				s.limits.authFailed(addr)
			}
			return nil, err
		}
		if err := s.limits.afterAuth(ident.ClientID); err != nil {
			return nil, s.retryAfterHeader(ctx, err)
		}
		if ctx, err = withAccessReason(ctx, accessReasonMetadata(md), AccessReasonHeader); err != nil {
			return nil, err
		}
		// Every string of every request is checked here, so a field added to a contract
		// is covered without a word in its handler.
		if m, ok := req.(proto.Message); ok {
			if err := text.Invalid(m); err != nil {
				return nil, err
			}
		}
		ctx = peers.WithCredential(auth.WithIdentity(ctx, ident), token)
	}
	return handler(ctx, req)
}

// accessReasonMetadata is the reason from gRPC metadata. ASCII metadata cannot carry an
// accented letter, so a reason in UTF-8 may come as x-access-reason-bin instead.
func accessReasonMetadata(md metadata.MD) string {
	if v := first(md.Get(AccessReasonHeader)); v != "" {
		return v
	}
	return first(md.Get(AccessReasonHeader + "-bin"))
}

// retryAfterHeader also sends a rate limit's wait as a retry-after header, for clients that
// read headers rather than the status's RetryInfo detail.
func (s *Server) retryAfterHeader(ctx context.Context, err error) error {
	var e *apierr.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", apierr.RetryAfterSeconds(e.RetryAfter)))
	}
	return err
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
