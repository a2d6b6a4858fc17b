package console

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/server"
)

// Sign-in methods.
const (
	SignInPassword = "password"
	SignInOIDC     = "oidc"
)

// SignInOutcome is how a sign-in attempt ended.
type SignInOutcome string

// The outcomes of a sign-in attempt.
const (
	SignInSucceeded      SignInOutcome = "succeeded"
	SignInBadCredentials SignInOutcome = "bad_credentials" // unknown user, wrong password or disabled account
	SignInThrottled      SignInOutcome = "throttled"       // too many attempts for the account or address
	SignInBusy           SignInOutcome = "busy"            // password hashing at capacity; not counted as an attempt
	SignInRefused        SignInOutcome = "refused"         // single sign-on failed or mapped to no role
)

// SignInAttempt is one sign-in attempt as the console saw it.
type SignInAttempt struct {
	Method  string
	Outcome SignInOutcome
	// UserID is who signed in (the session's user id); empty unless Outcome is
	// SignInSucceeded.
	UserID string
	// Username is the local username as typed, for password sign-ins. It is unverified
	// input (people type passwords into it): keep it out of logs.
	Username   string
	ClientAddr string
	RequestID  string
	At         time.Time
}

// SignInRecorder is told of every sign-in attempt, for example to put it on the audit
// trail. It is called on the request's goroutine after the answer is decided, so it
// should be quick; its failures are its own to report.
type SignInRecorder interface {
	RecordSignIn(ctx context.Context, a SignInAttempt)
}

// recordSignIn is the one place a sign-in attempt's outcome goes: the log (ids only) and
// the recorder, if one is set.
func (s *Service) recordSignIn(r *http.Request, a SignInAttempt) {
	a.ClientAddr, a.RequestID, a.At = clientIP(r), server.RequestID(r.Context()), s.now()
	fields := []zap.Field{zap.String("method", a.Method), zap.String("outcome", string(a.Outcome)), zap.String("request_id", a.RequestID)}
	if a.UserID != "" {
		fields = append(fields, zap.String("user_id", a.UserID))
	}
	s.log.Info("console: sign-in attempt", fields...)
	if s.signIns != nil {
		s.signIns.RecordSignIn(r.Context(), a)
	}
}
