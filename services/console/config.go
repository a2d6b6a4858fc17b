package console

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"mash/pkg/auth"
)

// Environment variables the console reads.
const (
	EnvKey             = "MASH_CONSOLE_KEY"              // 32+ random bytes, hex or base64: signs CSRF tokens and OIDC state
	EnvInsecureCookies = "MASH_CONSOLE_INSECURE_COOKIES" // true: cookies without Secure, for http://localhost only
	EnvSessionTTL      = "MASH_CONSOLE_SESSION_TTL"      // how long a sign-in lasts; default 10h
	EnvAgency          = "MASH_CONSOLE_AGENCY"           // the agency of local accounts; default mash-hub
	EnvPartnership     = "MASH_CONSOLE_PARTNERSHIP"      // the partnership whose rule packs are shown first; default "default"
	EnvOIDCIssuer      = "MASH_OIDC_ISSUER"
	EnvOIDCClientID    = "MASH_OIDC_CLIENT_ID"
	EnvOIDCSecret      = "MASH_OIDC_CLIENT_SECRET"
	EnvOIDCRedirect    = "MASH_OIDC_REDIRECT_URL" // https://hub.example/console/oidc/callback
	EnvOIDCRoleClaim   = "MASH_OIDC_ROLE_CLAIM"   // claim holding roles or groups; default "roles"
	EnvOIDCRoleMap     = "MASH_OIDC_ROLE_MAP"     // "mash-managers=manager,mash-social-workers=practitioner"
	EnvOIDCAgencyClaim = "MASH_OIDC_AGENCY_CLAIM" // claim naming the person's agency; default: MASH_CONSOLE_AGENCY
)

// Config defaults.
const (
	DefaultSessionTTL  = 10 * time.Hour
	DefaultAgency      = "mash-hub"
	DefaultPartnership = "default"
	DefaultRoleClaim   = "roles"
)

// Config is the console's settings.
type Config struct {
	// Key signs CSRF tokens and the OIDC state cookie. Empty: a random key per process,
	// which is fine for one process but breaks forms across replicas and restarts.
	Key []byte
	// InsecureCookies drops the Secure flag, for plain-HTTP development on localhost.
	InsecureCookies bool
	// SessionTTL is how long a sign-in lasts. Default 10h (a long shift).
	SessionTTL time.Duration
	// Agency is the agency local accounts act for. Default mash-hub.
	Agency string
	// Partnership is the partnership whose rule packs are listed by default.
	Partnership string
	// OIDC configures single sign-on; it is enabled when Issuer, ClientID, ClientSecret and
	// RedirectURL are all set.
	OIDC OIDCConfig
	// Throttle limits failed local sign-ins.
	Throttle ThrottleConfig
	// Argon2 is the cost of new password hashes. Default DefaultArgon2.
	Argon2 Argon2Params
}

// OIDCConfig configures sign-in through an OpenID Connect provider.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string
	// RoleClaim is the ID token claim holding the person's roles or groups (a string or an
	// array of strings). Default "roles".
	RoleClaim string
	// RoleMap maps claim values to console roles; a value that is itself a role name
	// (practitioner, manager, auditor, admin) maps to that role.
	RoleMap map[string]auth.Role
	// AgencyClaim names the claim holding the person's agency slug; empty: Config.Agency.
	AgencyClaim string
}

// Enabled reports whether single sign-on is configured.
func (o OIDCConfig) Enabled() bool {
	return o.Issuer != "" && o.ClientID != "" && o.ClientSecret != "" && o.RedirectURL != ""
}

// ThrottleConfig bounds failed sign-ins: per username (a guessing attack on one account)
// and per client address (spraying one password over many accounts).
type ThrottleConfig struct {
	PerUser int
	PerIP   int
	Window  time.Duration
}

func (c *Config) defaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.Agency == "" {
		c.Agency = DefaultAgency
	}
	if c.Partnership == "" {
		c.Partnership = DefaultPartnership
	}
	if c.OIDC.RoleClaim == "" {
		c.OIDC.RoleClaim = DefaultRoleClaim
	}
	if c.Throttle.PerUser == 0 {
		c.Throttle.PerUser = 5
	}
	if c.Throttle.PerIP == 0 {
		c.Throttle.PerIP = 50
	}
	if c.Throttle.Window == 0 {
		c.Throttle.Window = 15 * time.Minute
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2
	}
}

// ConfigFromEnv reads Config from environment variables through lookup (os.LookupEnv).
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	var c Config
	var errs []error
	if v, ok := lookup(EnvKey); ok && v != "" {
		k, err := hex.DecodeString(v)
		if err != nil {
			k, err = base64.StdEncoding.DecodeString(v)
		}
		if err != nil || len(k) < 32 {
			errs = append(errs, fmt.Errorf("%s: must be at least 32 random bytes, hex or base64 (openssl rand -hex 32)", EnvKey))
		}
		c.Key = k
	}
	if v, ok := lookup(EnvInsecureCookies); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: must be true or false", EnvInsecureCookies, v))
		}
		c.InsecureCookies = b
	}
	if v, ok := lookup(EnvSessionTTL); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > auth.MaxSessionTTL {
			errs = append(errs, fmt.Errorf("%s %q: must be a duration such as 10h, at most %s", EnvSessionTTL, v, auth.MaxSessionTTL))
		}
		c.SessionTTL = d
	}
	c.Agency, _ = lookup(EnvAgency)
	c.Partnership, _ = lookup(EnvPartnership)
	c.OIDC.Issuer, _ = lookup(EnvOIDCIssuer)
	c.OIDC.ClientID, _ = lookup(EnvOIDCClientID)
	c.OIDC.ClientSecret, _ = lookup(EnvOIDCSecret)
	c.OIDC.RedirectURL, _ = lookup(EnvOIDCRedirect)
	c.OIDC.RoleClaim, _ = lookup(EnvOIDCRoleClaim)
	c.OIDC.AgencyClaim, _ = lookup(EnvOIDCAgencyClaim)
	if v, ok := lookup(EnvOIDCRoleMap); ok && v != "" {
		m, err := ParseRoleMap(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvOIDCRoleMap, err))
		}
		c.OIDC.RoleMap = m
	}
	set := 0
	for _, v := range []string{c.OIDC.Issuer, c.OIDC.ClientID, c.OIDC.ClientSecret, c.OIDC.RedirectURL} {
		if v != "" {
			set++
		}
	}
	if set != 0 && set != 4 {
		errs = append(errs, fmt.Errorf("%s, %s, %s and %s: set all four to enable single sign-on, or none",
			EnvOIDCIssuer, EnvOIDCClientID, EnvOIDCSecret, EnvOIDCRedirect))
	}
	return c, errors.Join(errs...)
}

// ParseRoleMap reads "group-a=manager,group-b=practitioner".
func ParseRoleMap(s string) (map[string]auth.Role, error) {
	out := map[string]auth.Role{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		r := auth.Role(v)
		if !ok || k == "" || !slices.Contains(staffRoles, r) {
			return nil, fmt.Errorf("entry %q: want claim-value=role, role one of practitioner, manager, auditor, admin", part)
		}
		out[k] = r
	}
	return out, nil
}

// staffRoles are the roles a person may sign in with, most privileged first: a person
// whose claims map to several roles gets the first.
var staffRoles = []auth.Role{auth.RoleAdmin, auth.RoleManager, auth.RolePractitioner, auth.RoleAuditor}
