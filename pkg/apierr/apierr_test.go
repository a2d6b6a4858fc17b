package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/mash-hub/mash/pkg/auth"
)

func TestStatusAndHTTPAgree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err      error
		code     codes.Code
		http     int
		wireCode string
	}{
		{Invalid([]Violation{{"child.nhsNumber", "bad check digit"}, {"concerns", "is required"}}), codes.InvalidArgument, 400, "INVALID_ARGUMENT"},
		{NotFound("no referral x"), codes.NotFound, 404, "NOT_FOUND"},
		{AlreadyExists("key taken"), codes.AlreadyExists, 409, "ALREADY_EXISTS"},
		{FailedPrecondition("claimed by another"), codes.FailedPrecondition, 409, "FAILED_PRECONDITION"},
		{PermissionDenied("no"), codes.PermissionDenied, 403, "PERMISSION_DENIED"},
		{fmt.Errorf("wrapped: %w", auth.ErrUnauthenticated), codes.Unauthenticated, 401, "UNAUTHENTICATED"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, 504, "DEADLINE_EXCEEDED"},
		{errors.New("pq: password authentication failed for user secret"), codes.Internal, 500, "INTERNAL"},
	} {
		st := Status(tc.err)
		if st.Code() != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, st.Code(), tc.code)
		}
		rec := httptest.NewRecorder()
		if got := WriteHTTP(rec, tc.err); got != tc.http || rec.Code != tc.http {
			t.Errorf("%v: HTTP %d, want %d", tc.err, rec.Code, tc.http)
		}
		var b body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		if b.Error.Code != tc.wireCode {
			t.Errorf("%v: wire code %q, want %q", tc.err, b.Error.Code, tc.wireCode)
		}
		if tc.code == codes.Internal && b.Error.Message != st.Message() || st.Message() == tc.err.Error() && tc.code == codes.Internal {
			t.Errorf("internal error text leaked: %q", b.Error.Message)
		}
		if tc.code == codes.Unauthenticated && rec.Header().Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}
}

func TestViolationsTravelOnBothTransports(t *testing.T) {
	t.Parallel()
	err := Invalid([]Violation{{"a", "x"}, {"b.c", "y"}})
	var br *errdetails.BadRequest
	for _, d := range Status(err).Details() {
		br, _ = d.(*errdetails.BadRequest)
	}
	if br == nil || len(br.GetFieldViolations()) != 2 || br.GetFieldViolations()[1].GetField() != "b.c" {
		t.Fatalf("gRPC details: %v", br)
	}
	rec := httptest.NewRecorder()
	WriteHTTP(rec, err)
	var b body
	_ = json.Unmarshal(rec.Body.Bytes(), &b)
	if rec.Code != http.StatusBadRequest || len(b.Error.FieldViolations) != 2 || b.Error.FieldViolations[0].Reason != "x" {
		t.Fatalf("HTTP body: %s", rec.Body)
	}
}
