package console

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
)

func TestMessagesComplete(t *testing.T) {
	t.Parallel()
	verbs := regexp.MustCompile(`%[a-z]`)
	for _, pair := range [][2]string{{"en", "cy"}, {"cy", "en"}} {
		for k, v := range messages[pair[0]] {
			other, ok := messages[pair[1]][k]
			if !ok {
				t.Errorf("%q is in %s but not %s", k, pair[0], pair[1])
				continue
			}
			if a, b := fmt.Sprint(verbs.FindAllString(v, -1)), fmt.Sprint(verbs.FindAllString(other, -1)); a != b {
				t.Errorf("%q: verbs %s in %s, %s in %s", k, a, pair[0], b, pair[1])
			}
			if strings.TrimSpace(v) == "" {
				t.Errorf("%q is empty in %s", k, pair[0])
			}
		}
	}
}

// TestTemplateKeysExist checks every message key a template or handler names is in the
// catalogue, so no screen shows a raw key.
func TestTemplateKeysExist(t *testing.T) {
	t.Parallel()
	keyRef := regexp.MustCompile(`(?:\.T|pg\.T|\$p\.T) "([a-z_]+\.[a-z_0-9]+)"`)
	entries, err := assets.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, e := range entries {
		b, _ := assets.ReadFile("templates/" + e.Name())
		for _, m := range keyRef.FindAllStringSubmatch(string(b), -1) {
			if _, ok := messages["en"][m[1]]; !ok {
				missing = append(missing, e.Name()+": "+m[1])
			}
		}
	}
	for _, k := range []string{"queue.title", "case.title", "notifications.title", "packs.title", "pack.title", "packdiff.title",
		"replay.title", "dashboard.title", "audit.title", "signin.title", "error.title", "disagreements.title"} {
		if _, ok := messages["en"][k]; !ok {
			missing = append(missing, k)
		}
	}
	for _, n := range navItems {
		if _, ok := messages["en"][n.key]; !ok {
			missing = append(missing, n.key)
		}
	}
	for _, c := range concerns {
		if _, ok := messages["en"]["concern."+c]; !ok {
			missing = append(missing, "concern."+c)
		}
	}
	for _, o := range outcomes {
		if _, ok := messages["en"]["outcome."+o.String()]; !ok {
			missing = append(missing, "outcome."+o.String())
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("missing message keys:\n%s", strings.Join(missing, "\n"))
	}
}

func TestPasswordHashing(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse battery staple", testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=1024,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Fatalf("hash %q is not a PHC argon2id string", h)
	}
	h2, _ := HashPassword("correct horse battery staple", testArgon2)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no per-user salt")
	}
	ok, rehash, err := VerifyPassword("correct horse battery staple", h, testArgon2)
	if !ok || rehash || err != nil {
		t.Fatalf("verify right password: %v %v %v", ok, rehash, err)
	}
	if ok, _, _ := VerifyPassword("correct horse battery stapler", h, testArgon2); ok {
		t.Fatal("wrong password accepted")
	}
	// Weaker parameters than wanted: accepted, and flagged for rehash.
	if ok, rehash, _ := VerifyPassword("correct horse battery staple", h, DefaultArgon2); !ok || !rehash {
		t.Fatalf("old-parameter hash: ok=%v rehash=%v", ok, rehash)
	}
	// Malformed, other-algorithm, too-costly and wrong-version hashes are refused.
	for _, bad := range []string{"", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1,p=1$!!$aGFzaA"} {
		if _, _, err := VerifyPassword("x", bad, testArgon2); err == nil {
			t.Errorf("hash %q accepted", bad)
		}
	}
}

func TestDefaultArgon2IsOWASPMinimum(t *testing.T) {
	if DefaultArgon2.MemoryKiB < 19*1024 || DefaultArgon2.Time < 2 || DefaultArgon2.SaltLen < 16 {
		t.Fatalf("DefaultArgon2 %+v is below OWASP's argon2id minimum", DefaultArgon2)
	}
}

var (
	practitioner = auth.RolePractitioner
	manager      = auth.RoleManager
	auditor      = auth.RoleAuditor
	admin        = auth.RoleAdmin
)

// The console's menus and buttons come from the permission table the services check: a
// role sees exactly the pages whose calls it may make, and an administrator no page of a
// child's record.
func TestCapabilitiesAreThePermissionTable(t *testing.T) {
	t.Parallel()
	for _, role := range auth.Roles {
		id := auth.Identity{Role: role}
		for name, c := range capNames {
			if can(id, c) != id.Can(c) {
				t.Errorf("%s %s: console %v, permission table %v", role, name, can(id, c), id.Can(c))
			}
		}
	}
	menu := func(role auth.Role) []string {
		var out []string
		for _, n := range navItems {
			if can(auth.Identity{Role: role}, n.cap) {
				out = append(out, n.href)
			}
		}
		return out
	}
	for role, want := range map[auth.Role][]string{
		auth.RoleAdmin:        {"/console/notifications", "/console/packs", "/console/directory"},
		auth.RoleAuditor:      {"/console/notifications", "/console/disagreements", "/console/packs", "/console/directory", "/console/dashboard", "/console/audit"},
		auth.RolePractitioner: {"/console/queue", "/console/contacts/new", "/console/search", "/console/notifications", "/console/disagreements", "/console/packs", "/console/directory"},
		auth.RoleManager:      {"/console/queue", "/console/search", "/console/notifications", "/console/disagreements", "/console/packs", "/console/directory", "/console/dashboard", "/console/quality"},
	} {
		if got := menu(role); !slices.Equal(got, want) {
			t.Errorf("%s menu %q, want %q", role, got, want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"/console/queue?x=1": "/console/queue?x=1", "https://evil.example/": "/console/",
		"//evil.example/console/": "/console/", "/console/\\evil": "/console/", "": "/console/", "/v1/queue": "/console/"} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOIDCRoleMapping(t *testing.T) {
	t.Parallel()
	m, err := ParseRoleMap("mash-managers=manager, sw=practitioner")
	if err != nil {
		t.Fatal(err)
	}
	cfg := OIDCConfig{RoleClaim: "groups", RoleMap: m, AgencyClaim: "agency"}
	p, err := personFromClaims(cfg, map[string]any{"name": "Siân", "groups": []any{"sw", "mash-managers", "other"}, "agency": "cardiff-mash"}, "abc|123", "mash-hub")
	if err != nil || p.role != auth.RoleManager || p.agency != "cardiff-mash" || p.name != "Siân" || !strings.HasPrefix(p.userID, "oidc:") || strings.Contains(p.userID, "|") {
		t.Fatalf("person %+v, %v", p, err)
	}
	if _, err := personFromClaims(cfg, map[string]any{"groups": []any{"other"}}, "s", "mash-hub"); err == nil {
		t.Fatal("a person without a mapped role was let in")
	}
	// A claim value that is a role's name grants nothing the map does not give it.
	if p, err := personFromClaims(OIDCConfig{RoleClaim: "roles"}, map[string]any{"roles": "auditor"}, "s1", "mash-hub"); err == nil {
		t.Fatalf("role name as claim value without a role map let %+v in", p)
	}
	if p, err := personFromClaims(OIDCConfig{RoleClaim: "roles", RoleMap: map[string]auth.Role{"auditor": auth.RoleAuditor}},
		map[string]any{"roles": "auditor"}, "s1", "mash-hub"); err != nil || p.role != auth.RoleAuditor || p.userID != "oidc:s1" {
		t.Fatalf("mapped role name as claim value: %+v %v", p, err)
	}
	if _, err := ParseRoleMap("x=referrer"); err == nil {
		t.Fatal("referrer accepted as a console role")
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{EnvKey: strings.Repeat("ab", 32), EnvInsecureCookies: "true", EnvOIDCIssuer: "https://idp.example"}
	_, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), EnvOIDCClientID) {
		t.Fatalf("partial OIDC settings: %v", err)
	}
	delete(env, EnvOIDCIssuer)
	c, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil || len(c.Key) != 32 || !c.InsecureCookies || c.OIDC.Enabled() {
		t.Fatalf("config %+v, %v", c, err)
	}
	env[EnvKey] = "short"
	if _, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestDiffLines(t *testing.T) {
	t.Parallel()
	d := diffLines("a\nb\nc", "a\nx\nc")
	var ops []string
	for _, l := range d {
		ops = append(ops, l.Op+l.Text)
	}
	if got := strings.Join(ops, ","); got != "=a,-b,+x,=c" {
		t.Fatalf("diff %s", got)
	}
}

func TestFormField(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"reason": "reason", "decision.reason": "reason", "expectedVersion": "expected_version", "held_at": "held_at"} {
		if got := formField(in); got != want {
			t.Errorf("formField(%q) = %q", in, got)
		}
	}
}

func TestAssigneeID(t *testing.T) {
	for typed, want := range map[string]string{"alice": "user:alice", "user:alice": "user:alice", "client:x": "client:x", "": ""} {
		if got := assigneeID(typed); got != want {
			t.Errorf("assigneeID(%q) = %q, want %q", typed, got, want)
		}
	}
}

// A due date means the end of that day's working hours, London time, on the days the clocks
// change too, and at the hour the hub's working day ends.
func TestEndOfDay(t *testing.T) {
	cal, err := calendar.New(calendar.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]string{
		"2026-11-26": "2026-11-26T17:00:00Z", // GMT
		"2027-03-28": "2027-03-28T16:00:00Z", // clocks go forward that night: BST by 17:00
		"2026-10-25": "2026-10-25T17:00:00Z", // clocks go back: GMT by 17:00
		"2026-07-01": "2026-07-01T16:00:00Z", // BST
	} {
		got, err := endOfDay(cal, d)
		if err != nil || got.UTC().Format(time.RFC3339) != want {
			t.Errorf("endOfDay(%s) = %s, %v; want %s", d, got.UTC().Format(time.RFC3339), err, want)
		}
	}
	for _, bad := range []string{"26/11/2026", "2026-02-30"} {
		if _, err := endOfDay(cal, bad); err == nil {
			t.Errorf("due date %q was accepted", bad)
		}
	}
	late, err := calendar.New(calendar.Config{DayEnd: calendar.ClockTime{Hour: 18, Minute: 30}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := endOfDay(late, "2026-11-26"); err != nil || got.UTC().Format(time.RFC3339) != "2026-11-26T18:30:00Z" {
		t.Errorf("with the working day ending at 18:30: endOfDay = %s, %v; want 2026-11-26T18:30:00Z", got.UTC().Format(time.RFC3339), err)
	}
}

// Staff signing in through the identity provider serve MASH_OIDC_PARTNERSHIPS, else the
// console's partnership; a bad list stops start-up naming the setting.
func TestOIDCPartnershipsSetting(t *testing.T) {
	t.Parallel()
	read := func(env map[string]string) (Config, error) {
		return ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}
	c, err := read(map[string]string{EnvPartnership: "rhondda-cynon-taf"})
	c.defaults()
	if err != nil || !slices.Equal(c.OIDC.Partnerships, []string{"rhondda-cynon-taf"}) {
		t.Fatalf("default: %q %v", c.OIDC.Partnerships, err)
	}
	c, err = read(map[string]string{EnvOIDCPartnerships: "merthyr-tydfil, rhondda-cynon-taf"})
	if err != nil || !slices.Equal(c.OIDC.Partnerships, []string{"merthyr-tydfil", "rhondda-cynon-taf"}) {
		t.Fatalf("listed: %q %v", c.OIDC.Partnerships, err)
	}
	if _, err := read(map[string]string{EnvOIDCPartnerships: "*,cardiff"}); err == nil || !strings.Contains(err.Error(), EnvOIDCPartnerships) {
		t.Fatalf("bad list: %v", err)
	}
}
