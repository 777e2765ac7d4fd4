package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/sqldb"
)

var errRoleNotFound = tenantry.Errorf(tenantry.ENotFound, "Role not found")

// RoleInfo is a role of a tenant, built-in or custom.
type RoleInfo struct {
	Name        string
	Description string
	Permissions permission.Set
	BuiltIn     bool
	// Members is how many members have the role.
	Members   int
	CreatedAt time.Time
	UpdatedAt time.Time
}

var builtInDescriptions = map[string]string{
	permission.Admin:  "Everything, including members, roles and the tenant itself",
	permission.User:   "Read everything, upload documents, change and delete their own",
	permission.Viewer: "Read and download everything, change nothing",
}

// roleSet returns what a role of the tenant grants; errRoleNotFound when
// it has no role of that name.
func roleSet(ctx context.Context, q sqldb.Querier, tenantID, name string) (permission.Set, error) {
	if set, ok := permission.BuiltIn(name); ok {
		return set, nil
	}
	var stored string
	err := q.QueryRow(ctx, `SELECT permissions FROM tenant_roles WHERE tenant_id = $1 AND name = $2`, tenantID, name).Scan(&stored)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errRoleNotFound
	} else if err != nil {
		return nil, err
	}
	return permissionsOf(tenantry.Role(name), stored), nil
}

// Roles lists the tenant's roles: the built-in ones, then its own by name.
func (s *Service) Roles(ctx context.Context, tenantID string) ([]RoleInfo, error) {
	if _, err := s.Authorize(ctx, tenantID, permission.RolesRead); err != nil {
		return nil, err
	}
	counts, err := roleMembers(ctx, s.db, tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]RoleInfo, 0, len(permission.BuiltInRoles))
	for _, name := range permission.BuiltInRoles {
		set, _ := permission.BuiltIn(name)
		out = append(out, RoleInfo{Name: name, Description: builtInDescriptions[name], Permissions: set, BuiltIn: true, Members: counts[name]})
	}
	rows, err := s.db.Query(ctx, `SELECT name, description, permissions, created_at, updated_at FROM tenant_roles
		WHERE tenant_id = $1 ORDER BY name`, tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r RoleInfo
		var stored string
		if err := rows.Scan(&r.Name, &r.Description, &stored, sqldb.ScanTime(&r.CreatedAt), sqldb.ScanTime(&r.UpdatedAt)); err != nil {
			return nil, err
		}
		r.Permissions, r.Members = permissionsOf(tenantry.Role(r.Name), stored), counts[r.Name]
		out = append(out, r)
	}
	return out, rows.Err()
}

// Role returns one of the tenant's roles.
func (s *Service) Role(ctx context.Context, tenantID, name string) (*RoleInfo, error) {
	list, err := s.Roles(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i], nil
		}
	}
	return nil, errRoleNotFound
}

func roleMembers(ctx context.Context, q sqldb.Querier, tenantID string) (map[string]int, error) {
	rows, err := q.Query(ctx, `SELECT m.role, count(*) FROM memberships m WHERE m.tenant_id = $1 AND `+unexpired("$2")+` GROUP BY m.role`,
		tenantID, sqldb.Now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var role string
		var n int
		if err := rows.Scan(&role, &n); err != nil {
			return nil, err
		}
		counts[role] = n
	}
	return counts, rows.Err()
}

// RoleChange is a custom role's definition, whole (create) or in part
// (update: nil leaves a field alone).
type RoleChange struct {
	Name        string
	Description *string
	Permissions *[]string
}

var validRoleName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

const maxRoleDescription = 500

// parseRole checks a change and returns the permissions it sets, nil when
// it leaves them alone.
func parseRole(in RoleChange, create bool) (permission.Set, error) {
	errs := tenantry.FieldErrors{}
	if create {
		switch {
		case !validRoleName.MatchString(in.Name):
			errs.Add("name", "1 to 63 lower-case letters, digits, - and _, starting with a letter.")
		case permission.IsBuiltIn(in.Name):
			errs.Add("name", "admin, user and viewer are built-in roles.")
		}
		if in.Permissions == nil {
			errs.Add("permissions", "The role's permissions are required, e.g. [\"documents:read\", \"documents:update:own\"].")
		}
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > maxRoleDescription {
		errs.Add("description", "At most 500 characters.")
	}
	var set permission.Set
	if in.Permissions != nil {
		var err error
		if set, err = permission.Parse(*in.Permissions); err != nil {
			errs.Add("permissions", err.Error())
		}
	}
	return set, errs.Err()
}

// CreateRole creates a custom role granting only what the caller holds.
func (s *Service) CreateRole(ctx context.Context, tenantID string, in RoleChange) (*RoleInfo, error) {
	mt, err := s.Authorize(ctx, tenantID, permission.RolesManage)
	if err != nil {
		return nil, err
	}
	set, err := parseRole(in, true)
	if err != nil {
		return nil, err
	}
	if !mt.Permissions.Covers(set) {
		return nil, cannotGrant(mt, set)
	}
	r := &RoleInfo{Name: in.Name, Permissions: set, CreatedAt: sqldb.Now()}
	r.UpdatedAt = r.CreatedAt
	if in.Description != nil {
		r.Description = strings.TrimSpace(*in.Description)
	}
	encoded, _ := json.Marshal(set.Strings())
	_, err = s.db.Exec(ctx, `INSERT INTO tenant_roles (tenant_id, name, description, permissions, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, tenantID, r.Name, r.Description, string(encoded), r.CreatedAt, r.UpdatedAt)
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return nil, tenantry.Errorf(tenantry.EConflict, "The tenant already has a role named %s", in.Name)
	} else if err != nil {
		return nil, err
	}
	audit.SetTarget(ctx, "role", r.Name)
	audit.Annotate(ctx, "after", map[string]any{"permissions": set.Strings()})
	return r, nil
}

// lockedRole locks the tenant, then returns what its role name grants,
// which the caller must hold all of to change the role.
func lockedRole(ctx context.Context, tx sqldb.Tx, mt *MemberTenant, name string) (permission.Set, error) {
	if ok, err := lockTenant(ctx, tx, mt.ID); err != nil {
		return nil, err
	} else if !ok {
		return nil, errTenantNotFound
	}
	set, err := roleSet(ctx, tx, mt.ID, name)
	if err != nil {
		return nil, err
	}
	if !mt.Permissions.Covers(set) {
		return nil, cannotGrant(mt, set)
	}
	return set, nil
}

func cannotGrant(mt *MemberTenant, set permission.Set) error {
	return tenantry.Errorf(tenantry.EForbidden, "You cannot grant permissions you do not hold: %s", strings.Join(mt.Permissions.Missing(set), ", "))
}

// UpdateRole changes a custom role. The caller must hold what the role
// grants before and after, and the tenant must keep a member who can
// manage members and roles.
func (s *Service) UpdateRole(ctx context.Context, tenantID, name string, in RoleChange) (*RoleInfo, error) {
	mt, err := s.Authorize(ctx, tenantID, permission.RolesManage)
	if err != nil {
		return nil, err
	}
	if permission.IsBuiltIn(name) {
		return nil, tenantry.Errorf(tenantry.EForbidden, "Built-in roles cannot be changed")
	}
	if in.Description == nil && in.Permissions == nil {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "Request body is required")
	}
	set, err := parseRole(in, false)
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		before, err := lockedRole(ctx, tx, mt, name)
		if err != nil {
			return err
		}
		now := sqldb.Now()
		if in.Permissions != nil {
			if !mt.Permissions.Covers(set) {
				return cannotGrant(mt, set)
			}
			encoded, _ := json.Marshal(set.Strings())
			if _, err := tx.Exec(ctx, `UPDATE tenant_roles SET permissions = $3, updated_at = $4 WHERE tenant_id = $1 AND name = $2`,
				tenantID, name, string(encoded), now); err != nil {
				return err
			}
			audit.Annotate(ctx, "before", map[string]any{"permissions": before.Strings()})
			audit.Annotate(ctx, "after", map[string]any{"permissions": set.Strings()})
		}
		if in.Description != nil {
			if _, err := tx.Exec(ctx, `UPDATE tenant_roles SET description = $3, updated_at = $4 WHERE tenant_id = $1 AND name = $2`,
				tenantID, name, strings.TrimSpace(*in.Description), now); err != nil {
				return err
			}
		}
		return ensureAnotherManager(ctx, tx, tenantID, "", "The change would leave no member able to manage members and roles")
	})
	if err != nil {
		return nil, err
	}
	audit.SetTarget(ctx, "role", name)
	return s.Role(ctx, tenantID, name)
}

// DeleteRole deletes a custom role. Members who have it are moved to
// reassignTo, which the caller must be able to grant; without it a role in
// use is not deleted.
func (s *Service) DeleteRole(ctx context.Context, tenantID, name, reassignTo string) error {
	mt, err := s.Authorize(ctx, tenantID, permission.RolesManage)
	if err != nil {
		return err
	}
	if permission.IsBuiltIn(name) {
		return tenantry.Errorf(tenantry.EForbidden, "Built-in roles cannot be deleted")
	}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		before, err := lockedRole(ctx, tx, mt, name)
		if err != nil {
			return err
		}
		var inUse int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = $2`, tenantID, name).Scan(&inUse); err != nil {
			return err
		}
		if inUse > 0 {
			if reassignTo == "" {
				return tenantry.Errorf(tenantry.EConflict, "%d members have this role: give reassign_to, the role they get instead", inUse)
			}
			if reassignTo == name {
				return tenantry.Errorf(tenantry.EBadRequest, "reassign_to must name another role")
			}
			if _, err := grantable(ctx, tx, mt, Assignment{Role: tenantry.Role(reassignTo)}); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND role = $2`, tenantID, name, reassignTo); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tenant_roles WHERE tenant_id = $1 AND name = $2`, tenantID, name); err != nil {
			return err
		}
		audit.Annotate(ctx, "before", map[string]any{"permissions": before.Strings(), "members": inUse})
		if inUse > 0 {
			audit.Annotate(ctx, "after", map[string]any{"reassigned_to": reassignTo})
		}
		return ensureAnotherManager(ctx, tx, tenantID, "", "The change would leave no member able to manage members and roles")
	})
	if err == nil {
		audit.SetTarget(ctx, "role", name)
	}
	return err
}
