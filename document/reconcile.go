package document

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
)

// Reconciler brings each tenant's blobs and file rows back in agreement:
// files no document has referenced for a grace period are deleted, blobs no
// row names (files gone, uploads that crashed between writing the blob and
// recording it) are deleted once older than the grace period, and rows
// whose blob is missing are reported. The grace period is what makes this
// safe beside live uploads: an upload renews its blob's modification time
// when it promotes it, and records its row well within the grace period.
type Reconciler struct {
	control sqldb.DB
	dbs     *tenantdb.Manager
	blobs   blob.Store
	streams *outbox.Streams
	grace   time.Duration
	logger  *slog.Logger
}

// NewReconciler returns a Reconciler for every tenant of control.
func NewReconciler(control sqldb.DB, dbs *tenantdb.Manager, blobs blob.Store, streams *outbox.Streams, grace time.Duration, logger *slog.Logger) *Reconciler {
	return &Reconciler{control: control, dbs: dbs, blobs: blobs, streams: streams, grace: grace, logger: logger}
}

// Report counts what a reconciliation did and found.
type Report struct {
	Tenants            int
	OrphanFilesDeleted int
	BlobsDeleted       int
	// ReservationsExpired counts the quota reservations of uploads that
	// died, given back.
	ReservationsExpired int
	// MissingBlobs lists the ids of files whose blob is missing.
	MissingBlobs []string
}

func (r *Report) add(o Report) {
	r.Tenants += o.Tenants
	r.OrphanFilesDeleted += o.OrphanFilesDeleted
	r.BlobsDeleted += o.BlobsDeleted
	r.ReservationsExpired += o.ReservationsExpired
	r.MissingBlobs = append(r.MissingBlobs, o.MissingBlobs...)
}

// Run reconciles every tenant. A tenant that fails is logged and skipped.
func (r *Reconciler) Run(ctx context.Context) (Report, error) {
	tenants, err := tenant.ListProvisioned(ctx, r.control)
	if err != nil {
		return Report{}, err
	}
	var total Report
	for _, t := range tenants {
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
		rep, err := r.Tenant(ctx, t)
		if tenantdb.IsUnavailable(err) {
			// Its outage is logged where it was detected; the next
			// run gets to it.
			continue
		} else if err != nil {
			r.logger.ErrorContext(ctx, "reconciling a tenant's storage", "tenant_id", t.ID, "error", err)
			continue
		}
		total.add(rep)
	}
	return total, nil
}

// Tenant reconciles one tenant.
func (r *Reconciler) Tenant(ctx context.Context, t *tenantry.Tenant) (Report, error) {
	rep := Report{Tenants: 1}
	lease, err := r.dbs.AcquireTransient(ctx, tenantdb.RefOf(t))
	if err != nil {
		return rep, err
	}
	defer lease.Release()
	db := lease.DB()
	started := time.Now()
	cutoff := started.Add(-r.grace)

	// An upload records its document, or gives back its reservation,
	// well within the grace period: one older belongs to an upload that
	// died, and its room goes back to the tenant.
	err = db.InTx(ctx, func(tx sqldb.Tx) error {
		bytes, documents, err := expireReservations(ctx, tx, cutoff)
		if err != nil || documents == 0 {
			return err
		}
		rep.ReservationsExpired = int(documents)
		return addCounters(ctx, tx, counterDelta{reservedBytes: -bytes, reservedDocuments: -documents})
	})
	if err != nil {
		return rep, err
	}

	orphans, err := orphanFilesBefore(ctx, db, cutoff)
	if err != nil {
		return rep, err
	}
	for _, f := range orphans {
		err := r.streams.TenantTx(ctx, t.ID, t.DatabaseName, db, func(tx sqldb.Tx) error {
			deleted, err := deleteOrphanFile(ctx, tx, f.ID)
			if err != nil || !deleted {
				return err
			}
			rep.OrphanFilesDeleted++
			if err := addCounters(ctx, tx, counterDelta{files: -1, physicalBytes: -f.Size}); err != nil {
				return err
			}
			return emitFileDeleted(ctx, tx, t.ID, "", &f, "unreferenced")
		})
		if err != nil {
			return rep, err
		}
	}

	// The rows are read before the blobs are listed: a row always comes
	// after its blob, so every row read here has its blob already written.
	rows, err := fileKeys(ctx, db)
	if err != nil {
		return rep, err
	}
	prefix := blobPrefix(t.DatabaseName)
	seen := make(map[string]bool, len(rows))
	var stale []string
	err = r.blobs.List(ctx, prefix, func(info blob.Info) error {
		seen[info.Key] = true
		_, named := rows[info.Key]
		if !named && info.WrittenBefore(cutoff) {
			stale = append(stale, info.Key)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	for _, key := range stale {
		var removed bool
		if strings.HasPrefix(key, prefix+blob.TempDir) {
			removed, err = true, r.blobs.Delete(ctx, key)
		} else {
			// Checked again: a row may have been recorded since the rows
			// were read.
			removed, err = removeBlobIfUnreferenced(ctx, db, r.blobs, key, cutoff)
		}
		if err != nil && !errors.Is(err, blob.ErrNotFound) {
			return rep, err
		}
		if removed {
			rep.BlobsDeleted++
		}
	}

	for key, f := range rows {
		if !seen[key] {
			// A file deleted during the listing lost its blob rightly.
			if still, err := fileExistsWithKey(ctx, db, key); err != nil {
				return rep, err
			} else if !still {
				continue
			}
			rep.MissingBlobs = append(rep.MissingBlobs, f.ID)
			r.logger.ErrorContext(ctx, "a file row has no blob", "tenant_id", t.ID, "file_id", f.ID, "key", key)
		}
	}
	return rep, nil
}
