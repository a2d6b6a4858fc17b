package console

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mash-hub/mash/pkg/auth"
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
	// EnvOIDCPartnerships lists the partnerships staff signing in through OIDC serve,
	// comma-separated, or * for every one; default: MASH_CONSOLE_PARTNERSHIP.
	EnvOIDCPartnerships = "MASH_OIDC_PARTNERSHIPS"

	EnvHashConcurrency = "MASH_CONSOLE_HASH_CONCURRENCY"     // password hashes run at once per process; default 2
	EnvHashQueue       = "MASH_CONSOLE_HASH_QUEUE"           // sign-ins that may wait for a hashing slot; default 32
	EnvHashWait        = "MASH_CONSOLE_HASH_WAIT"            // how long one may wait; default 3s
	EnvSignInUserLimit = "MASH_CONSOLE_SIGNIN_USER_LIMIT"    // sign-in attempts per username per window; default 5
	EnvSignInAddrLimit = "MASH_CONSOLE_SIGNIN_ADDRESS_LIMIT" // failed sign-ins per client address per window; default 50
	EnvSignInWindow    = "MASH_CONSOLE_SIGNIN_WINDOW"        // the throttle's window; default 15m
	EnvOIDCPartnerMap  = "MASH_OIDC_PARTNER_MAP"             // "swp-ppu=south-wales-police/police,ctm-hv=cwm-taf-health/health"
)

// Config defaults.
const (
	DefaultSessionTTL  = 10 * time.Hour
	DefaultAgency      = "mash-hub"
	DefaultPartnership = "default"
	DefaultRoleClaim   = "roles"

	// DefaultHashConcurrency bounds argon2id's memory per process: with DefaultArgon2 two
	// hashes hold 38 MiB, and two run about as fast as the two cores a small host has.
	DefaultHashConcurrency = 2
	DefaultHashQueue       = 32
	DefaultHashWait        = 3 * time.Second
	DefaultSignInUserLimit = 5
	DefaultSignInAddrLimit = 50
	DefaultSignInWindow    = 15 * time.Minute
)

// Bounds on the settings above, so a typo cannot remove the protection they give.
const (
	maxHashConcurrency = 64
	maxHashQueue       = 4096
	maxHashWait        = 30 * time.Second
	maxSignInLimit     = 10000
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
	// Hashing bounds how much password hashing runs at once.
	Hashing HashingConfig
}

// HashingConfig bounds password hashing in one process: at most Concurrency argon2id
// hashes run at once (each holds Argon2Params.MemoryKiB), at most Queue sign-ins wait for
// a slot, each for at most MaxWait; the rest are answered 429 with Retry-After at once.
type HashingConfig struct {
	Concurrency int
	Queue       int
	MaxWait     time.Duration
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
	// RoleMap maps claim values to console roles, and is the only way a claim grants one:
	// a group that happens to be called "admin" grants nothing unless the map says so.
	// Required when single sign-on is enabled.
	RoleMap map[string]auth.Role
	// AgencyClaim names the claim holding the person's agency slug; empty: Config.Agency.
	AgencyClaim string
	// Partnerships are those staff signing in through the provider serve; empty:
	// Config.Partnership alone.
	Partnerships []string
	// PartnerMap maps claim values (of RoleClaim) to partner agencies: a person with no
	// staff role and one of these signs in with the partner role for that agency alone,
	// whatever the agency claim says.
	PartnerMap map[string]PartnerAgency
}

// PartnerAgency is the agency, and its kind, that a partner's claim value stands for.
type PartnerAgency struct {
	Agency string
	Kind   string
}

// Enabled reports whether single sign-on is configured.
func (o OIDCConfig) Enabled() bool {
	return o.Issuer != "" && o.ClientID != "" && o.ClientSecret != "" && o.RedirectURL != ""
}

// ThrottleConfig bounds sign-in attempts per window: per username (a guessing attack on
// one account: every attempt counts from before its password is checked, and a successful
// sign-in clears the count) and per client address (spraying one password over many
// accounts: failed attempts count).
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
	if len(c.OIDC.Partnerships) == 0 {
		c.OIDC.Partnerships = []string{c.Partnership}
	}
	if c.OIDC.RoleClaim == "" {
		c.OIDC.RoleClaim = DefaultRoleClaim
	}
	if c.Throttle.PerUser == 0 {
		c.Throttle.PerUser = DefaultSignInUserLimit
	}
	if c.Throttle.PerIP == 0 {
		c.Throttle.PerIP = DefaultSignInAddrLimit
	}
	if c.Throttle.Window == 0 {
		c.Throttle.Window = DefaultSignInWindow
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2
	}
	if c.Hashing.Concurrency == 0 {
		c.Hashing.Concurrency = DefaultHashConcurrency
	}
	if c.Hashing.Queue == 0 {
		c.Hashing.Queue = DefaultHashQueue
	}
	if c.Hashing.MaxWait == 0 {
		c.Hashing.MaxWait = DefaultHashWait
	}
}

// validate checks a defaulted Config, naming the setting that is wrong.
func (c *Config) validate() error {
	var errs []error
	if n := c.Hashing.Concurrency; n < 1 || n > maxHashConcurrency {
		errs = append(errs, fmt.Errorf("%s %d: use 1 to %d (each hash holds %d MiB)", EnvHashConcurrency, n, maxHashConcurrency, c.Argon2.MemoryKiB/1024))
	}
	if n := c.Hashing.Queue; n < 1 || n > maxHashQueue {
		errs = append(errs, fmt.Errorf("%s %d: use 1 to %d", EnvHashQueue, n, maxHashQueue))
	}
	if d := c.Hashing.MaxWait; d < 10*time.Millisecond || d > maxHashWait {
		errs = append(errs, fmt.Errorf("%s %s: use 10ms to %s", EnvHashWait, d, maxHashWait))
	}
	if n := c.Throttle.PerUser; n < 1 || n > maxSignInLimit {
		errs = append(errs, fmt.Errorf("%s %d: use 1 to %d", EnvSignInUserLimit, n, maxSignInLimit))
	}
	if n := c.Throttle.PerIP; n < 1 || n > maxSignInLimit {
		errs = append(errs, fmt.Errorf("%s %d: use 1 to %d", EnvSignInAddrLimit, n, maxSignInLimit))
	}
	if d := c.Throttle.Window; d < time.Second || d > 24*time.Hour {
		errs = append(errs, fmt.Errorf("%s %s: use 1s to 24h", EnvSignInWindow, d))
	}
	if c.OIDC.Enabled() && len(c.OIDC.RoleMap) == 0 {
		errs = append(errs, fmt.Errorf("%s: required with single sign-on (e.g. mash-managers=manager,mash-social-workers=practitioner): "+
			"only mapped claim values grant a console role", EnvOIDCRoleMap))
	}
	return errors.Join(errs...)
}

// CheckServedAt refuses insecure cookies unless the console listens on loopback only
// (httpAddr is MASH_HTTP_ADDR): off loopback a session cookie without Secure could cross a
// network in clear.
func (c Config) CheckServedAt(httpAddr string) error {
	if c.InsecureCookies && !isLoopbackAddr(httpAddr) {
		return fmt.Errorf("%s=true: allowed only when MASH_HTTP_ADDR is a loopback address (127.0.0.1, ::1 or localhost), not %q; "+
			"serve the console over https and unset it", EnvInsecureCookies, httpAddr)
	}
	return nil
}

// isLoopbackAddr reports whether a listen address (host:port) binds loopback only; an
// empty host or 0.0.0.0 binds every interface.
func isLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
	if v, ok := lookup(EnvOIDCPartnerships); ok && v != "" {
		ps, err := auth.ValidatePartnerships(auth.RolePractitioner, strings.Split(v, ","))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvOIDCPartnerships, err))
		}
		c.OIDC.Partnerships = ps
	}
	if v, ok := lookup(EnvOIDCRoleMap); ok && v != "" {
		m, err := ParseRoleMap(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvOIDCRoleMap, err))
		}
		c.OIDC.RoleMap = m
	}
	for _, n := range []struct {
		env string
		dst *int
	}{{EnvHashConcurrency, &c.Hashing.Concurrency}, {EnvHashQueue, &c.Hashing.Queue},
		{EnvSignInUserLimit, &c.Throttle.PerUser}, {EnvSignInAddrLimit, &c.Throttle.PerIP}} {
		if v, ok := lookup(n.env); ok && v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < 1 {
				errs = append(errs, fmt.Errorf("%s %q: must be a whole number, at least 1", n.env, v))
				continue
			}
			*n.dst = i
		}
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{EnvHashWait, &c.Hashing.MaxWait}, {EnvSignInWindow, &c.Throttle.Window}} {
		if v, ok := lookup(d.env); ok && v != "" {
			p, err := time.ParseDuration(v)
			if err != nil || p <= 0 {
				errs = append(errs, fmt.Errorf("%s %q: must be a positive duration such as 3s or 15m", d.env, v))
				continue
			}
			*d.dst = p
		}
	}
	if v, ok := lookup(EnvOIDCPartnerMap); ok && v != "" {
		m, err := ParsePartnerMap(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvOIDCPartnerMap, err))
		}
		c.OIDC.PartnerMap = m
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
	if len(errs) == 0 {
		// The ranges, and the role map single sign-on needs, checked as New will check them.
		d := c
		d.defaults()
		errs = append(errs, d.validate())
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

// ParsePartnerMap reads "group-a=south-wales-police/police,group-b=cwm-taf-health/health":
// each claim value names a partner agency and its kind.
func ParsePartnerMap(s string) (map[string]PartnerAgency, error) {
	out := map[string]PartnerAgency{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		agency, kind, ok2 := strings.Cut(strings.TrimSpace(v), "/")
		k, agency, kind = strings.TrimSpace(k), strings.TrimSpace(agency), strings.TrimSpace(kind)
		if !ok || !ok2 || k == "" {
			return nil, fmt.Errorf("entry %q: want claim-value=agency/kind, e.g. swp-ppu=south-wales-police/police", part)
		}
		if kind == auth.StaffKind {
			return nil, fmt.Errorf("entry %q: kind %s is the hub's own; map hub staff with %s", part, kind, EnvOIDCRoleMap)
		}
		if err := auth.ValidateClient(agency, kind, auth.RoleReferrer); err != nil {
			return nil, fmt.Errorf("entry %q: %w", part, err)
		}
		out[k] = PartnerAgency{Agency: agency, Kind: kind}
	}
	return out, nil
}

// staffRoles are the roles a person may sign in with, most privileged first: a person
// whose claims map to several roles gets the first.
var staffRoles = []auth.Role{auth.RoleAdmin, auth.RoleManager, auth.RolePractitioner, auth.RoleAuditor}
