package tenant

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/quota"
	"github.com/tenantry/tenantry/sqldb"
)

// Assignment is a role given to a member: a built-in or custom role's name,
// and when it ends (zero for never).
type Assignment struct {
	Role      tenantry.Role
	ExpiresAt time.Time
}

// grantable checks an assignment the caller makes: the role exists in the
// tenant, grants nothing the caller's role does not, and ends in the
// future. It returns what the role grants.
func grantable(ctx context.Context, q sqldb.Querier, mt *MemberTenant, a Assignment) (permission.Set, error) {
	errs := tenantry.FieldErrors{}
	if a.Role == "" {
		errs.Add("role", "A built-in role (admin, user, viewer) or one of the tenant's roles is required.")
		return nil, errs.Err()
	}
	if !a.ExpiresAt.IsZero() && !a.ExpiresAt.After(time.Now()) {
		errs.Add("expires_at", "Must be in the future.")
		return nil, errs.Err()
	}
	set, err := roleSet(ctx, q, mt.ID, string(a.Role))
	if errors.Is(err, errRoleNotFound) {
		errs.Add("role", "No role of that name in this tenant.")
		return nil, errs.Err()
	} else if err != nil {
		return nil, err
	}
	if !mt.Permissions.Covers(set) {
		return nil, tenantry.Errorf(tenantry.EForbidden, "You cannot grant permissions you do not hold: %s", strings.Join(mt.Permissions.Missing(set), ", "))
	}
	return set, nil
}

// AddMemberBy adds an existing, active user to a tenant, named by id or by
// email (exactly one of them), with a role the caller may grant.
func (s *Service) AddMemberBy(ctx context.Context, tenantID, userID, emailAddr string, a Assignment) (*tenantry.Membership, error) {
	if emailAddr == "" {
		return s.AddMember(ctx, tenantID, userID, a)
	}
	if _, err := s.Authorize(ctx, tenantID, permission.MembersAdd); err != nil {
		return nil, err
	}
	errs := tenantry.FieldErrors{}
	if userID != "" {
		errs.Add("user_id", "Give user_id or email, not both.")
	}
	e := validEmail(errs, emailAddr)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	err := s.db.QueryRow(ctx, `SELECT CAST(id AS TEXT) FROM users WHERE email = $1 AND is_active`, e).Scan(&userID)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, tenantry.Errorf(tenantry.ENotFound, "No active account has this address; invite it instead")
	} else if err != nil {
		return nil, err
	}
	return s.AddMember(ctx, tenantID, userID, a)
}

// AddMember adds an existing, active user to a tenant with a role the
// caller may grant.
func (s *Service) AddMember(ctx context.Context, tenantID, userID string, a Assignment) (*tenantry.Membership, error) {
	mt, err := s.Authorize(ctx, tenantID, permission.MembersAdd)
	if err != nil {
		return nil, err
	}
	userID = strings.ToLower(strings.TrimSpace(userID))
	if _, err := uuid.Parse(userID); err != nil || len(userID) != 36 {
		errs := tenantry.FieldErrors{}
		errs.Add("user_id", "Not a valid UUID.")
		return nil, errs.Err()
	}
	set, err := grantable(ctx, s.db, mt, a)
	if err != nil {
		return nil, err
	}
	m := &tenantry.Membership{TenantID: tenantID, UserID: userID, Role: a.Role, JoinedAt: sqldb.Now(), ExpiresAt: a.ExpiresAt, Permissions: set}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if ok, err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		} else if !ok {
			return errTenantNotFound
		}
		if ok, err := activeUser(ctx, tx, userID); err != nil {
			return err
		} else if !ok {
			return tenantry.Errorf(tenantry.ENotFound, "User not found")
		}
		// The tenant's row lock, taken above, makes this count and the
		// insert below one step for concurrent additions.
		if err := s.checkMembersQuota(ctx, tx, tenantID, userID); err != nil {
			return err
		}
		err := insertMembership(ctx, tx, m)
		if errors.Is(err, sqldb.ErrUniqueViolation) {
			return tenantry.Errorf(tenantry.EConflict, "User is already a member of this tenant")
		} else if err != nil {
			return err
		}
		return s.memberEvent(ctx, tx, tenantry.EventMemberAdded, tenantID, userID, assignmentData(a))
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.SetTarget(ctx, "user", userID)
	audit.Annotate(ctx, "after", assignmentData(a))
	return m, nil
}

func assignmentData(a Assignment) map[string]any {
	d := map[string]any{"role": a.Role}
	if !a.ExpiresAt.IsZero() {
		d["expires_at"] = a.ExpiresAt.UTC()
	}
	return d
}

// checkMembersQuota refuses a new member the tenant has no room for. An
// existing member is left to the insert, which answers that it is one.
func (s *Service) checkMembersQuota(ctx context.Context, tx sqldb.Tx, tenantID, userID string) error {
	limits, err := s.quotas.Limits(ctx, tx, tenantID)
	if err != nil || limits.Members == nil {
		return err
	}
	n, err := countMembers(ctx, tx, tenantID)
	if err != nil || n < *limits.Members {
		return err
	}
	if _, err := findMembership(ctx, tx, tenantID, userID); err == nil {
		return tenantry.Errorf(tenantry.EConflict, "User is already a member of this tenant")
	} else if !errors.Is(err, sqldb.ErrNoRows) {
		return err
	}
	return quota.Exceeded(quota.Members, *limits.Members, n)
}

// RemoveMember removes a user from a tenant. The last member who can manage
// members and roles cannot be removed, and no one can remove a member whose
// role grants what theirs does not.
func (s *Service) RemoveMember(ctx context.Context, tenantID, userID string) error {
	mt, err := s.Authorize(ctx, tenantID, permission.MembersRemove)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		m, err := s.lockedMembership(ctx, tx, tenantID, userID)
		if err != nil {
			return err
		}
		if err := outranks(mt, m); err != nil {
			return err
		}
		if isManager(m.Permissions) {
			if err := ensureAnotherManager(ctx, tx, tenantID, userID, "Cannot remove the last admin from the tenant"); err != nil {
				return err
			}
		}
		if err := deleteMembership(ctx, tx, tenantID, userID); err != nil {
			return err
		}
		audit.Annotate(ctx, "before", map[string]any{"role": m.Role})
		return s.memberEvent(ctx, tx, tenantry.EventMemberRemoved, tenantID, userID, map[string]any{"role": m.Role})
	})
	if err == nil {
		s.streams.Committed()
	}
	return err
}

// ChangeRole gives a member another role, or the same with another end.
// The last member who can manage members and roles cannot be demoted, and
// no one can change the role of a member whose role grants what theirs
// does not, or give a role that does.
func (s *Service) ChangeRole(ctx context.Context, tenantID, userID string, a Assignment) (*tenantry.Membership, error) {
	mt, err := s.Authorize(ctx, tenantID, permission.MembersUpdate)
	if err != nil {
		return nil, err
	}
	set, err := grantable(ctx, s.db, mt, a)
	if err != nil {
		return nil, err
	}
	var m *tenantry.Membership
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		var err error
		m, err = s.lockedMembership(ctx, tx, tenantID, userID)
		if err != nil {
			return err
		}
		if err := outranks(mt, m); err != nil {
			return err
		}
		if isManager(m.Permissions) && (!isManager(set) || !a.ExpiresAt.IsZero()) {
			if err := ensureAnotherManager(ctx, tx, tenantID, userID, "Cannot demote the last admin of the tenant"); err != nil {
				return err
			}
		}
		if err := updateRole(ctx, tx, tenantID, userID, a.Role, a.ExpiresAt); err != nil {
			return err
		}
		if err := s.memberEvent(ctx, tx, tenantry.EventMemberRoleChanged, tenantID, userID, map[string]any{"from": m.Role, "to": a.Role}); err != nil {
			return err
		}
		audit.Annotate(ctx, "before", map[string]any{"role": m.Role})
		audit.Annotate(ctx, "after", assignmentData(a))
		m.Role, m.ExpiresAt, m.Permissions = a.Role, a.ExpiresAt, set
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	return m, nil
}

// outranks refuses a change to a member whose role grants what the
// caller's does not: a limited member manager cannot demote an admin.
func outranks(caller *MemberTenant, m *tenantry.Membership) error {
	if caller.Permissions.Covers(m.Permissions) {
		return nil
	}
	return tenantry.Errorf(tenantry.EForbidden, "You cannot change a member whose role grants permissions you do not hold")
}

// lockedMembership locks the tenant, then reads the membership: after the
// lock, concurrent changes to this tenant's members have committed and are
// visible.
func (s *Service) lockedMembership(ctx context.Context, tx sqldb.Tx, tenantID, userID string) (*tenantry.Membership, error) {
	if ok, err := lockTenant(ctx, tx, tenantID); err != nil {
		return nil, err
	} else if !ok {
		return nil, errTenantNotFound
	}
	m, err := findMembership(ctx, tx, tenantID, userID)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errNotMember
	}
	return m, err
}

func ensureAnotherManager(ctx context.Context, tx sqldb.Tx, tenantID, except, message string) error {
	n, err := managers(ctx, tx, tenantID, except)
	if err != nil {
		return err
	}
	if n == 0 {
		return tenantry.Errorf(tenantry.EConflict, "%s", message)
	}
	return nil
}

// ExpireMemberships removes the members whose role ended before now, each
// with its event, and returns how many. Requests after the instant are
// refused already; this makes the end visible everywhere else.
func (s *Service) ExpireMemberships(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.db.Query(ctx, `SELECT tenant_id, user_id, role FROM memberships WHERE expires_at IS NOT NULL AND expires_at <= $1`, now)
	if err != nil {
		return 0, err
	}
	var ended []tenantry.Membership
	for rows.Next() {
		var m tenantry.Membership
		if err := rows.Scan(&m.TenantID, &m.UserID, &m.Role); err != nil {
			rows.Close()
			return 0, err
		}
		ended = append(ended, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, m := range ended {
		err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
			removed, err := tx.Exec(ctx, `DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2 AND expires_at <= $3`, m.TenantID, m.UserID, now)
			if err != nil || removed == 0 {
				return err
			}
			n++
			return s.streams.EmitPlatform(ctx, tx, tenantry.EventMemberRemoved, m.TenantID, "", map[string]any{
				"tenant_id": m.TenantID, "user_id": m.UserID, "role": m.Role, "reason": "expired",
			})
		})
		if err != nil {
			return n, err
		}
	}
	if n > 0 {
		s.streams.Committed()
	}
	return n, nil
}
