// Package apierr is the one place where errors become gRPC status codes and HTTP responses,
// so integrators see the same code, message and field list whichever transport they use.
package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mash-hub/mash/pkg/auth"
)

// Violation is one problem with one field of a request.
type Violation struct {
	Field  string `json:"field"`
	Reason string `json:"description"`
}

// Error is an error meant for the caller: its message is safe to show and names what to fix.
type Error struct {
	Code       codes.Code
	Message    string
	Violations []Violation
	// RetryAfter, when positive, tells the caller how long to wait before trying again
	// (Retry-After over HTTP, a google.rpc.RetryInfo detail over gRPC).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

// Invalid reports a request that breaks one or more rules; all of them are listed.
func Invalid(vs []Violation) error {
	msg := "the request has 1 invalid field"
	if len(vs) != 1 {
		msg = "the request has invalid fields"
	}
	if len(vs) > 0 {
		msg += "; first: " + vs[0].Field + " " + vs[0].Reason
	}
	return &Error{Code: codes.InvalidArgument, Message: msg, Violations: vs}
}

// NotFound reports that what was asked for does not exist or is not visible to the caller;
// the two are deliberately indistinguishable.
func NotFound(msg string) error { return &Error{Code: codes.NotFound, Message: msg} }

// AlreadyExists reports a conflicting earlier request.
func AlreadyExists(msg string) error { return &Error{Code: codes.AlreadyExists, Message: msg} }

// PermissionDenied reports an authenticated caller whose role does not allow the call.
func PermissionDenied(msg string) error { return &Error{Code: codes.PermissionDenied, Message: msg} }

// Conflict reports a change refused because the record moved on since the caller read it
// (optimistic concurrency): the caller must reload and decide again.
func Conflict(msg string) error { return &Error{Code: codes.Aborted, Message: msg} }

// FailedPrecondition reports a request the record's state does not allow, such as deciding
// a case nobody has claimed: retrying it unchanged fails again.
func FailedPrecondition(msg string) error {
	return &Error{Code: codes.FailedPrecondition, Message: msg}
}

// Unavailable reports a dependency that is down; the caller should retry.
func Unavailable(msg string) error { return &Error{Code: codes.Unavailable, Message: msg} }

// TooManyRequests reports a caller over its rate limit; it may try again after retryAfter.
func TooManyRequests(msg string, retryAfter time.Duration) error {
	return &Error{Code: codes.ResourceExhausted, Message: msg, RetryAfter: retryAfter}
}

// Status converts any error to the status the caller sees. Errors that are not *Error are
// internal: their text may hold details the caller must not see, so only "internal error"
// goes out (the server logs the rest).
func Status(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	var e *Error
	switch {
	case errors.As(err, &e):
		st := status.New(e.Code, e.Message)
		if len(e.Violations) > 0 {
			br := &errdetails.BadRequest{}
			for _, v := range e.Violations {
				br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Reason})
			}
			if withDetails, derr := st.WithDetails(br); derr == nil {
				st = withDetails
			}
		}
		if e.RetryAfter > 0 {
			if withDetails, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)}); derr == nil {
				st = withDetails
			}
		}
		return st
	case errors.Is(err, auth.ErrUnauthenticated):
		return status.New(codes.Unauthenticated, "missing or invalid bearer credential")
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "the request took too long; retry with the same external reference")
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "the request was cancelled")
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	return status.New(codes.Internal, "internal error; retry with the same external reference, or quote the request id to the hub")
}

// IsInternal reports whether err will reach the caller as an internal error, so it should be
// logged in full.
func IsInternal(err error) bool { return Status(err).Code() == codes.Internal }

// HTTPCode maps a gRPC code to its HTTP status, as in google.rpc.Code.
func HTTPCode(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted, codes.FailedPrecondition:
		// A refused precondition (another's live claim, a case not yet decided) is the
		// record's state standing in the way, not a bad request: a client retrying a 400
		// unchanged would be right to give up.
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return 499
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// body is the JSON error shape of every HTTP endpoint.
type body struct {
	Error struct {
		Code            string      `json:"code"`
		Message         string      `json:"message"`
		FieldViolations []Violation `json:"fieldViolations,omitempty"`
	} `json:"error"`
}

// WriteHTTP writes err as the HTTP response and returns the status written.
func WriteHTTP(w http.ResponseWriter, err error) int {
	st := Status(err)
	var b body
	b.Error.Code = rpccode.Code_name[int32(st.Code())]
	b.Error.Message = st.Message()
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, fv := range d.GetFieldViolations() {
				b.Error.FieldViolations = append(b.Error.FieldViolations, Violation{Field: fv.GetField(), Reason: fv.GetDescription()})
			}
		case *errdetails.RetryInfo:
			w.Header().Set("Retry-After", RetryAfterSeconds(d.GetRetryDelay().AsDuration()))
		}
	}
	code := HTTPCode(st.Code())
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mash"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b)
	return code
}

// RetryAfterSeconds is d as a Retry-After value: whole seconds, rounded up, at least 1, so a
// caller that honours it is never early.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
