// Package quota holds the limits a tenant works under: bytes stored,
// documents and members. Defaults come from the configuration; an operator
// may override any of them for one tenant, to a number or to unlimited, and
// clear the override again to fall back on the default. Enforcing them is
// the services' part, each in the transaction that makes the change: the
// document service reserves bytes and a document before it stores anything,
// the tenant service counts members under the tenant's row lock.
package quota

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// Kind names one quota.
type Kind string

// The quotas a tenant has.
const (
	// Storage limits the bytes stored, each distinct content once: the
	// physical_bytes of the storage report.
	Storage Kind = "storage"
	// Documents limits the number of documents.
	Documents Kind = "documents"
	// Members limits the number of memberships.
	Members Kind = "members"
)

// Kinds returns every quota, in the order they are reported.
func Kinds() []Kind { return []Kind{Storage, Documents, Members} }

// Valid reports whether k names a quota.
func (k Kind) Valid() bool { return k == Storage || k == Documents || k == Members }

// Limits are the limits a tenant works under; nil is unlimited. Storage is
// in bytes.
type Limits struct {
	Storage   *int64
	Documents *int64
	Members   *int64
}

// Of returns the limit of one quota, nil when unlimited.
func (l Limits) Of(k Kind) *int64 {
	switch k {
	case Storage:
		return l.Storage
	case Documents:
		return l.Documents
	case Members:
		return l.Members
	}
	return nil
}

func (l *Limits) set(k Kind, v *int64) {
	switch k {
	case Storage:
		l.Storage = v
	case Documents:
		l.Documents = v
	case Members:
		l.Members = v
	}
}

// Override is an operator's choice for one quota of one tenant.
type Override struct {
	Kind Kind
	// Default clears the override: the tenant falls back on the
	// configured default. Limit is then ignored.
	Default bool
	// Limit is the tenant's own limit; nil is unlimited.
	Limit *int64
}

// Details is what a client learns of an exceeded quota.
type Details struct {
	Quota Kind  `json:"quota" enum:"storage,documents,members" doc:"The quota the request would exceed."`
	Limit int64 `json:"limit" doc:"The tenant's limit; bytes for storage."`
	Used  int64 `json:"used" doc:"What the tenant uses now; bytes for storage, including bytes held for uploads in progress."`
}

// Exceeded is the error of a change that would take a tenant past one of
// its limits.
func Exceeded(k Kind, limit, used int64) error {
	var msg string
	switch k {
	case Storage:
		msg = fmt.Sprintf("Storage quota exceeded: the tenant may store %d bytes and uses %d", limit, used)
	case Documents:
		msg = fmt.Sprintf("Document quota exceeded: the tenant may have %d documents and has %d", limit, used)
	default:
		msg = fmt.Sprintf("Member quota exceeded: the tenant may have %d members and has %d", limit, used)
	}
	return &tenantry.Error{Code: tenantry.EQuotaExceeded, Message: msg, Details: Details{Quota: k, Limit: limit, Used: used}}
}

// Store reads and writes the per-tenant overrides in the control database
// and completes them with the defaults.
type Store struct {
	db       sqldb.DB
	defaults Limits
}

// NewStore returns a Store over the control database, with the limits of
// tenants without an override.
func NewStore(db sqldb.DB, defaults Limits) *Store {
	return &Store{db: db, defaults: defaults}
}

// Defaults returns the limits of a tenant without any override.
func (s *Store) Defaults() Limits { return s.defaults }

// Limits returns a tenant's limits, reading its overrides through q (the
// control database, or a transaction on it).
func (s *Store) Limits(ctx context.Context, q sqldb.Querier, tenantID string) (Limits, error) {
	if q == nil {
		q = s.db
	}
	l := s.defaults
	rows, err := q.Query(ctx, `SELECT quota, quota_limit FROM tenant_quotas WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return l, err
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var limit *int64
		if err := rows.Scan(&kind, &limit); err != nil {
			return l, err
		}
		l.set(Kind(kind), limit)
	}
	return l, rows.Err()
}

var errTenantNotFound = tenantry.Errorf(tenantry.ENotFound, "Tenant not found")

// Set applies overrides to a tenant and returns its limits after them.
func (s *Store) Set(ctx context.Context, tenantID string, overrides []Override) (Limits, error) {
	var out Limits
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		var n int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM tenants WHERE id = $1 AND provisioned_at IS NOT NULL`, tenantID).Scan(&n)
		if err != nil {
			return err
		} else if n == 0 {
			return errTenantNotFound
		}
		now := sqldb.Now()
		for _, o := range overrides {
			if !o.Kind.Valid() {
				return fmt.Errorf("unknown quota %q", o.Kind)
			}
			if o.Default {
				_, err = tx.Exec(ctx, `DELETE FROM tenant_quotas WHERE tenant_id = $1 AND quota = $2`, tenantID, string(o.Kind))
			} else if o.Limit != nil && *o.Limit < 0 {
				return tenantry.Errorf(tenantry.EBadRequest, "A %s quota cannot be negative", o.Kind)
			} else {
				_, err = tx.Exec(ctx, `
					INSERT INTO tenant_quotas (tenant_id, quota, quota_limit, updated_at) VALUES ($1, $2, $3, $4)
					ON CONFLICT (tenant_id, quota) DO UPDATE SET quota_limit = excluded.quota_limit, updated_at = excluded.updated_at`,
					tenantID, string(o.Kind), o.Limit, now)
			}
			if err != nil {
				return err
			}
		}
		out, err = s.Limits(ctx, tx, tenantID)
		return err
	})
	if errors.Is(err, sqldb.ErrInvalidValue) {
		return out, errTenantNotFound
	}
	return out, err
}
