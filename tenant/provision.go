package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

// Provisioner creates tenants together with their databases. A tenant row is
// first written as pending (invisible to every listing), then its database is
// created and migrated, then the row is activated in one transaction with
// whatever the caller adds (the creator's membership, events). A failure at
// any step undoes the earlier ones; a crash between steps leaves a pending row
// that Reap removes, database included.
type Provisioner struct {
	control sqldb.DB
	tenants *tenantdb.Manager
	placer  Placer
	logger  *slog.Logger
}

// Placer chooses the database server of a new tenant: "" for the default
// one.
type Placer interface {
	Place(ctx context.Context) (server string, err error)
}

// NewProvisioner returns a Provisioner writing tenant rows to control and
// creating databases through the tenant database manager, so that even the
// connection that migrates a new database counts against the cap. placer,
// when not nil, chooses each new tenant's server.
func NewProvisioner(control sqldb.DB, tenants *tenantdb.Manager, placer Placer, logger *slog.Logger) *Provisioner {
	return &Provisioner{control: control, tenants: tenants, placer: placer, logger: logger}
}

// ActivateFunc runs inside the transaction that makes a new tenant visible.
type ActivateFunc func(ctx context.Context, tx sqldb.Tx, t *tenantry.Tenant) error

// nameAttempts bounds retries when a generated database name is taken, which
// needs the same slug and a 32-bit collision of the id's tail.
const nameAttempts = 3

// Provision creates a tenant named name, its database at the latest tenant
// schema, and runs activate in the transaction that makes it visible.
func (p *Provisioner) Provision(ctx context.Context, name, createdBy string, activate ActivateFunc) (*tenantry.Tenant, error) {
	for attempt := 1; ; attempt++ {
		t, err := p.provisionOnce(ctx, name, createdBy, activate)
		if errors.Is(err, errNameTaken) && attempt < nameAttempts {
			continue
		}
		return t, err
	}
}

var errNameTaken = errors.New("tenant database name taken")

func (p *Provisioner) provisionOnce(ctx context.Context, name, createdBy string, activate ActivateFunc) (*tenantry.Tenant, error) {
	var server string
	if p.placer != nil {
		var err error
		if server, err = p.placer.Place(ctx); err != nil {
			return nil, fmt.Errorf("provision tenant: choose a database server: %w", err)
		}
	}
	now := sqldb.Now()
	id := uuid.NewString()
	t := &tenantry.Tenant{
		ID:           id,
		Name:         name,
		DatabaseName: tenantdb.Name(name, id),
		Server:       server,
		IsActive:     true,
		CreatedAt:    now,
		UpdatedAt:    now,
		CreatedBy:    createdBy,
	}

	if err := insertPending(ctx, p.control, t); errors.Is(err, sqldb.ErrUniqueViolation) {
		return nil, errNameTaken
	} else if err != nil {
		return nil, fmt.Errorf("provision tenant: record: %w", err)
	}

	if err := p.tenants.Engine().Create(ctx, tenantdb.RefOf(t)); err != nil {
		// ErrExists means the name belongs to another database, which
		// must not be dropped. Any other failure may have come after the
		// server created it, so the drop is attempted.
		taken := errors.Is(err, tenantdb.ErrExists)
		p.undo(ctx, t, !taken)
		if taken {
			return nil, errNameTaken
		}
		return nil, fmt.Errorf("provision tenant: create database: %w", err)
	}

	// Acquiring opens the database and migrates it to the latest schema;
	// the lease is released at once and the database stays open, warm for
	// the tenant's first request.
	lease, err := p.tenants.Acquire(ctx, tenantdb.RefOf(t))
	if err != nil {
		p.undo(ctx, t, true)
		return nil, fmt.Errorf("provision tenant: migrate database: %w", err)
	}
	lease.Release()

	err = p.control.InTx(ctx, func(tx sqldb.Tx) error {
		if err := markProvisioned(ctx, tx, t.ID, sqldb.Now()); err != nil {
			return err
		}
		if activate != nil {
			return activate(ctx, tx, t)
		}
		return nil
	})
	if err != nil {
		p.undo(ctx, t, true)
		return nil, fmt.Errorf("provision tenant: activate: %w", err)
	}
	return t, nil
}

// undo compensates a failed provisioning. It runs even when the request that
// started it was cancelled; what it cannot undo is left as a pending row for
// Reap.
func (p *Provisioner) undo(ctx context.Context, t *tenantry.Tenant, dropDatabase bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if dropDatabase {
		if err := p.dropDatabase(ctx, tenantdb.RefOf(t)); err != nil {
			p.logger.Error("provisioning rollback: database left for the reaper", "tenant_id", t.ID, "database", t.DatabaseName, "error", err)
			return
		}
	}
	if err := deletePending(ctx, p.control, t.ID); err != nil {
		p.logger.Error("provisioning rollback: pending tenant row left for the reaper", "tenant_id", t.ID, "error", err)
	}
}

// Reap removes tenants whose provisioning started before olderThan ago and
// never finished, dropping their databases first. It returns how many it
// removed.
func (p *Provisioner) Reap(ctx context.Context, olderThan time.Duration) (int, error) {
	pending, err := listPendingBefore(ctx, p.control, sqldb.Now().Add(-olderThan))
	if err != nil {
		return 0, fmt.Errorf("reap tenants: %w", err)
	}
	removed := 0
	for _, t := range pending {
		if err := p.dropDatabase(ctx, tenantdb.RefOf(t)); err != nil {
			p.logger.Error("reaping unfinished tenant: dropping database", "tenant_id", t.ID, "database", t.DatabaseName, "error", err)
			continue
		}
		if err := deletePending(ctx, p.control, t.ID); err != nil {
			p.logger.Error("reaping unfinished tenant: deleting row", "tenant_id", t.ID, "error", err)
			continue
		}
		p.logger.Info("reaped unfinished tenant", "tenant_id", t.ID, "database", t.DatabaseName)
		removed++
	}
	return removed, nil
}

func (p *Provisioner) dropDatabase(ctx context.Context, ref tenantdb.Ref) error {
	if err := p.tenants.Forget(ctx, ref); err != nil {
		return err
	}
	return p.tenants.Engine().Drop(ctx, ref)
}
