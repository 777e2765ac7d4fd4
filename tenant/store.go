package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

const tenantColumns = `id, name, database_name, is_active, created_at, updated_at, COALESCE(CAST(created_by AS TEXT), '')`

func scanTenant(row sqldb.Row) (*tenantry.Tenant, error) {
	var t tenantry.Tenant
	if err := row.Scan(&t.ID, &t.Name, &t.DatabaseName, &t.IsActive, &t.CreatedAt, &t.UpdatedAt, &t.CreatedBy); err != nil {
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
		INSERT INTO tenants (id, name, database_name, is_active, provisioned_at, created_at, updated_at, created_by)
		VALUES ($1, $2, $3, $4, NULL, $5, $6, $7)`,
		t.ID, t.Name, t.DatabaseName, t.IsActive, t.CreatedAt, t.UpdatedAt, nullable(t.CreatedBy))
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

// ListProvisioned returns every tenant whose database exists, active or
// not, oldest first. Migrations run over this list.
func ListProvisioned(ctx context.Context, q sqldb.Querier) ([]*tenantry.Tenant, error) {
	return scanTenants(q.Query(ctx, `
		SELECT `+tenantColumns+` FROM tenants
		WHERE provisioned_at IS NOT NULL
		ORDER BY created_at, id`))
}

// FindProvisioned returns the provisioned tenant with the given id, active or
// not.
func FindProvisioned(ctx context.Context, q sqldb.Querier, id string) (*tenantry.Tenant, error) {
	t, err := scanTenant(q.QueryRow(ctx, `
		SELECT `+tenantColumns+` FROM tenants
		WHERE id = $1 AND provisioned_at IS NOT NULL`, id))
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, tenantry.Errorf(tenantry.ENotFound, "Tenant not found")
	}
	return t, err
}
