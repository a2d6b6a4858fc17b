package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
)

// oidcProvider signs people in through the partnership's identity provider with the
// authorization code flow, state, nonce and PKCE.
type oidcProvider struct {
	cfg      OIDCConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newOIDCProvider(ctx context.Context, cfg OIDCConfig) (*oidcProvider, error) {
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%s %s: discovery: %w", EnvOIDCIssuer, cfg.Issuer, err)
	}
	return &oidcProvider{
		cfg: cfg,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"}},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
	}, nil
}

// oidcPending is a sign-in in progress, kept in a short-lived cookie whose value is MACed
// with the console key so it cannot be forged.
type oidcPending struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Expires  int64  `json:"e"`
}

func (s *Service) oidcStart(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		s.errorPage(w, r, nil, http.StatusNotFound, "error.notfound")
		return
	}
	p := oidcPending{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
		Next: localPath(r.URL.Query().Get("next")), Expires: s.now().Add(10 * time.Minute).Unix()}
	raw, _ := json.Marshal(p)
	val := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(w, s.cookie(r, oidcCookie, val+"."+s.mac("oidc\x00"+val), 10*time.Minute))
	u := s.oidc.oauth.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier))
	http.Redirect(w, r, u, http.StatusFound)
}

func (s *Service) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		s.errorPage(w, r, nil, http.StatusNotFound, "error.notfound")
		return
	}
	fail := func(why string, err error) {
		s.log.Warn("console: single sign-on failed", zap.String("why", why), zap.Error(err),
			zap.String("request_id", server.RequestID(r.Context())))
		s.recordSignIn(r, SignInAttempt{Method: SignInOIDC, Outcome: SignInRefused})
		http.SetCookie(w, s.cookie(r, oidcCookie, "", -1))
		http.Redirect(w, r, "/console/sign-in?error=sso", http.StatusSeeOther)
	}
	p, err := s.readPending(r)
	if err != nil {
		fail("pending sign-in", err)
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		fail("provider refused", errors.New(e))
		return
	}
	if q.Get("state") == "" || q.Get("state") != p.State {
		fail("state", errors.New("state does not match"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := s.oidc.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.Verifier))
	if err != nil {
		fail("code exchange", err)
		return
	}
	rawID, ok := tok.Extra("id_token").(string)
	if !ok {
		fail("id token", errors.New("no id_token in the token response"))
		return
	}
	idt, err := s.oidc.verifier.Verify(ctx, rawID)
	if err != nil {
		fail("id token", err)
		return
	}
	if idt.Nonce != p.Nonce {
		fail("nonce", errors.New("nonce does not match"))
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		fail("claims", err)
		return
	}
	who, err := s.oidc.person(claims, idt.Subject, s.cfg.Agency)
	if err != nil {
		fail("claims", err)
		return
	}
	http.SetCookie(w, s.cookie(r, oidcCookie, "", -1))
	// A partner is limited by its agency, as its agency's system is: it serves no partnerships.
	partnerships := s.cfg.OIDC.Partnerships
	if who.role == auth.RolePartner {
		partnerships = nil
	}
	if err := s.startSessionOfKind(w, r, who.userID, who.name, who.role, who.agency, who.kind, partnerships); err != nil {
		fail("session", err)
		return
	}
	s.recordSignIn(r, SignInAttempt{Method: SignInOIDC, UserID: who.userID, Outcome: SignInSucceeded})
	http.Redirect(w, r, p.Next, http.StatusSeeOther)
}

func (s *Service) readPending(r *http.Request) (oidcPending, error) {
	ck, err := r.Cookie(oidcCookie)
	if err != nil {
		return oidcPending{}, errors.New("no sign-in in progress")
	}
	val, mac, ok := strings.Cut(ck.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.mac("oidc\x00"+val))) {
		return oidcPending{}, errors.New("sign-in cookie not ours")
	}
	raw, err := base64.RawURLEncoding.DecodeString(val)
	if err != nil {
		return oidcPending{}, err
	}
	var p oidcPending
	if err := json.Unmarshal(raw, &p); err != nil {
		return oidcPending{}, err
	}
	if s.now().Unix() > p.Expires {
		return oidcPending{}, errors.New("sign-in took too long")
	}
	p.Next = localPath(p.Next)
	return p, nil
}

var userIDSafe = regexp.MustCompile(`^[A-Za-z0-9._@+-]{1,100}$`)

type person struct {
	userID, name, agency string
	role                 auth.Role
	// kind is the agency's kind: "hub" for staff, a partner agency's for partners.
	kind string
}

// person reads who signed in from the ID token's claims: a stable user id from the
// subject, a display name, the agency, and the most privileged role the role claim maps
// to through OIDCConfig.RoleMap. No mapped role: no entry.
func (o *oidcProvider) person(claims map[string]any, subject, defaultAgency string) (person, error) {
	return personFromClaims(o.cfg, claims, subject, defaultAgency)
}

func personFromClaims(cfg OIDCConfig, claims map[string]any, subject, defaultAgency string) (person, error) {
	p := person{userID: "oidc:" + subject, agency: defaultAgency, kind: auth.StaffKind}
	if !userIDSafe.MatchString(subject) {
		// Some providers' subjects hold characters a user id may not: a stable digest.
		sum := sha256.Sum256([]byte(subject))
		p.userID = "oidc:" + hex.EncodeToString(sum[:16])
	}
	for _, k := range []string{"name", "preferred_username", "email"} {
		if v, ok := claims[k].(string); ok && v != "" {
			p.name = v
			break
		}
	}
	if p.name == "" {
		p.name = subject
	}
	if cfg.AgencyClaim != "" {
		if v, ok := claims[cfg.AgencyClaim].(string); ok && v != "" {
			p.agency = v
		}
	}
	var values []string
	switch v := claims[cfg.RoleClaim].(type) {
	case string:
		values = strings.Fields(strings.ReplaceAll(v, ",", " "))
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				values = append(values, s)
			}
		}
	}
	// Only the partnership's map grants a role: a group that is merely called "admin" in
	// the provider (anyone who can make groups there can make one) grants nothing.
	var roles []auth.Role
	for _, v := range values {
		if r, ok := cfg.RoleMap[v]; ok {
			roles = append(roles, r)
		}
	}
	for _, r := range staffRoles {
		if slices.Contains(roles, r) {
			p.role = r
			return p, nil
		}
	}
	// No staff role: a partner agency's person, if a value maps to one agency. A person
	// whose values map to two agencies is refused rather than given either.
	var partner *PartnerAgency
	for _, v := range values {
		pa, ok := cfg.PartnerMap[v]
		if !ok {
			continue
		}
		if partner != nil && *partner != pa {
			return person{}, fmt.Errorf("claim %q maps to two partner agencies (%s, %s)", cfg.RoleClaim, partner.Agency, pa.Agency)
		}
		partner = &pa
	}
	if partner != nil {
		p.role, p.agency, p.kind = auth.RolePartner, partner.Agency, partner.Kind
		return p, nil
	}
	return person{}, fmt.Errorf("claim %q maps to no console role", cfg.RoleClaim)
}
