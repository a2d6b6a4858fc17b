package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// An agency's client can only refer: a hub role is refused at creation, naming the role,
// and a row written with one before that rule (or by hand) is refused at authentication.
func TestAgencyKindsCannotHoldHubRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := newTestStore(t)
	for _, kind := range Kinds {
		for _, role := range Roles {
			_, _, err := st.Create(ctx, "some-agency", kind, role, "test", "rhondda-cynon-taf")
			wantOK := kind == StaffKind || role == RoleReferrer
			if wantOK && err != nil {
				t.Errorf("kind %s role %s: refused: %v", kind, role, err)
			}
			if !wantOK && (err == nil || !strings.Contains(err.Error(), "only clients of kind hub may hold a hub role")) {
				t.Errorf("kind %s role %s: got %v, want the kind/role refusal", kind, role, err)
			}
		}
	}

	_, token, err := st.Create(ctx, "south-wales-police", "police", RoleReferrer, "test")
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(token, "mash_"), "_")
	if _, err := st.pool.Exec(ctx, `UPDATE auth.clients SET role = 'practitioner', partnerships = '{*}' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, token); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "kind hub") {
		t.Fatalf("a police credential holding a hub role: got %v, want ErrUnauthenticated naming the rule", err)
	}
}

// Hub credentials serve named partnerships, stored and returned sorted; one with none is
// refused at creation and, if its row lost them, at authentication.
func TestHubCredentialsServeNamedPartnerships(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := newTestStore(t)
	if _, _, err := st.Create(ctx, "rct-mash", "hub", RolePractitioner, "test"); err == nil || !strings.Contains(err.Error(), "at least one partnership") {
		t.Fatalf("a practitioner serving no partnership: %v", err)
	}
	for _, bad := range [][]string{{"Not A Slug"}, {"*", "rhondda-cynon-taf"}} {
		if _, _, err := st.Create(ctx, "rct-mash", "hub", RoleManager, "test", bad...); err == nil || !strings.Contains(err.Error(), "partnership") {
			t.Errorf("partnerships %q: %v", bad, err)
		}
	}
	c, token, err := st.Create(ctx, "rct-mash", "hub", RolePractitioner, "test", "merthyr-tydfil", "rhondda-cynon-taf", "merthyr-tydfil")
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"merthyr-tydfil", "rhondda-cynon-taf"}; !slices.Equal(got.Partnerships, want) || !slices.Equal(c.Partnerships, want) {
		t.Fatalf("partnerships %q (created %q), want %q", got.Partnerships, c.Partnerships, want)
	}
	if !got.Serves("rhondda-cynon-taf") || got.Serves("cardiff") {
		t.Fatalf("Serves: %+v", got)
	}
	if ps, all := got.PartnershipScope(); all || len(ps) != 2 {
		t.Fatalf("scope %q all=%v", ps, all)
	}
	list, err := st.List(ctx)
	if err != nil || len(list) != 1 || !slices.Equal(list[0].Partnerships, got.Partnerships) {
		t.Fatalf("list: %+v %v", list, err)
	}

	_, lost, err := st.Create(ctx, "rct-mash", "hub", RoleAuditor, "test", "*")
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(lost, "mash_"), "_")
	if _, err := st.pool.Exec(ctx, `UPDATE auth.clients SET partnerships = '{}' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, lost); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a hub credential serving no partnership authenticated: %v", err)
	}
}

func TestPartnershipScopes(t *testing.T) {
	t.Parallel()
	all := Identity{Role: RoleManager, Partnerships: []string{AllPartnerships}}
	if !all.Serves("anything") {
		t.Error("* serves every partnership")
	}
	if _, every := all.PartnershipScope(); !every {
		t.Error("* is not limited")
	}
	referrer := Identity{Role: RoleReferrer}
	if !referrer.Serves("cardiff") {
		t.Error("a referrer without partnerships is limited by its agency alone")
	}
	none := Identity{Role: RolePractitioner}
	if none.Serves("cardiff") {
		t.Error("a practitioner with no partnerships serves none")
	}
	if ps, every := none.PartnershipScope(); every || len(ps) != 0 {
		t.Errorf("empty scope: %q %v", ps, every)
	}
}

// Administrators run the system and hold no permission over a child's record, and every
// permission is held by someone.
func TestAdministratorsHoldNoCaseworkPermission(t *testing.T) {
	t.Parallel()
	admin := Identity{Role: RoleAdmin}
	for _, p := range []Permission{ReadReferrals, ReadQueue, ReadCases, ClaimCases, DecideCases, RequestInformation,
		ReadInformation, ReadDisagreements, ReadDecisions, EvaluateReferrals, ReadAuditTrails, ReadDashboard, ExportSubjectAccess} {
		if admin.Can(p) {
			t.Errorf("admin may %s", p)
		}
	}
	for _, p := range Permissions() {
		if len(p.Roles()) == 0 {
			t.Errorf("permission %q is held by no role", p)
		}
	}
	if msg := admin.Denial(ReadCases); !strings.Contains(msg, "role admin may not read cases; it needs one of: practitioner, manager") {
		t.Errorf("denial: %s", msg)
	}
}
