package console

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/peers"
)

// identityProvider is a small OpenID Connect provider for tests: discovery, keys, an
// authorization endpoint that signs in whoever it is told to, and a token endpoint that
// checks the client secret and the PKCE verifier before issuing a signed ID token.
type identityProvider struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	clientID string
	secret   string

	mu sync.Mutex
	// claims of the person the next authorization signs in.
	claims map[string]any
	codes  map[string]pendingCode
	// tamperNonce makes the ID token carry a nonce the console did not send.
	tamperNonce bool
}

type pendingCode struct {
	nonce, challenge, redirect string
}

func newIdentityProvider(t *testing.T) *identityProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &identityProvider{key: key, clientID: "mash-console", secret: "idp-test-secret", codes: map[string]pendingCode{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.srv.URL, "authorization_endpoint": p.srv.URL + "/authorize", "token_endpoint": p.srv.URL + "/token",
			"jwks_uri": p.srv.URL + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != p.clientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		code := randomToken()
		p.mu.Lock()
		p.codes[code] = pendingCode{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		p.mu.Lock()
		pc, found := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		claims, tamper := p.claims, p.tamperNonce
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case id != p.clientID || secret != p.secret:
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		case !found || pc.redirect != r.PostForm.Get("redirect_uri"):
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != pc.challenge:
			http.Error(w, `{"error":"invalid_grant","error_description":"PKCE"}`, http.StatusBadRequest)
			return
		}
		nonce := pc.nonce
		if tamper {
			nonce = "not-the-one-sent"
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		now := time.Now()
		std := jwt.Claims{Issuer: p.srv.URL, Audience: jwt.Audience{p.clientID}, IssuedAt: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}
		raw, err := jwt.Signed(signer).Claims(std).Claims(map[string]any{"nonce": nonce}).Claims(claims).Serialize()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": randomToken(), "token_type": "Bearer", "expires_in": 300, "id_token": raw})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// newOIDCEnv is newEnv with single sign-on through idp configured.
func newOIDCEnv(t *testing.T, idp *identityProvider) *env {
	t.Helper()
	base := newEnv(t)
	// The console must know its own callback address before it starts.
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	svc, err := New(Deps{Pool: base.pool, Log: zap.NewNop(), Auth: base.auth, Peers: peers.NewBook("127.0.0.1:1", nil),
		Config: Config{InsecureCookies: true, Argon2: testArgon2, Key: []byte("0123456789abcdef0123456789abcdef"),
			OIDC: OIDCConfig{Issuer: idp.srv.URL, ClientID: idp.clientID, ClientSecret: idp.secret,
				RedirectURL: srv.URL + "/console/oidc/callback", RoleClaim: "groups",
				RoleMap:    map[string]auth.Role{"mash-duty-managers": auth.RoleManager, "mash-social-workers": auth.RolePractitioner},
				PartnerMap: map[string]PartnerAgency{"swp-ppu": {Agency: "south-wales-police", Kind: "police"}}}},
		Backends: Backends{Triage: base.triage, Rules: base.rules, Notify: base.notify, Audit: fakeAudit{}, Intake: &fakeIntake{}}})
	if err != nil {
		t.Fatal(err)
	}
	handler = svc.Handler()
	return &env{pool: base.pool, svc: svc, srv: srv, auth: base.auth, triage: base.triage, rules: base.rules, notify: base.notify}
}

// signInThrough follows the browser's redirects from the console's start URL through the
// provider and back, and returns where the console sent the browser last.
func signInThrough(t *testing.T, e *env) (*http.Client, string) {
	t.Helper()
	c := e.client(t)
	next := e.srv.URL + "/console/oidc/start?next=/console/queue"
	for range 5 {
		resp, err := c.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode >= 400 || loc == "" {
			t.Fatalf("GET %s: %d without a redirect", next, resp.StatusCode)
		}
		u, err := resp.Request.URL.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(u.Path, "/console/") && !strings.HasPrefix(u.Path, "/console/oidc/") {
			return c, u.RequestURI()
		}
		next = u.String()
	}
	t.Fatal("too many redirects")
	return nil, ""
}

func TestSingleSignOn(t *testing.T) {
	t.Parallel()
	idp := newIdentityProvider(t)
	e := newOIDCEnv(t, idp)

	// The sign-in page offers single sign-on.
	if _, body, _ := get(t, e.client(t), e.srv.URL+"/console/sign-in"); !strings.Contains(body, "/console/oidc/start") {
		t.Fatal("sign-in page offers no single sign-on")
	}

	// A duty manager signs in; the session is theirs, as a manager, for every service.
	idp.claims = map[string]any{"sub": "staff-4711", "name": "Rhian Evans", "groups": []string{"everyone", "mash-duty-managers"}}
	c, landed := signInThrough(t, e)
	if landed != "/console/queue" {
		t.Fatalf("signed in, landed on %s, want /console/queue", landed)
	}
	code, body, _ := get(t, c, e.srv.URL+"/console/queue")
	if code != 200 || !strings.Contains(body, "Rhian Evans") {
		t.Fatalf("queue after single sign-on: %d", code)
	}
	var token string
	for _, ck := range c.Jar.Cookies(mustURL(t, e.srv.URL)) {
		if ck.Name == SessionCookie {
			token = ck.Value
		}
	}
	id, err := e.auth.Authenticate(context.Background(), token)
	if err != nil || id.ClientID != "user:oidc:staff-4711" || id.Role != auth.RoleManager {
		t.Fatalf("session identity %+v, %v; want user:oidc:staff-4711 as manager", id, err)
	}

	// Nobody gets in without a role the partnership mapped.
	idp.claims = map[string]any{"sub": "visitor-1", "name": "A Visitor", "groups": []string{"everyone"}}
	if _, landed := signInThrough(t, e); !strings.HasPrefix(landed, "/console/sign-in?error=sso") {
		t.Fatalf("unmapped person landed on %s, want the sign-in page with an error", landed)
	}
	// An ID token for another sign-in (wrong nonce) is refused.
	idp.claims = map[string]any{"sub": "staff-4711", "name": "Rhian Evans", "groups": []string{"mash-duty-managers"}}
	idp.tamperNonce = true
	if _, landed := signInThrough(t, e); !strings.HasPrefix(landed, "/console/sign-in?error=sso") {
		t.Fatalf("replayed nonce landed on %s, want refusal", landed)
	}
	idp.tamperNonce = false
	// A callback whose state is not the one this browser started with is refused.
	c2 := e.client(t)
	resp, err := c2.Get(e.srv.URL + "/console/oidc/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	code, _, h := get(t, c2, e.srv.URL+"/console/oidc/callback?code=x&state=forged")
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/sign-in?error=sso") {
		t.Fatalf("forged state: %d to %s", code, h.Get("Location"))
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
