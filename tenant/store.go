package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/sqldb"
)

const tenantColumns = `id, name, database_name, COALESCE(server, ''), is_active, created_at, updated_at, COALESCE(CAST(created_by AS TEXT), '')`

func scanTenant(row sqldb.Row) (*tenantry.Tenant, error) {
	var t tenantry.Tenant
	if err := row.Scan(&t.ID, &t.Name, &t.DatabaseName, &t.Server, &t.IsActive, &t.CreatedAt, &t.UpdatedAt, &t.CreatedBy); err != nil {
		return nil, err
	}
	return &t, nil
}

func scanTenants(rows sqldb.Rows, err error) ([]*tenantry.Tenant, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*tenantry.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func insertPending(ctx context.Context, q sqldb.Querier, t *tenantry.Tenant) error {
	_, err := q.Exec(ctx, `
		INSERT INTO tenants (id, name, database_name, server, is_active, provisioned_at, created_at, updated_at, created_by)
		VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8)`,
		t.ID, t.Name, t.DatabaseName, nullable(t.Server), t.IsActive, t.CreatedAt, t.UpdatedAt, nullable(t.CreatedBy))
	return err
}

func markProvisioned(ctx context.Context, q sqldb.Querier, id string, at time.Time) error {
	n, err := q.Exec(ctx, `UPDATE tenants SET provisioned_at = $2 WHERE id = $1 AND provisioned_at IS NULL`, id, at)
	if err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("tenant %s is not pending", id)
	}
	return nil
}

func deletePending(ctx context.Context, q sqldb.Querier, id string) error {
	_, err := q.Exec(ctx, `DELETE FROM tenants WHERE id = $1 AND provisioned_at IS NULL`, id)
	return err
}

func listPendingBefore(ctx context.Context, q sqldb.Querier, before time.Time) ([]*tenantry.Tenant, error) {
	return scanTenants(q.Query(ctx, `
		SELECT `+tenantColumns+` FROM tenants
		WHERE provisioned_at IS NULL AND created_at < $1
		ORDER BY created_at`, before))
}

// notPurging excludes tenants whose purge has begun: their database and
// blobs may already be gone.
const notPurging = `NOT EXISTS (SELECT 1 FROM tenant_purges p WHERE p.tenant_id = tenants.id)`

// ListProvisioned returns every tenant whose database exists, active,
// deactivated or deleted (and not yet being purged), oldest first.
// Migrations and maintenance run over this list.
func ListProvisioned(ctx context.Context, q sqldb.Querier) ([]*tenantry.Tenant, error) {
	return scanTenants(q.Query(ctx, `
		SELECT `+tenantColumns+` FROM tenants
		WHERE provisioned_at IS NOT NULL AND `+notPurging+`
		ORDER BY created_at, id`))
}

// FindProvisioned returns the provisioned tenant with the given id, active or
// not, unless its purge has begun.
func FindProvisioned(ctx context.Context, q sqldb.Querier, id string) (*tenantry.Tenant, error) {
	t, err := scanTenant(q.QueryRow(ctx, `
		SELECT `+tenantColumns+` FROM tenants
		WHERE id = $1 AND provisioned_at IS NOT NULL AND `+notPurging, id))
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, tenantry.Errorf(tenantry.ENotFound, "Tenant not found")
	}
	return t, err
}

const activeTenant = `t.is_active AND t.provisioned_at IS NOT NULL`

// memberTenantColumns is the select list memberTenantDest scans, over
// tenants t, memberships m and the member's custom role r (see memberRole).
// Authorizing a request reads it, so its timestamps are selected for the
// cheap decoding of sqldb.ScanTime.
func memberTenantColumns(d sqldb.Dialect) string {
	return `t.id, t.name, t.database_name, COALESCE(t.server, ''), t.is_active, ` + d.Time("t.created_at") + `, ` + d.Time("t.updated_at") +
		`, COALESCE(CAST(t.created_by AS TEXT), ''), t.auth_method, m.role, ` + d.Time("m.joined_at") + `, ` + d.Time("m.expires_at") + `, COALESCE(r.permissions, '')`
}

// memberRole joins a membership m to its custom role, if it has one.
const memberRole = ` LEFT JOIN tenant_roles r ON r.tenant_id = m.tenant_id AND r.name = m.role `

// unexpired keeps the memberships m whose role has not expired at $now,
// the placeholder given.
func unexpired(now string) string { return ` (m.expires_at IS NULL OR m.expires_at > ` + now + `) ` }

func memberTenantDest(mt *MemberTenant) []any {
	t := &mt.Tenant
	return []any{&t.ID, &t.Name, &t.DatabaseName, &t.Server, &t.IsActive, sqldb.ScanTime(&t.CreatedAt), sqldb.ScanTime(&t.UpdatedAt),
		&t.CreatedBy, &t.AuthMethod, &mt.Role, sqldb.ScanTime(&mt.JoinedAt), sqldb.ScanNullTime(&mt.ExpiresAt), &mt.customPermissions}
}

// MemberTenant is a tenant seen by one of its members.
type MemberTenant struct {
	tenantry.Tenant
	Role     tenantry.Role
	JoinedAt time.Time
	// ExpiresAt is when the member stops being one; zero for never.
	ExpiresAt time.Time
	// Permissions are what the member's role grants.
	Permissions permission.Set

	customPermissions string
}

// Member is a user seen as a member of a tenant.
type Member struct {
	tenantry.User
	Role      tenantry.Role
	JoinedAt  time.Time
	ExpiresAt time.Time
}

func listMemberTenants(ctx context.Context, q sqldb.Querier, userID string) ([]MemberTenant, error) {
	rows, err := q.Query(ctx, `
		SELECT `+memberTenantColumns(q.Dialect())+`
		FROM memberships m JOIN tenants t ON t.id = m.tenant_id `+memberRole+`
		WHERE m.user_id = $1 AND `+activeTenant+` AND `+unexpired("$2")+`
		ORDER BY m.joined_at DESC, t.id`, userID, sqldb.Now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []MemberTenant{}
	for rows.Next() {
		var mt MemberTenant
		if err := rows.Scan(memberTenantDest(&mt)...); err != nil {
			return nil, err
		}
		mt.Permissions = permissionsOf(mt.Role, mt.customPermissions)
		out = append(out, mt)
	}
	return out, rows.Err()
}

// findAccess returns an active tenant and the user's role in it, or
// ErrNoRows when the user is not a member, or no longer, or the tenant is
// not active. A role that expired is no role: it is refused here from the
// instant it expires, whether or not the job that removes such
// memberships has run.
func findAccess(ctx context.Context, q sqldb.Querier, tenantID, userID string, now time.Time) (*MemberTenant, error) {
	var mt MemberTenant
	err := q.QueryRow(ctx, accessStatement.For(q.Dialect()), tenantID, userID).Scan(memberTenantDest(&mt)...)
	if err != nil {
		return nil, err
	}
	if !mt.ExpiresAt.IsZero() && !mt.ExpiresAt.After(now) {
		return nil, sqldb.ErrNoRows
	}
	mt.Permissions = permissionsOf(mt.Role, mt.customPermissions)
	return &mt, nil
}

// accessStatement is findAccess's query, which authorizes every tenant
// request.
var accessStatement = sqldb.NewStatement(func(d sqldb.Dialect) string { //nolint:gochecknoglobals // a constant statement, written out once per engine
	return `SELECT ` + memberTenantColumns(d) + `
		FROM tenants t JOIN memberships m ON m.tenant_id = t.id AND m.user_id = $2 ` + memberRole + `
		WHERE t.id = $1 AND ` + activeTenant
})

// permissionsOf is what a role grants: a built-in role's set, or a custom
// role's stored one. A custom role whose stored set no longer reads (a
// permission since withdrawn) grants what still does.
func permissionsOf(role tenantry.Role, custom string) permission.Set {
	if set, ok := permission.BuiltIn(string(role)); ok {
		return set
	}
	var list []string
	_ = json.Unmarshal([]byte(custom), &list)
	set := permission.Set{}
	for _, g := range list {
		if one, err := permission.Parse([]string{g}); err == nil {
			maps.Copy(set, one)
		}
	}
	return set
}

func listMembers(ctx context.Context, q sqldb.Querier, tenantID string) ([]Member, error) {
	rows, err := q.Query(ctx, `
		SELECT u.id, u.email, u.first_name, u.last_name, u.is_active, u.created_at, u.updated_at, m.role, m.joined_at, m.expires_at
		FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.tenant_id = $1 AND u.is_active AND `+unexpired("$2")+`
		ORDER BY m.joined_at, u.id`, tenantID, sqldb.Now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Member{}
	for rows.Next() {
		var m Member
		u := &m.User
		if err := rows.Scan(&u.ID, &u.Email, &u.FirstName, &u.LastName, &u.IsActive, &u.CreatedAt, &u.UpdatedAt, &m.Role, &m.JoinedAt, sqldb.ScanNullTime(&m.ExpiresAt)); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// lockTenant takes the tenant's row lock for the rest of the transaction,
// serialising membership changes on PostgreSQL (SQLite's single writer
// already does). It reports whether the tenant exists and is active.
func lockTenant(ctx context.Context, q sqldb.Querier, tenantID string) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE tenants SET updated_at = updated_at WHERE id = $1 AND is_active AND provisioned_at IS NOT NULL`, tenantID)
	return n == 1, err
}

func countMembers(ctx context.Context, q sqldb.Querier, tenantID string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1`, tenantID).Scan(&n)
	return n, err
}

func insertMembership(ctx context.Context, q sqldb.Querier, m *tenantry.Membership) error {
	_, err := q.Exec(ctx, `INSERT INTO memberships (tenant_id, user_id, role, joined_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		m.TenantID, m.UserID, string(m.Role), m.JoinedAt, nullTime(m.ExpiresAt))
	return err
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// findMembership returns a membership, expired or not: an expired one is
// still there until the expiry job removes it, and stands in the way of
// adding the user again until then.
func findMembership(ctx context.Context, q sqldb.Querier, tenantID, userID string) (*tenantry.Membership, error) {
	m := tenantry.Membership{TenantID: tenantID, UserID: userID}
	var custom string
	err := q.QueryRow(ctx, `SELECT m.role, m.joined_at, m.expires_at, COALESCE(r.permissions, '')
		FROM memberships m `+memberRole+` WHERE m.tenant_id = $1 AND m.user_id = $2`, tenantID, userID).
		Scan(&m.Role, sqldb.ScanTime(&m.JoinedAt), sqldb.ScanNullTime(&m.ExpiresAt), &custom)
	if err != nil {
		return nil, err
	}
	m.Permissions = permissionsOf(m.Role, custom)
	return &m, nil
}

// managers counts the unexpired members, other than except, whose role
// lets them change members' roles and manage roles: a tenant must keep one.
func managers(ctx context.Context, q sqldb.Querier, tenantID, except string) (int, error) {
	rows, err := q.Query(ctx, `SELECT m.user_id, m.role, COALESCE(r.permissions, '') FROM memberships m `+memberRole+`
		WHERE m.tenant_id = $1 AND `+unexpired("$2"), tenantID, sqldb.Now())
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var user, role, custom string
		if err := rows.Scan(&user, &role, &custom); err != nil {
			return 0, err
		}
		if user != except && isManager(permissionsOf(tenantry.Role(role), custom)) {
			n++
		}
	}
	return n, rows.Err()
}

// isManager reports whether a role's permissions keep a tenant managed.
func isManager(s permission.Set) bool {
	return s.AllowsAll(permission.MembersUpdate) && s.AllowsAll(permission.RolesManage)
}

func deleteMembership(ctx context.Context, q sqldb.Querier, tenantID, userID string) error {
	_, err := q.Exec(ctx, `DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID)
	return err
}

func updateRole(ctx context.Context, q sqldb.Querier, tenantID, userID string, role tenantry.Role, expiresAt time.Time) error {
	_, err := q.Exec(ctx, `UPDATE memberships SET role = $3, expires_at = $4 WHERE tenant_id = $1 AND user_id = $2`,
		tenantID, userID, string(role), nullTime(expiresAt))
	return err
}

func renameTenant(ctx context.Context, q sqldb.Querier, tenantID, name string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE tenants SET name = $2, updated_at = $3 WHERE id = $1`, tenantID, name, now)
	return err
}

func deactivateTenant(ctx context.Context, q sqldb.Querier, tenantID string, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE tenants SET is_active = $2, updated_at = $3 WHERE id = $1 AND is_active`, tenantID, false, now)
	return n == 1, err
}

// deleteTenant deactivates a tenant and starts its retention period.
func deleteTenant(ctx context.Context, q sqldb.Querier, tenantID string, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE tenants SET is_active = $2, deleted_at = $3, updated_at = $3 WHERE id = $1 AND is_active`, tenantID, false, now)
	return n == 1, err
}

// activeUser reports whether an active account has the id.
func activeUser(ctx context.Context, q sqldb.Querier, userID string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM users WHERE id = $1 AND is_active`, userID).Scan(&n)
	return n == 1, err
}
