package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

// Lifecycle ends tenants. A deleted tenant (Service.Delete) keeps all its
// data for the retention period, during which Restore brings it back as it
// was. Once the period is over, or on an operator's demand, Purge removes
// it for good: its database, its blobs, its members, its pending events and
// its audit chain, leaving one tombstone entry in the platform's audit
// chain that says what was removed.
//
// A purge goes in steps, each recorded in tenant_purges as it completes and
// each safe to run again, so that a purge stopped at any point (a crash, a
// server that did not answer) is finished by the next attempt, which the
// periodic purge makes. A tenant whose purge has begun cannot be restored,
// and a tenant with a move under way is not purged until the move ends.
type Lifecycle struct {
	control   sqldb.DB
	dbs       *tenantdb.Manager
	blobs     blob.Store
	audit     *audit.Log
	streams   *outbox.Streams
	retention time.Duration
	keys      KeyDestroyer
	logger    *slog.Logger

	// afterStep, when set, runs after each purge step with the step just
	// completed; an error it returns stops the purge there, as a crash
	// would. Tests use it.
	afterStep func(step int) error
}

// LifecycleConfig tunes a Lifecycle.
type LifecycleConfig struct {
	// Retention is how long a deleted tenant can be restored before it is
	// purged.
	Retention time.Duration
	// Keys destroys a purged tenant's encryption keys; nil where there is
	// no key service, and so no key.
	Keys   KeyDestroyer
	Logger *slog.Logger
}

// KeyDestroyer destroys the keys of a scope for good: the keyring.
type KeyDestroyer interface {
	Destroy(ctx context.Context, scope string) error
}

// NewLifecycle returns a Lifecycle over the control database, the tenant
// databases, the blob store and the audit trail.
func NewLifecycle(control sqldb.DB, dbs *tenantdb.Manager, blobs blob.Store, log *audit.Log, streams *outbox.Streams, cfg LifecycleConfig) *Lifecycle {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Lifecycle{control: control, dbs: dbs, blobs: blobs, audit: log, streams: streams, retention: cfg.Retention, keys: cfg.Keys, logger: cfg.Logger}
}

// Retention is how long a deleted tenant can be restored.
func (l *Lifecycle) Retention() time.Duration { return l.retention }

// State is where a tenant stands in its lifecycle.
type State string

// The states of a tenant.
const (
	StateActive      State = "active"
	StateDeactivated State = "deactivated"
	StateDeleted     State = "deleted"
	StatePurging     State = "purging"
	StatePurged      State = "purged"
)

// Listed is a tenant as the lifecycle sees it.
type Listed struct {
	ID, Name, Server string
	State            State
	// DeletedAt is when the tenant was deleted, zero if it was not.
	DeletedAt time.Time
	// PurgeDue is when the retention period of a deleted tenant ends.
	PurgeDue time.Time
	// PurgedAt is when a purged tenant's purge finished.
	PurgedAt time.Time
}

// List returns every tenant not purged, oldest first; with deletedOnly,
// the deleted ones instead, purged ones included, most recently deleted
// first.
func (l *Lifecycle) List(ctx context.Context, deletedOnly bool) ([]Listed, error) {
	where, order := "", "t.created_at, t.id"
	if deletedOnly {
		where, order = " AND t.deleted_at IS NOT NULL", "t.deleted_at DESC, t.id"
	}
	rows, err := l.control.Query(ctx, `
		SELECT t.id, t.name, COALESCE(t.server, ''), t.is_active, t.deleted_at, p.tenant_id IS NOT NULL
		FROM tenants t LEFT JOIN tenant_purges p ON p.tenant_id = t.id
		WHERE t.provisioned_at IS NOT NULL`+where+`
		ORDER BY `+order)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	out := []Listed{}
	for rows.Next() {
		var t Listed
		var active, purging bool
		if err := rows.Scan(&t.ID, &t.Name, &t.Server, &active, sqldb.ScanNullTime(&t.DeletedAt), &purging); err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		switch {
		case purging:
			t.State = StatePurging
		case !t.DeletedAt.IsZero():
			t.State = StateDeleted
		case active:
			t.State = StateActive
		default:
			t.State = StateDeactivated
		}
		if !t.DeletedAt.IsZero() {
			t.PurgeDue = t.DeletedAt.Add(l.retention)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	if !deletedOnly {
		return out, nil
	}
	purged, err := l.listPurged(ctx)
	return append(out, purged...), err
}

func (l *Lifecycle) listPurged(ctx context.Context) ([]Listed, error) {
	rows, err := l.control.Query(ctx, `
		SELECT tenant_id, tenant_name, COALESCE(server, ''), deleted_at, finished_at FROM tenant_purges
		WHERE finished_at IS NOT NULL
		ORDER BY deleted_at DESC, tenant_id`)
	if err != nil {
		return nil, fmt.Errorf("list purged tenants: %w", err)
	}
	defer rows.Close()
	var out []Listed
	for rows.Next() {
		t := Listed{State: StatePurged}
		if err := rows.Scan(&t.ID, &t.Name, &t.Server, sqldb.ScanTime(&t.DeletedAt), sqldb.ScanNullTime(&t.PurgedAt)); err != nil {
			return nil, fmt.Errorf("list purged tenants: %w", err)
		}
		t.PurgeDue = t.DeletedAt.Add(l.retention)
		out = append(out, t)
	}
	return out, rows.Err()
}

// lockAny takes a provisioned tenant's row lock for the rest of the
// transaction, whatever its state: restores, purges and moves take it
// first, so that they see each other's committed decisions. It reports
// whether the tenant's row exists.
func lockAny(ctx context.Context, tx sqldb.Tx, id string) (bool, error) {
	n, err := tx.Exec(ctx, `UPDATE tenants SET updated_at = updated_at WHERE id = $1 AND provisioned_at IS NOT NULL`, id)
	return n == 1, err
}

// lifecycleRow is what restores and purges read of a tenant's row.
type lifecycleRow struct {
	tenantry.Tenant
	DeletedAt time.Time
}

func findLifecycleRow(ctx context.Context, q sqldb.Querier, id string) (*lifecycleRow, error) {
	var r lifecycleRow
	err := q.QueryRow(ctx, `SELECT `+tenantColumns+`, deleted_at FROM tenants WHERE id = $1`, id).
		Scan(&r.ID, &r.Name, &r.DatabaseName, &r.Server, &r.IsActive, &r.CreatedAt, &r.UpdatedAt, &r.CreatedBy,
			sqldb.ScanNullTime(&r.DeletedAt))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Restore brings back a deleted tenant within its retention period, as it
// was: its members, documents and files were never touched. A tenant whose
// retention period is over, or whose purge has begun, is not restored.
func (l *Lifecycle) Restore(ctx context.Context, id string) (*tenantry.Tenant, error) {
	var t *tenantry.Tenant
	err := l.control.InTx(ctx, func(tx sqldb.Tx) error {
		exists, err := lockAny(ctx, tx, id)
		if err != nil {
			return err
		}
		if p, err := findPurge(ctx, tx, id); err == nil {
			if p.Step >= purgeDone {
				return tenantry.Errorf(tenantry.EConflict, "Tenant %s was purged at %s: it cannot be restored", id, p.FinishedAt.Format(time.RFC3339))
			}
			return tenantry.Errorf(tenantry.EConflict, "Tenant %s is being purged: it cannot be restored", id)
		} else if !errors.Is(err, sqldb.ErrNoRows) {
			return err
		}
		if !exists {
			return errTenantNotFound
		}
		r, err := findLifecycleRow(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.DeletedAt.IsZero() {
			if r.IsActive {
				return tenantry.Errorf(tenantry.EConflict, "Tenant %s is not deleted", id)
			}
			return tenantry.Errorf(tenantry.EConflict, "Tenant %s is deactivated, not deleted: only a deleted tenant is restored", id)
		}
		now := sqldb.Now()
		if due := r.DeletedAt.Add(l.retention); !now.Before(due) {
			return tenantry.Errorf(tenantry.EConflict, "Tenant %s was deleted at %s and its retention period ended at %s: it cannot be restored, it is due to be purged",
				id, r.DeletedAt.Format(time.RFC3339), due.Format(time.RFC3339))
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants SET is_active = $2, deleted_at = NULL, updated_at = $3 WHERE id = $1`, id, true, now); err != nil {
			return err
		}
		r.IsActive, r.UpdatedAt = true, now
		t = &r.Tenant
		return l.streams.EmitPlatform(ctx, tx, tenantry.EventTenantRestored, id, "", map[string]any{
			"tenant_id": id, "database_name": r.DatabaseName, "deleted_at": r.DeletedAt,
		})
	})
	if err != nil {
		return nil, err
	}
	l.streams.Committed()
	return t, nil
}

// Purge steps, recorded in tenant_purges.step as each completes.
const (
	// purgeStarted: the purge is recorded; the tenant can no longer be
	// restored or moved.
	purgeStarted = iota
	// purgeInventoried: what is about to be removed is counted.
	purgeInventoried
	// purgeDatabaseDropped: the tenant's database is gone, its outbox
	// with it.
	purgeDatabaseDropped
	// purgeBlobsDeleted: every blob under the tenant's prefix is gone.
	purgeBlobsDeleted
	// purgeKeysDestroyed: the tenant's keys are destroyed, so that any
	// copy of what they encrypted that escaped the earlier steps (a
	// backup, an object version, a stray blob) is unreadable.
	purgeKeysDestroyed
	// purgeDone: members, control events, the audit chain and the
	// tenant's row are gone and the tombstone written, in one
	// transaction.
	purgeDone
)

// Removed counts what a purge removed.
type Removed struct {
	Documents     int64  `json:"documents"`
	Files         int64  `json:"files"`
	FileBytes     int64  `json:"file_bytes"`
	Blobs         int64  `json:"blobs"`
	BlobBytes     int64  `json:"blob_bytes"`
	Memberships   int64  `json:"memberships"`
	PendingEvents int64  `json:"pending_events"`
	Events        int64  `json:"events"`
	AuditEntries  int64  `json:"audit_entries"`
	AuditHeadSeq  int64  `json:"audit_head_seq"`
	AuditHeadHash string `json:"audit_head_hash"`
	// KeysDestroyed says the tenant's encryption keys were destroyed.
	KeysDestroyed bool `json:"keys_destroyed"`
}

// Purged is the record of a tenant's purge.
type Purged struct {
	TenantID, Name, DatabaseName, Server string
	DeletedAt                            time.Time
	// Reason is why it was purged: "retention" or "command".
	Reason     string
	Step       int
	Removed    Removed
	StartedAt  time.Time
	FinishedAt time.Time
	// Already is set when the purge had finished before this call.
	Already bool
}

// TombstoneAction is the action of the platform audit entry a purge leaves.
const TombstoneAction = "tenant.purged"

// Reasons for a purge.
const (
	PurgeRetention = "retention"
	PurgeCommand   = "command"
)

func findPurge(ctx context.Context, q sqldb.Querier, id string) (*Purged, error) {
	var p Purged
	var removed string
	err := q.QueryRow(ctx, `
		SELECT tenant_id, tenant_name, database_name, COALESCE(server, ''), deleted_at, reason, step, removed, started_at, finished_at
		FROM tenant_purges WHERE tenant_id = $1`, id).
		Scan(&p.TenantID, &p.Name, &p.DatabaseName, &p.Server, sqldb.ScanTime(&p.DeletedAt), &p.Reason, &p.Step, &removed,
			sqldb.ScanTime(&p.StartedAt), sqldb.ScanNullTime(&p.FinishedAt))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(removed), &p.Removed); err != nil {
		return nil, fmt.Errorf("purge of tenant %s: stored counts: %w", id, err)
	}
	return &p, nil
}

func (p *Purged) ref() tenantdb.Ref { return tenantdb.Ref{Server: p.Server, Name: p.DatabaseName} }

// errOvertaken is returned by a purge step that another purge of the same
// tenant (the periodic pass, a command) completed first.
var errOvertaken = errors.New("purge step completed by another purge")

// advance records that p's purge completed step, with its counts so far.
func advance(ctx context.Context, q sqldb.Querier, p *Purged, step int) error {
	removed, _ := json.Marshal(p.Removed)
	n, err := q.Exec(ctx, `UPDATE tenant_purges SET step = $2, removed = $3 WHERE tenant_id = $1 AND step = $4`,
		p.TenantID, step, string(removed), step-1)
	if err != nil {
		return err
	} else if n != 1 {
		return errOvertaken
	}
	p.Step = step
	return nil
}

// Purge purges a deleted tenant now, whatever is left of its retention
// period, or finishes a purge that stopped. A tenant that is not deleted is
// refused, and so is one with a move under way. Purging a tenant already
// purged changes nothing and returns the record of that purge, with
// Already set.
func (l *Lifecycle) Purge(ctx context.Context, id string) (*Purged, error) {
	return l.purge(ctx, id, PurgeCommand, time.Time{})
}

// PurgeDue purges the tenants deleted more than the retention period ago,
// and finishes the purges that stopped. A tenant that fails, or has a move
// under way, is logged and left for the next run. It returns how many
// tenants it purged.
func (l *Lifecycle) PurgeDue(ctx context.Context) (int, error) {
	cutoff := sqldb.Now().Add(-l.retention)
	rows, err := l.control.Query(ctx, `
		SELECT t.id FROM tenants t
		WHERE t.deleted_at IS NOT NULL AND t.deleted_at <= $1
		UNION
		SELECT tenant_id FROM tenant_purges WHERE finished_at IS NULL`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("list tenants due to be purged: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("list tenants due to be purged: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list tenants due to be purged: %w", err)
	}
	purged := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			return purged, ctx.Err()
		}
		p, err := l.purge(ctx, id, PurgeRetention, cutoff)
		var refused *tenantry.Error
		switch {
		case errors.As(err, &refused) && refused.Code == tenantry.EConflict:
			l.logger.InfoContext(ctx, "tenant not purged yet", "tenant_id", id, "reason", refused.Message)
		case err != nil:
			l.logger.ErrorContext(ctx, "purging a tenant: left for the next run", "tenant_id", id, "error", err)
		case !p.Already:
			purged++
		}
	}
	return purged, nil
}

// purge starts or resumes the purge of id. deletedBefore, when not zero,
// purges only a tenant deleted at or before it (a purge already begun is
// finished regardless).
func (l *Lifecycle) purge(ctx context.Context, id, reason string, deletedBefore time.Time) (*Purged, error) {
	p, started, err := l.start(ctx, id, reason, deletedBefore)
	if err != nil {
		return nil, err
	}
	if started && l.afterStep != nil {
		if err := l.afterStep(purgeStarted); err != nil {
			return nil, err
		}
	}
	if p.Step >= purgeDone {
		p.Already = true
		return p, nil
	}
	steps := []func(context.Context, *Purged) error{
		purgeStarted:         l.inventory,
		purgeInventoried:     l.dropDatabase,
		purgeDatabaseDropped: l.deleteBlobs,
		purgeBlobsDeleted:    l.destroyKeys,
		purgeKeysDestroyed:   l.finish,
	}
	for p.Step < purgeDone {
		err := steps[p.Step](ctx, p)
		if errors.Is(err, errOvertaken) {
			// Every step is safe to repeat, so two purges of one tenant
			// at once only cost work; this one goes on from where the
			// other has got to, with the counts it recorded.
			if p, err = findPurge(ctx, l.control, id); err != nil {
				return nil, fmt.Errorf("purge tenant %s: %w", id, err)
			}
			continue
		} else if err != nil {
			return nil, fmt.Errorf("purge tenant %s (step %d): %w", id, p.Step+1, err)
		}
		if l.afterStep != nil {
			if err := l.afterStep(p.Step); err != nil {
				return nil, err
			}
		}
	}
	l.logger.InfoContext(ctx, "purged tenant", "tenant_id", id, "reason", p.Reason, "documents", p.Removed.Documents,
		"blobs", p.Removed.Blobs, "memberships", p.Removed.Memberships, "audit_entries", p.Removed.AuditEntries)
	return p, nil
}

// start records the purge of a deleted tenant, and reports that it did, or
// returns the purge recorded before.
func (l *Lifecycle) start(ctx context.Context, id, reason string, deletedBefore time.Time) (*Purged, bool, error) {
	var p *Purged
	started := false
	err := l.control.InTx(ctx, func(tx sqldb.Tx) error {
		exists, err := lockAny(ctx, tx, id)
		if err != nil {
			return err
		}
		if p, err = findPurge(ctx, tx, id); err == nil || !errors.Is(err, sqldb.ErrNoRows) {
			return err
		}
		if !exists {
			return errTenantNotFound
		}
		r, err := findLifecycleRow(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.DeletedAt.IsZero() {
			return tenantry.Errorf(tenantry.EConflict, "Tenant %s is not deleted: only a deleted tenant is purged", id)
		}
		if !deletedBefore.IsZero() && r.DeletedAt.After(deletedBefore) {
			return tenantry.Errorf(tenantry.EConflict, "Tenant %s is within its retention period", id)
		}
		var moving int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM tenant_moves WHERE tenant_id = $1 AND state IN ('copying', 'switching')`, id).
			Scan(&moving); err != nil {
			return err
		}
		if moving > 0 {
			return tenantry.Errorf(tenantry.EConflict, "A move of tenant %s is under way: it is purged once the move has ended", id)
		}
		now := sqldb.Now()
		p = &Purged{TenantID: id, Name: r.Name, DatabaseName: r.DatabaseName, Server: r.Server, DeletedAt: r.DeletedAt,
			Reason: reason, Step: purgeStarted, StartedAt: now}
		_, err = tx.Exec(ctx, `
			INSERT INTO tenant_purges (tenant_id, tenant_name, database_name, server, deleted_at, reason, step, removed, started_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, '{}', $8)`,
			id, r.Name, r.DatabaseName, nullable(r.Server), r.DeletedAt, reason, purgeStarted, now)
		started = err == nil
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return p, started, nil
}

// inventory counts what the tenant's database and blob prefix hold, before
// anything is removed.
func (l *Lifecycle) inventory(ctx context.Context, p *Purged) error {
	ok, err := l.dbs.Engine().Exists(ctx, p.ref())
	if err != nil {
		return err
	}
	p.Removed = Removed{}
	if ok {
		lease, err := l.dbs.AcquireTransient(ctx, p.ref())
		if err != nil {
			return err
		}
		err = func() error {
			defer lease.Release()
			rows, err := lease.DB().Query(ctx, `SELECT name, value FROM counters`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var name string
				var value int64
				if err := rows.Scan(&name, &value); err != nil {
					return err
				}
				switch name {
				case "documents":
					p.Removed.Documents = value
				case "files":
					p.Removed.Files = value
				case "physical_bytes":
					p.Removed.FileBytes = value
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
			return lease.DB().QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&p.Removed.Events)
		}()
		if err != nil {
			return err
		}
	}
	err = l.blobs.List(ctx, blob.TenantPrefix(p.DatabaseName), func(info blob.Info) error {
		p.Removed.Blobs++
		p.Removed.BlobBytes += info.Size
		return nil
	})
	if err != nil {
		return err
	}
	return advance(ctx, l.control, p, purgeInventoried)
}

// dropDatabase drops the tenant's database, on its server, with the
// tenant's own events in its outbox. Dropping a database already gone is
// no error.
func (l *Lifecycle) dropDatabase(ctx context.Context, p *Purged) error {
	if err := l.dbs.Forget(ctx, p.ref()); err != nil {
		return err
	}
	if err := l.dbs.Engine().Drop(ctx, p.ref()); err != nil {
		return err
	}
	return advance(ctx, l.control, p, purgeDatabaseDropped)
}

// deleteBlobs deletes every blob under the tenant's prefix. Content is
// deduplicated within a tenant only, under its own prefix, so nothing there
// is another tenant's.
func (l *Lifecycle) deleteBlobs(ctx context.Context, p *Purged) error {
	var keys []string
	if err := l.blobs.List(ctx, blob.TenantPrefix(p.DatabaseName), func(info blob.Info) error {
		keys = append(keys, info.Key)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := l.blobs.Delete(ctx, k); err != nil {
			return err
		}
	}
	return advance(ctx, l.control, p, purgeBlobsDeleted)
}

// destroyKeys destroys the tenant's keys, its data now being gone.
// Destroying keys already destroyed is not an error.
func (l *Lifecycle) destroyKeys(ctx context.Context, p *Purged) error {
	if l.keys != nil {
		if err := l.keys.Destroy(ctx, p.TenantID); err != nil {
			return err
		}
		p.Removed.KeysDestroyed = true
	}
	return advance(ctx, l.control, p, purgeKeysDestroyed)
}

// finish removes, in one transaction, what the control database holds of
// the tenant (members, events, its audit chain, its row) and appends the
// tombstone to the platform chain, so that the tombstone exists exactly
// when the rest is gone.
func (l *Lifecycle) finish(ctx context.Context, p *Purged) error {
	now := sqldb.Now()
	q := *p
	err := l.control.InTx(ctx, func(tx sqldb.Tx) error {
		// The purge's row lock: a second purge finishing the same tenant
		// waits here, then finds the step taken.
		if n, err := tx.Exec(ctx, `UPDATE tenant_purges SET step = step WHERE tenant_id = $1 AND step = $2`, q.TenantID, purgeKeysDestroyed); err != nil {
			return err
		} else if n != 1 {
			return errOvertaken
		}
		var err error
		if q.Removed.Memberships, err = tx.Exec(ctx, `DELETE FROM memberships WHERE tenant_id = $1`, q.TenantID); err != nil {
			return err
		}
		if q.Removed.PendingEvents, err = tx.Exec(ctx, `DELETE FROM outbox WHERE tenant_id = $1 AND published_at IS NULL`, q.TenantID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE tenant_id = $1`, q.TenantID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM outbox_pending WHERE stream = $1`, q.TenantID); err != nil {
			return err
		}
		// Invitations and the record of the mails sent for them name
		// addresses of people the tenant dealt with.
		if _, err := tx.Exec(ctx, `DELETE FROM invitations WHERE tenant_id = $1`, q.TenantID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mail_deliveries WHERE tenant_id = $1`, q.TenantID); err != nil {
			return err
		}
		chain, err := audit.PurgeChain(ctx, tx, q.TenantID)
		if err != nil {
			return err
		}
		q.Removed.AuditEntries, q.Removed.AuditHeadSeq, q.Removed.AuditHeadHash = chain.Entries, chain.HeadSeq, chain.HeadHash
		if _, err := tx.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, q.TenantID); err != nil {
			return err
		}
		details, err := json.Marshal(map[string]any{
			"tenant_name": q.Name, "database_name": q.DatabaseName, "server": q.Server, "reason": q.Reason,
			"deleted_at": q.DeletedAt, "removed": q.Removed,
		})
		if err != nil {
			return err
		}
		if err := l.audit.AppendTx(ctx, tx, &audit.Entry{
			Chain: audit.PlatformChain, Action: TombstoneAction, TargetType: "tenant", TargetID: q.TenantID,
			Outcome: audit.OutcomeSuccess, Details: details, OccurredAt: now,
		}); err != nil {
			return err
		}
		removed, _ := json.Marshal(q.Removed)
		_, err = tx.Exec(ctx, `UPDATE tenant_purges SET step = $2, removed = $3, finished_at = $4 WHERE tenant_id = $1`,
			q.TenantID, purgeDone, string(removed), now)
		return err
	})
	if err != nil {
		return err
	}
	q.Step, q.FinishedAt = purgeDone, now
	*p = q
	return nil
}
