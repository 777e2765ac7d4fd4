package tenant

import (
	"context"
	"errors"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/quota"
	"github.com/tenantry/tenantry/sqldb"
)

// The platform administration of tenants. The callers are platform
// administrators, whatever their membership: the API lets no one else
// reach these, so nothing here asks Authorize.

// AdminTenant is a tenant as platform administrators see it.
type AdminTenant struct {
	tenantry.Tenant
	// DeletedAt is when the tenant was deleted; zero if it was not.
	DeletedAt time.Time
	Members   int64
}

// TenantFilter selects a page of tenants; zero values filter nothing.
type TenantFilter struct {
	// Search matches the name or the database name, case-insensitively.
	Search         string
	IncludeDeleted bool
	// Page counts from 1.
	Page, PerPage int
}

// ListAll returns a page of every tenant whose database exists (active or
// deactivated; deleted too when asked, until its purge begins), newest
// first, and how many match.
func (s *Service) ListAll(ctx context.Context, f TenantFilter) ([]AdminTenant, int64, error) {
	return listAdminTenants(ctx, s.db, f)
}

// AdminGet returns a tenant whatever its state, until its purge begins.
func (s *Service) AdminGet(ctx context.Context, tenantID string) (*AdminTenant, error) {
	return findAdminTenant(ctx, s.db, tenantID)
}

// Provisioned returns every tenant whose database exists and is not being
// purged, whatever its state.
func (s *Service) Provisioned(ctx context.Context) ([]*tenantry.Tenant, error) {
	return ListProvisioned(ctx, s.db)
}

var errTenantDeleted = tenantry.Errorf(tenantry.EConflict, "The tenant is deleted: restore it instead")

// SetActive deactivates a tenant, which its members then find no more
// while its data stays as it is, or activates it again. A deleted tenant
// is restored instead (Lifecycle.Restore). Setting the state the tenant is
// already in changes nothing.
func (s *Service) SetActive(ctx context.Context, tenantID string, active bool) (*AdminTenant, error) {
	changed := false
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if ok, err := lockAny(ctx, tx, tenantID); err != nil {
			return err
		} else if !ok {
			return errTenantNotFound
		}
		r, err := findLifecycleRow(ctx, tx, tenantID)
		switch {
		case err != nil:
			return err
		case !r.DeletedAt.IsZero():
			return errTenantDeleted
		case r.IsActive == active:
			return nil
		}
		changed = true
		now := sqldb.Now()
		if !active {
			return s.deactivate(ctx, tx, &r.Tenant, now)
		}
		if err := activateTenant(ctx, tx, tenantID, now); err != nil {
			return err
		}
		return s.streams.EmitPlatform(ctx, tx, tenantry.EventTenantUpdated, tenantID, principalID(ctx), map[string]any{
			"tenant_id": tenantID, "before": map[string]any{"is_active": false}, "after": map[string]any{"is_active": true},
		})
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.streams.Committed()
		audit.Annotate(ctx, "before", map[string]any{"is_active": !active})
		audit.Annotate(ctx, "after", map[string]any{"is_active": active})
	}
	return s.AdminGet(ctx, tenantID)
}

// SetLimits replaces a tenant's limits, each given or unlimited (nil), and
// returns them.
func (s *Service) SetLimits(ctx context.Context, tenantID string, l quota.Limits) (quota.Limits, error) {
	before, err := s.quotas.Limits(ctx, s.db, tenantID)
	if err != nil {
		return before, err
	}
	overrides := make([]quota.Override, 0, len(quota.Kinds()))
	for _, k := range quota.Kinds() {
		overrides = append(overrides, quota.Override{Kind: k, Limit: l.Of(k)})
	}
	after, err := s.quotas.Set(ctx, tenantID, overrides)
	if err != nil {
		return after, err
	}
	audit.Annotate(ctx, "before", limitsDetail(before))
	audit.Annotate(ctx, "after", limitsDetail(after))
	return after, nil
}

func limitsDetail(l quota.Limits) map[string]any {
	out := map[string]any{}
	for _, k := range quota.Kinds() {
		out[string(k)] = l.Of(k)
	}
	return out
}

// TenantStats are the platform's tenant figures, over the tenants whose
// database exists.
type TenantStats struct {
	Active, Deactivated, Deleted int64
	// Created counts the tenants created per UTC day since the time asked,
	// days without any left out.
	Created []sqldb.DayCount
}

// Stats counts the tenants by state, and those created per day since
// since.
func (s *Service) Stats(ctx context.Context, since time.Time) (*TenantStats, error) {
	var st TenantStats
	err := s.db.QueryRow(ctx, `SELECT
		COALESCE(SUM(CASE WHEN deleted_at IS NULL AND is_active THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN deleted_at IS NULL AND NOT is_active THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN deleted_at IS NOT NULL THEN 1 ELSE 0 END), 0)
		FROM tenants WHERE provisioned_at IS NOT NULL AND `+notPurging).Scan(&st.Active, &st.Deactivated, &st.Deleted)
	if err != nil {
		return nil, err
	}
	st.Created, err = sqldb.CountByDay(ctx, s.db, `SELECT `+s.db.Dialect().Time("created_at")+` FROM tenants
		WHERE provisioned_at IS NOT NULL AND created_at >= $1`, since)
	return &st, err
}

func listAdminTenants(ctx context.Context, q sqldb.Querier, f TenantFilter) ([]AdminTenant, int64, error) {
	var w sqldb.Where
	w.Is(`provisioned_at IS NOT NULL AND ` + notPurging)
	if !f.IncludeDeleted {
		w.Is(`deleted_at IS NULL`)
	}
	if f.Search != "" {
		w.Add(`(`+sqldb.ContainsLower("name", "$%d")+` OR `+sqldb.ContainsLower("database_name", "$%d")+`)`, sqldb.Contains(f.Search))
	}
	var total int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM tenants WHERE `+w.String(), w.Args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := q.Query(ctx, `SELECT `+adminTenantColumns(q.Dialect())+` FROM tenants WHERE `+w.String()+
		` ORDER BY created_at DESC, id `+sqldb.Page(f.Page, f.PerPage), w.Args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []AdminTenant{}
	for rows.Next() {
		var t AdminTenant
		if err := rows.Scan(adminTenantDest(&t)...); err != nil {
			return nil, 0, err
		}
		out = append(out, t)
	}
	return out, total, rows.Err()
}

func findAdminTenant(ctx context.Context, q sqldb.Querier, tenantID string) (*AdminTenant, error) {
	var t AdminTenant
	err := q.QueryRow(ctx, `SELECT `+adminTenantColumns(q.Dialect())+` FROM tenants
		WHERE id = $1 AND provisioned_at IS NOT NULL AND `+notPurging, tenantID).Scan(adminTenantDest(&t)...)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errTenantNotFound
	}
	return &t, err
}

func adminTenantColumns(d sqldb.Dialect) string {
	return `id, name, database_name, COALESCE(server, ''), is_active, ` + d.Time("created_at") + `, ` + d.Time("updated_at") +
		`, COALESCE(CAST(created_by AS TEXT), ''), ` + d.Time("deleted_at") +
		`, (SELECT count(*) FROM memberships m WHERE m.tenant_id = tenants.id)`
}

func adminTenantDest(t *AdminTenant) []any {
	return []any{&t.ID, &t.Name, &t.DatabaseName, &t.Server, &t.IsActive, sqldb.ScanTime(&t.CreatedAt), sqldb.ScanTime(&t.UpdatedAt),
		&t.CreatedBy, sqldb.ScanNullTime(&t.DeletedAt), &t.Members}
}

func activateTenant(ctx context.Context, q sqldb.Querier, tenantID string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE tenants SET is_active = $2, updated_at = $3 WHERE id = $1 AND deleted_at IS NULL`, tenantID, true, now)
	return err
}

// Membership is one of a user's memberships, as platform administrators
// see it.
type Membership struct {
	TenantID, TenantName string
	TenantActive         bool
	Role                 tenantry.Role
	// ExpiresAt is when the role ends; zero for never.
	ExpiresAt time.Time
}

// MembershipsOf returns every membership of a user in a tenant whose
// database exists, whatever the tenant's state, oldest first.
func (s *Service) MembershipsOf(ctx context.Context, userID string) ([]Membership, error) {
	rows, err := s.db.Query(ctx, `
		SELECT t.id, t.name, t.is_active AND t.deleted_at IS NULL, m.role, m.expires_at
		FROM memberships m JOIN tenants t ON t.id = m.tenant_id
		WHERE m.user_id = $1 AND t.provisioned_at IS NOT NULL
		ORDER BY m.joined_at, t.id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Membership{}
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.TenantID, &m.TenantName, &m.TenantActive, &m.Role, sqldb.ScanNullTime(&m.ExpiresAt)); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
