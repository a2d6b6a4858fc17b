package console

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"mash/pkg/auth"
	"mash/pkg/server"
	"mash/services/console/store"
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
	switch {
	case errors.Is(err, errThrottled):
		pg.ErrorKey = "signin.throttled"
		s.render(w, http.StatusTooManyRequests, "signin", pg)
		return
	case errors.Is(err, errBadCredentials):
		pg.ErrorKey = "signin.failed"
		s.render(w, http.StatusUnauthorized, "signin", pg)
		return
	case err != nil:
		s.log.Error("console: sign in", zap.String("request_id", server.RequestID(r.Context())), zap.Error(err))
		s.errorPage(w, r, nil, http.StatusInternalServerError, "error.internal")
		return
	}
	if err := s.startSession(w, r, localUserID(acct.Username), acct.DisplayName, auth.Role(acct.Role), acct.Agency); err != nil {
		s.log.Error("console: start session", zap.String("request_id", server.RequestID(r.Context())), zap.Error(err))
		s.errorPage(w, r, nil, http.StatusInternalServerError, "error.internal")
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// checkPassword checks a local sign-in against the throttle and the account's hash.
func (s *Service) checkPassword(ctx context.Context, username, password, ip string) (store.Account, error) {
	keys := []string{"user:" + username, "ip:" + ip}
	now := s.now()
	t := s.cfg.Throttle
	throttled, err := s.store.Throttled(ctx, keys, []int{t.PerUser, t.PerIP}, t.Window, now)
	if err != nil {
		return store.Account{}, err
	}
	if throttled {
		s.log.Warn("console: sign-in throttled", zap.String("key_kind", "user-or-ip"))
		return store.Account{}, errThrottled
	}
	acct, err := s.store.Account(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Account{}, err
	}
	hash := acct.PasswordHash
	if errors.Is(err, store.ErrNotFound) {
		hash = s.dummyHash // same work whether or not the account exists
	}
	ok, rehash, verr := VerifyPassword(password, hash, s.cfg.Argon2)
	if verr != nil {
		s.log.Error("console: stored password hash unreadable", zap.String("account_found", "true"))
	}
	if !ok || err != nil || acct.Disabled {
		if ferr := s.store.RecordFailure(ctx, keys, t.Window, now); ferr != nil {
			return store.Account{}, ferr
		}
		return store.Account{}, errBadCredentials
	}
	if err := s.store.ClearFailures(ctx, keys[0]); err != nil {
		return store.Account{}, err
	}
	if rehash {
		if h, err := HashPassword(password, s.cfg.Argon2); err == nil {
			_ = s.store.SetPasswordHash(ctx, acct.Username, h)
		}
	}
	_ = s.store.SignedIn(ctx, acct.Username, now)
	return acct, nil
}

// startSession creates the person's auth session and gives the browser its cookie.
func (s *Service) startSession(w http.ResponseWriter, r *http.Request, userID, displayName string, role auth.Role, agency string) error {
	sess, token, err := s.sessions.CreateSession(r.Context(), userID, displayName, role, agency, s.cfg.SessionTTL)
	if err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(SessionCookie, token, s.cfg.SessionTTL))
	s.log.Info("console: signed in", zap.String("session", sess.ID), zap.String("client", auth.UserPrefix+userID),
		zap.String("role", string(role)), zap.String("request_id", server.RequestID(r.Context())))
	return nil
}

func (s *Service) signOut(w http.ResponseWriter, r *http.Request, rs *reqState) {
	if err := s.sessions.EndSession(r.Context(), rs.token); err != nil && !errors.Is(err, auth.ErrNoSuchSession) {
		s.log.Error("console: end session", zap.String("session", rs.sessionID), zap.Error(err))
	}
	http.SetCookie(w, s.cookie(SessionCookie, "", -1))
	s.log.Info("console: signed out", zap.String("session", rs.sessionID))
	http.Redirect(w, r, "/console/sign-in?done=signed_out", http.StatusSeeOther)
}

// clientIP is the connection's address. Behind a proxy every sign-in shares the proxy's
// address, so the per-address limit is generous; the per-user limit does the real work.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
