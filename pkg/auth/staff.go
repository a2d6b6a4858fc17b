package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Member is someone who may be given hub work: a person of the staff directory
// (auth.staff, ClientID "user:<id>") or a machine client (auth.clients).
type Member struct {
	ClientID     string
	Role         Role
	Agency       string
	Kind         string
	Partnerships []string
	// Active is false for a disabled account or a revoked client.
	Active bool
}

// Serves reports whether the member may work partnership's cases.
func (m Member) Serves(partnership string) bool {
	return Identity{ClientID: m.ClientID, Role: m.Role, Kind: m.Kind, Partnerships: m.Partnerships}.Serves(partnership)
}

// ErrNotStaff means the client id names nobody the hub knows.
var ErrNotStaff = errors.New("not a member of staff the hub knows")

// StaffMember looks a client id up: "user:<id>" in the staff directory, anything else among
// the credentials. It returns ErrNotStaff for an id neither holds.
func (s *Store) StaffMember(ctx context.Context, clientID string) (Member, error) {
	m := Member{ClientID: clientID}
	var role string
	var err error
	if user, ok := strings.CutPrefix(clientID, UserPrefix); ok {
		err = s.pool.QueryRow(ctx, `SELECT role, agency, kind, partnerships, active FROM auth.staff WHERE user_id = $1`, user).
			Scan(&role, &m.Agency, &m.Kind, &m.Partnerships, &m.Active)
	} else {
		err = s.pool.QueryRow(ctx, `SELECT role, agency, kind, partnerships, revoked_at IS NULL FROM auth.clients WHERE id = $1`, clientID).
			Scan(&role, &m.Agency, &m.Kind, &m.Partnerships, &m.Active)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return Member{}, ErrNotStaff
	}
	if err != nil {
		return Member{}, fmt.Errorf("look up staff member %s: %w", clientID, err)
	}
	m.Role = Role(role)
	return m, nil
}

// PutStaff records a person's current role, agency and partnerships in the staff directory
// (an account made, or its role changed); active false records a disabled account.
func (s *Store) PutStaff(ctx context.Context, userID string, role Role, agency, kind string, partnerships []string, active bool) error {
	return putStaff(ctx, s.pool, userID, role, agency, kind, partnerships, active, s.now())
}

// PutStaffIn is PutStaff within tx, the transaction that changes the person's account.
func (s *Store) PutStaffIn(ctx context.Context, tx pgx.Tx, userID string, role Role, agency, kind string, partnerships []string, active bool) error {
	return putStaff(ctx, tx, userID, role, agency, kind, partnerships, active, s.now())
}

// SetStaffActive marks a person of the staff directory active or not (an account disabled
// or enabled); a person it does not hold is left unknown.
func (s *Store) SetStaffActive(ctx context.Context, userID string, active bool) error {
	return setStaffActive(ctx, s.pool, userID, active, s.now())
}

// SetStaffActiveIn is SetStaffActive within tx, the transaction that changes the person's
// account.
func (s *Store) SetStaffActiveIn(ctx context.Context, tx pgx.Tx, userID string, active bool) error {
	return setStaffActive(ctx, tx, userID, active, s.now())
}

// execer is a pool or a transaction.
type execer interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}

func setStaffActive(ctx context.Context, q execer, userID string, active bool, at time.Time) error {
	if _, err := q.Exec(ctx, `UPDATE auth.staff SET active = $2, updated_at = $3 WHERE user_id = $1`, userID, active, at); err != nil {
		return fmt.Errorf("mark staff member %s active=%t: %w", userID, active, err)
	}
	return nil
}

func putStaff(ctx context.Context, q execer, userID string, role Role, agency, kind string, partnerships []string, active bool, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO auth.staff (user_id, role, agency, kind, partnerships, active, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (user_id) DO UPDATE SET role = EXCLUDED.role, agency = EXCLUDED.agency, kind = EXCLUDED.kind,
			partnerships = EXCLUDED.partnerships, active = EXCLUDED.active, updated_at = EXCLUDED.updated_at`,
		userID, string(role), agency, kind, nonNil(partnerships), active, at)
	if err != nil {
		return fmt.Errorf("record staff member %s: %w", userID, err)
	}
	return nil
}
