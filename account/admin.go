package account

import (
	"context"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/sqldb"
)

// The platform administration of accounts. The callers are platform
// administrators: the API lets no one else reach these.

// UserFilter selects a page of accounts; zero values filter nothing.
type UserFilter struct {
	// Search matches the email, first or last name, case-insensitively.
	Search string
	Active *bool
	// Page counts from 1.
	Page, PerPage int
}

// AdminUser is an account as platform administrators see it.
type AdminUser struct {
	tenantry.User
	// LockedUntil is the end of the sign-in lockout in force; zero when
	// the account is not locked out.
	LockedUntil time.Time
	// Sessions counts the standing sessions; only an account's detail
	// reads it.
	Sessions int64
}

// ListUsers returns a page of accounts, newest first, and how many match.
func (s *Service) ListUsers(ctx context.Context, f UserFilter) ([]AdminUser, int64, error) {
	return listUsers(ctx, s.db, f, sqldb.Now())
}

// User returns an account with its lockout and standing sessions.
func (s *Service) User(ctx context.Context, userID string) (*AdminUser, error) {
	return findAdminUser(ctx, s.db, userID, sqldb.Now())
}

// CreateUser creates an active account for an administrator, validated as
// a registration is; an address that has an account is a conflict. The
// address of an ordinary account is mailed a verification link, as at
// registration: the administrator did not prove it receives mail. That of
// a platform administrator counts as verified, as when the command line
// makes one: its creator vouches for it.
func (s *Service) CreateUser(ctx context.Context, r Registration, platformAdmin bool) (*tenantry.User, error) {
	u, err := s.register(ctx, r, newAccount{verified: platformAdmin, platformAdmin: platformAdmin, reveal: true})
	if err != nil {
		return nil, err
	}
	audit.SetTarget(ctx, "user", u.ID)
	audit.Annotate(ctx, "after", map[string]any{"email": u.Email, "is_platform_admin": platformAdmin})
	return u, nil
}

// SetUserActive activates or deactivates an account by id, as SetActive
// does by email. Administrators cannot deactivate their own account: no
// one would be left signed in to undo it. Setting the state the account
// is already in changes nothing.
func (s *Service) SetUserActive(ctx context.Context, userID string, active bool) (*AdminUser, error) {
	if p, _ := tenantry.PrincipalFromContext(ctx); !active && p.UserID == userID {
		return nil, tenantry.Errorf(tenantry.EConflict, "You cannot deactivate your own account")
	}
	u, err := findUser(ctx, s.db, userID)
	if err != nil {
		return nil, err
	}
	if u.IsActive != active {
		audit.Annotate(ctx, "before", map[string]any{"is_active": u.IsActive})
		audit.Annotate(ctx, "after", map[string]any{"is_active": active})
		if _, err := s.setActive(ctx, u, active); err != nil {
			return nil, err
		}
	}
	return s.User(ctx, userID)
}

// Unlock lifts the sign-in lockout of an account and forgets its failed
// attempts, so that the right password is let in at once.
func (s *Service) Unlock(ctx context.Context, userID string) (*AdminUser, error) {
	u, err := s.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	if !u.LockedUntil.IsZero() {
		audit.Annotate(ctx, "locked_until", u.LockedUntil)
	}
	if err := clearFailures(ctx, s.db, u.Email, true, sqldb.Now()); err != nil {
		return nil, err
	}
	u.LockedUntil = time.Time{}
	return u, nil
}

// UserStats are the platform's account figures.
type UserStats struct {
	Total, Active, PlatformAdmins int64
	// SignUps counts the accounts created per UTC day since the time
	// asked, days without any left out.
	SignUps []sqldb.DayCount
}

// Stats counts the accounts, and those created per day since since.
func (s *Service) Stats(ctx context.Context, since time.Time) (*UserStats, error) {
	var st UserStats
	if err := s.db.QueryRow(ctx, `SELECT count(*), COALESCE(SUM(CASE WHEN is_active THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN is_platform_admin THEN 1 ELSE 0 END), 0) FROM users`).
		Scan(&st.Total, &st.Active, &st.PlatformAdmins); err != nil {
		return nil, err
	}
	var err error
	st.SignUps, err = sqldb.CountByDay(ctx, s.db, `SELECT `+s.db.Dialect().Time("created_at")+` FROM users WHERE created_at >= $1`, since)
	return &st, err
}
