// Package auth identifies callers by bearer credential. A credential names one client of one
// agency with one role; the agency a request acts for always comes from here, never from a
// request body.
package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Role says what a client may do.
type Role string

// The roles. Referrers are machine clients of referring agencies; the others are hub staff
// and their systems.
const (
	RoleReferrer     Role = "referrer"
	RolePractitioner Role = "practitioner"
	RoleManager      Role = "manager"
	RoleAuditor      Role = "auditor"
	RoleAdmin        Role = "admin"
	// RolePartner is a person on the staff of a partner agency (police, health, a school,
	// ...) signed in to the console's partner view. It is a person's role only, never a
	// machine client's: it sees what was sent to its own agency, acknowledges it, answers
	// the agency's information requests and raises and follows its disagreements, and
	// nothing of the hub's own work.
	RolePartner Role = "partner"
)

// Roles an event names for an actor that holds no credential: a service acting on its own
// (a sweep, a deadline, an escalation), and an agency answering on its own channel. The
// audit trail records them beside the credential roles.
const (
	ActorRoleSystem = events.RoleSystem
	ActorRoleAgency = events.RoleAgency
)

// Actor is who did something, in what role and for which agency, as an event names them
// for the audit trail.
type Actor struct {
	ID     string
	Role   string
	Agency string
}

// Event is the actor as an event's envelope carries it.
func (a Actor) Event() *eventsv1.Actor { return events.Actor(a.ID, a.Role, a.Agency) }

// EventActor is the identity as the envelope of an event it made carries it: its client
// id ("user:<id>" for a person), role and agency.
func (id Identity) EventActor() *eventsv1.Actor {
	return events.Actor(id.ClientID, string(id.Role), id.Agency)
}

// Roles lists every role, for validation and help text.
var Roles = []Role{RoleReferrer, RolePractitioner, RoleManager, RoleAuditor, RoleAdmin}

// Kinds lists the kinds of agency a client may belong to.
var Kinds = []string{"police", "health", "education", "local-authority", "probation", "housing", "youth-justice", "third-sector", "hub"}

// Identity is the authenticated caller.
type Identity struct {
	// ClientID names the caller in every audit trail: a machine client's id, or
	// "user:<user_id>" for a person signed in to the console.
	ClientID string
	Agency   string
	Kind     string
	Role     Role
	// Name is a signed-in person's display name, for screens; empty for machine clients.
	// It is personal data: log ClientID, never Name.
	Name string
	// Partnerships are those whose referrals the caller may see and work, sorted;
	// AllPartnerships stands for every one. Every hub role serves at least one; a referrer
	// needs none, as it sees only its own agency's referrals.
	Partnerships []string
}

// AllPartnerships, as a credential's only partnership, grants every partnership: a hub
// that serves the whole deployment.
const AllPartnerships = "*"

// HubRole reports whether role is one of the hub's own (anything but referrer), which only
// a client of kind StaffKind may hold.
func HubRole(role Role) bool { return role != RoleReferrer && slices.Contains(Roles, role) }

// Serves reports whether the caller may see and work partnership's referrals. A referrer
// or partner with no partnerships is limited by its agency alone.
func (id Identity) Serves(partnership string) bool {
	if id.AgencyScoped() && len(id.Partnerships) == 0 {
		return true
	}
	return slices.Contains(id.Partnerships, AllPartnerships) || slices.Contains(id.Partnerships, partnership)
}

// PartnershipScope is the set of partnerships a query must be limited to: all is true when
// the caller is not limited (every partnership, or a referrer limited by agency instead).
func (id Identity) PartnershipScope() (partnerships []string, all bool) {
	if (id.AgencyScoped() && len(id.Partnerships) == 0) || slices.Contains(id.Partnerships, AllPartnerships) {
		return nil, true
	}
	return id.Partnerships, false
}

// ValidatePartnerships checks the partnerships a credential of role is to serve and returns
// them sorted without repeats. A hub role needs at least one; AllPartnerships stands alone.
func ValidatePartnerships(role Role, partnerships []string) ([]string, error) {
	var out []string
	for _, p := range partnerships {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if p != AllPartnerships && (len(p) > 64 || !slugPattern.MatchString(p)) {
			return nil, fmt.Errorf("partnership %q: must be a lower-case slug such as rhondda-cynon-taf, or %s for every partnership", p, AllPartnerships)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	switch {
	case len(out) > 1 && slices.Contains(out, AllPartnerships):
		return nil, fmt.Errorf("partnerships %s: %s already means every partnership; give it alone", strings.Join(out, ","), AllPartnerships)
	case len(out) > 32:
		return nil, fmt.Errorf("partnerships: at most 32, got %d", len(out))
	case len(out) == 0 && HubRole(role):
		return nil, fmt.Errorf("partnerships: role %s works in the hub and must serve at least one partnership (or %s for every one)", role, AllPartnerships)
	}
	return out, nil
}

// AgencyScoped reports whether the identity sees only its own agency's records: a
// referring agency's system, or a partner agency's person. Hub staff see every agency's.
func (id Identity) AgencyScoped() bool { return id.Role == RoleReferrer || id.Role == RolePartner }

// IsPerson reports whether the identity is a person's console session.
func (id Identity) IsPerson() bool { return strings.HasPrefix(id.ClientID, UserPrefix) }

// HasRole reports whether the identity holds one of roles.
func (id Identity) HasRole(roles ...Role) bool { return slices.Contains(roles, id.Role) }

// ErrUnauthenticated means the credential is missing, malformed, unknown or revoked. Callers
// are told no more than that, so a guesser learns nothing.
var ErrUnauthenticated = errors.New("missing or invalid credential")

type ctxKey struct{}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the caller's identity, if authenticated.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// ValidateClient checks the fields of a new client and names the first bad one.
func ValidateClient(agency, kind string, role Role) error {
	if len(agency) == 0 || len(agency) > 64 || !slugPattern.MatchString(agency) {
		return fmt.Errorf("agency %q: must be a lower-case slug such as south-wales-police (letters, digits, single hyphens, at most 64)", agency)
	}
	if !slices.Contains(Kinds, kind) {
		return fmt.Errorf("kind %q: must be one of %s", kind, strings.Join(Kinds, ", "))
	}
	if !slices.Contains(Roles, role) {
		names := make([]string, len(Roles))
		for i, r := range Roles {
			names[i] = string(r)
		}
		return fmt.Errorf("role %q: must be one of %s", role, strings.Join(names, ", "))
	}
	return checkKindRole(kind, role)
}

// checkKindRole refuses a hub role to a client of an agency: a police force's or a health
// board's system refers and answers, but never works the hub's cases.
func checkKindRole(kind string, role Role) error {
	if kind != StaffKind && HubRole(role) {
		return fmt.Errorf("role %q: only clients of kind %s may hold a hub role (practitioner, manager, auditor, admin); a %s client may only be a referrer", role, StaffKind, kind)
	}
	return nil
}

// BearerToken extracts the token from an Authorization header value.
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// Actor names the identity in records of what it did: a signed-in person by their user id
// ("user:<id>"), as every service names them, so an auditor finds all they did with one
// search; a client by its id, agency and role.
func (id Identity) Actor() string {
	if id.IsPerson() {
		return id.ClientID
	}
	return fmt.Sprintf("client:%s (%s, %s)", id.ClientID, id.Agency, id.Role)
}
