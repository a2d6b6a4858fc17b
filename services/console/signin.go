package console

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	"github.com/mash-hub/mash/services/console/store"
)

type signInData struct {
	Next     string
	Username string
}

func (s *Service) signInPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.session(r); ok {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	pg := s.newPage(r, nil, "signin.title")
	pg.CSRF = s.preCSRF(w, r)
	pg.OIDC = s.oidc != nil
	pg.Data = signInData{Next: localPath(r.URL.Query().Get("next"))}
	if r.URL.Query().Get("error") == "sso" {
		pg.ErrorKey = "signin.sso_failed"
	}
	s.render(w, http.StatusOK, "signin", pg)
}

// errBadCredentials is the one answer to any failed local sign-in: unknown user, wrong
// password, disabled account all look the same.
var errBadCredentials = errors.New("bad credentials")

var errThrottled = errors.New("too many failed sign-ins")

// retryLater is a refusal that says when to try again: errThrottled or errHashBusy.
type retryLater struct {
	err   error
	after time.Duration
}

func (e *retryLater) Error() string { return e.err.Error() }
func (e *retryLater) Unwrap() error { return e.err }

func (s *Service) signIn(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !s.checkPreCSRF(r) {
		s.errorPage(w, r, nil, http.StatusForbidden, "error.csrf")
		return
	}
	username := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	password := r.PostFormValue("password")
	next := localPath(r.PostFormValue("next"))
	pg := s.newPage(r, nil, "signin.title")
	pg.CSRF = s.preCSRF(w, r)
	pg.OIDC = s.oidc != nil
	pg.Data = signInData{Next: next, Username: username}
	if username == "" {
		pg.Errors = append(pg.Errors, fieldErr{"username", pg.T("signin.username_missing")})
	}
	if password == "" {
		pg.Errors = append(pg.Errors, fieldErr{"password", pg.T("signin.password_missing")})
	}
	if len(pg.Errors) > 0 {
		s.render(w, http.StatusBadRequest, "signin", pg)
		return
	}
	acct, err := s.checkPassword(r.Context(), username, password, clientIP(r))
	var later *retryLater
	if errors.As(err, &later) {
		w.Header().Set("Retry-After", strconv.Itoa(int((later.after+time.Second-1)/time.Second)))
	}
	switch {
	case errors.Is(err, errThrottled):
		s.recordSignIn(r, SignInAttempt{Method: SignInPassword, Username: username, Outcome: SignInThrottled})
		pg.ErrorText = pg.T("signin.throttled", int((later.after+time.Minute-1)/time.Minute))
		s.render(w, http.StatusTooManyRequests, "signin", pg)
		return
	case errors.Is(err, errHashBusy):
		s.recordSignIn(r, SignInAttempt{Method: SignInPassword, Username: username, Outcome: SignInBusy})
		pg.ErrorKey = "signin.busy"
		s.render(w, http.StatusTooManyRequests, "signin", pg)
		return
	case errors.Is(err, errBadCredentials):
		s.recordSignIn(r, SignInAttempt{Method: SignInPassword, Username: username, Outcome: SignInBadCredentials})
		pg.ErrorKey = "signin.failed"
		s.render(w, http.StatusUnauthorized, "signin", pg)
		return
	case err != nil && r.Context().Err() != nil:
		return // the browser went away while waiting for a hashing slot
	case err != nil:
		s.log.Error("console: sign in", zap.String("request_id", server.RequestID(r.Context())), zap.Error(err))
		s.errorPage(w, r, nil, http.StatusInternalServerError, "error.internal")
		return
	}
	if err := s.startSessionOfKind(w, r, localUserID(acct.Username), acct.DisplayName, auth.Role(acct.Role), acct.Agency, acct.Kind, acct.Partnerships); err != nil {
		s.log.Error("console: start session", zap.String("request_id", server.RequestID(r.Context())), zap.Error(err))
		s.errorPage(w, r, nil, http.StatusInternalServerError, "error.internal")
		return
	}
	s.recordSignIn(r, SignInAttempt{Method: SignInPassword, Username: username, UserID: localUserID(acct.Username), Outcome: SignInSucceeded})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// checkPassword checks a local sign-in. The throttle counts the attempt before anything
// else, so attempts sent at once are each counted before any is checked; the password is
// then checked in the hashing pool, against a dummy hash when there is no such account, so
// an unknown username costs the same time and memory as a known one.
func (s *Service) checkPassword(ctx context.Context, username, password, ip string) (store.Account, error) {
	if len(username) > maxUsernameLen {
		// No account has such a name (CreateAccount refuses it), and it would not fit the
		// throttle's key: nothing to count, nothing to hash.
		return store.Account{}, errBadCredentials
	}
	userKey, addrKey := "user:"+username, "ip:"+ip
	keys := []string{userKey, addrKey}
	now := s.now()
	t := s.cfg.Throttle
	ok, retryAt, err := s.store.ReserveAttempt(ctx, keys, []int{t.PerUser, t.PerIP}, t.Window, now)
	if err != nil {
		return store.Account{}, err
	}
	if !ok {
		s.log.Warn("console: sign-in throttled", zap.String("key_kind", "user-or-ip"))
		return store.Account{}, &retryLater{err: errThrottled, after: max(retryAt.Sub(now), time.Second)}
	}
	acct, err := s.store.Account(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Account{}, errors.Join(err, s.releaseAttempt(ctx, keys, now))
	}
	found := err == nil
	hash := acct.PasswordHash
	if !found {
		hash = s.dummyHash // same work whether or not the account exists
	}
	var match, rehash bool
	var verr error
	if err := s.hashes.do(ctx, func() { match, rehash, verr = VerifyPassword(password, hash, s.cfg.Argon2) }); err != nil {
		// Never checked, so not a failure: give the attempt back.
		if rerr := s.releaseAttempt(ctx, keys, now); rerr != nil {
			return store.Account{}, rerr
		}
		if errors.Is(err, errHashBusy) {
			s.log.Warn("console: sign-in refused, password hashing at capacity")
			return store.Account{}, &retryLater{err: errHashBusy, after: s.hashes.retryAfter()}
		}
		return store.Account{}, err
	}
	if verr != nil && found {
		s.log.Error("console: stored password hash unreadable")
	}
	if !match || !found || acct.Disabled {
		return store.Account{}, errBadCredentials // the attempt stays counted, as a failure
	}
	// A success clears the account's count, and is no failure of the client's address.
	if err := s.store.ClearFailures(ctx, userKey); err != nil {
		return store.Account{}, err
	}
	if err := s.releaseAttempt(ctx, []string{addrKey}, now); err != nil {
		return store.Account{}, err
	}
	if rehash {
		// Through the pool too, but never queued for: when it is busy the rehash waits for
		// the next sign-in rather than delaying this one.
		var fresh string
		s.hashes.tryDo(func() { fresh, _ = HashPassword(password, s.cfg.Argon2) })
		if fresh != "" {
			_ = s.store.SetPasswordHash(ctx, acct.Username, fresh)
		}
	}
	_ = s.store.SignedIn(ctx, acct.Username, now)
	return acct, nil
}

// releaseAttempt gives back attempts whether or not the request is still wanted: an
// attempt left counted would lock a person out for something they never did.
func (s *Service) releaseAttempt(ctx context.Context, keys []string, now time.Time) error {
	return s.store.ReleaseAttempt(context.WithoutCancel(ctx), keys, s.cfg.Throttle.Window, now)
}

// startSession creates a hub person's auth session and gives the browser its cookie.
func (s *Service) startSession(w http.ResponseWriter, r *http.Request, userID, displayName string, role auth.Role, agency string, partnerships []string) error {
	return s.startSessionOfKind(w, r, userID, displayName, role, agency, auth.StaffKind, partnerships)
}

// startSessionOfKind is startSession for a person of an agency of kind (a partner's).
func (s *Service) startSessionOfKind(w http.ResponseWriter, r *http.Request, userID, displayName string, role auth.Role, agency, kind string, partnerships []string) error {
	if kind == "" {
		kind = auth.StaffKind
	}
	sess, token, err := s.sessions.CreateSessionOfKind(r.Context(), userID, displayName, role, agency, kind, s.cfg.SessionTTL, partnerships...)
	if err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(r, SessionCookie, token, s.cfg.SessionTTL))
	s.log.Info("console: signed in", zap.String("session", sess.ID), zap.String("client", auth.UserPrefix+userID),
		zap.String("role", string(role)), zap.String("request_id", server.RequestID(r.Context())))
	return nil
}

func (s *Service) signOut(w http.ResponseWriter, r *http.Request, rs *reqState) {
	if err := s.sessions.EndSession(r.Context(), rs.token); err != nil && !errors.Is(err, auth.ErrNoSuchSession) {
		s.log.Error("console: end session", zap.String("session", rs.sessionID), zap.Error(err))
	}
	http.SetCookie(w, s.cookie(r, SessionCookie, "", -1))
	s.log.Info("console: signed out", zap.String("session", rs.sessionID))
	http.Redirect(w, r, "/console/sign-in?done=signed_out", http.StatusSeeOther)
}

// clientIP is the connection's address, or for IPv6 its /64 network, since one host
// commonly holds a whole /64 and could otherwise take a fresh address per attempt. Behind a
// proxy every sign-in shares the proxy's address, so the per-address limit is generous; the
// per-user limit does the real work.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return host
}
