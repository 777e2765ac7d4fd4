package document_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/document"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

type bundle struct {
	env      *apptest.Env
	admin    *apptest.User
	tenantID string
	database string
	prefix   string
}

func setup(t *testing.T, shape config.Shape) *bundle {
	t.Helper()
	cfg := apptest.Config(t, shape)
	cfg.BlobGrace = time.Second
	env := apptest.Start(t, cfg)
	admin := env.SignUp(t, "Admin")
	id := env.CreateTenant(t, admin, "Reconciled")
	var tn struct {
		DatabaseName string `json:"database_name"`
	}
	env.Get(t, "/api/tenants/"+id, admin.AccessToken).Expect(t, 200, "").Data(t, &tn)
	return &bundle{env: env, admin: admin, tenantID: id, database: tn.DatabaseName, prefix: "tenants/" + tn.DatabaseName + "/"}
}

func (b *bundle) keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	if err := b.env.App.Blobs.List(context.Background(), b.prefix, func(i blob.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// A process killed after promoting an upload's blob but before recording
// its row leaves a blob and no row; so does one killed while writing the
// temporary blob. The reconciler removes both once the grace period is
// over, and never touches blobs that rows name.
func TestReconcilerRemovesBlobsACrashLeftBehind(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		ctx := context.Background()
		kept := b.env.Upload(t, b.admin, b.tenantID, "kept.txt", []byte("kept"))

		lost := []byte("the row was never written")
		sum := sha256.Sum256(lost)
		sha := hex.EncodeToString(sum[:])
		orphanKey := b.prefix + "files/" + sha[:2] + "/" + sha[2:4] + "/" + sha
		tmp, _, err := b.env.App.Blobs.PutTemp(ctx, b.prefix, bytes.NewReader(lost))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.env.App.Blobs.Promote(ctx, tmp, orphanKey); err != nil {
			t.Fatal(err)
		}
		half, _, err := b.env.App.Blobs.PutTemp(ctx, b.prefix, bytes.NewReader([]byte("half written")))
		if err != nil {
			t.Fatal(err)
		}

		// Within the grace period nothing is removed: an upload may be
		// about to record its row. (The app's own periodic reconciliation
		// runs too, so the tests judge what is left, not who removed it.)
		rep, err := b.env.App.Reconciler.Run(ctx)
		if err != nil || rep.BlobsDeleted != 0 || len(b.keys(t)) != 3 {
			t.Fatalf("within grace: %+v, %v, blobs %v", rep, err, b.keys(t))
		}
		// Past the grace period, counted from the end of the second a
		// store with whole-second times (S3) may report.
		time.Sleep(time.Second + blob.ModTimeResolution + 100*time.Millisecond)
		rep, err = b.env.App.Reconciler.Run(ctx)
		if err != nil || len(rep.MissingBlobs) != 0 {
			t.Fatalf("after grace: %+v, %v", rep, err)
		}
		if keys := b.keys(t); !slices.Equal(keys, []string{kept.File.S3Path}) {
			t.Fatalf("blobs left: %v, want only %s (removed %s and %s)", keys, kept.File.S3Path, orphanKey, half)
		}
		b.env.Get(t, "/api/tenants/"+b.tenantID+"/documents/"+kept.ID+"/download", b.admin.AccessToken).Expect(t, 200, "")
	})
}

func TestReconcilerRemovesFilesNoDocumentReferences(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		ctx := context.Background()
		doc := b.env.Upload(t, b.admin, b.tenantID, "temporary.txt", []byte("soon gone"))
		b.env.Do(t, apptest.Request{Method: "DELETE", Path: "/api/tenants/" + b.tenantID + "/documents/" + doc.ID, Token: b.admin.AccessToken}).Expect(t, 200, "")

		time.Sleep(time.Second + blob.ModTimeResolution + 100*time.Millisecond)
		if _, err := b.env.App.Reconciler.Run(ctx); err != nil {
			t.Fatal(err)
		}
		b.env.Get(t, "/api/tenants/"+b.tenantID+"/files/"+doc.FileID, b.admin.AccessToken).Expect(t, 404, "NOT_FOUND")
		if keys := b.keys(t); len(keys) != 0 {
			t.Fatalf("blobs left: %v", keys)
		}
		var storage struct {
			FilesCount    int64 `json:"files_count"`
			PhysicalBytes int64 `json:"physical_bytes"`
		}
		b.env.Get(t, "/api/tenants/"+b.tenantID+"/storage", b.admin.AccessToken).Expect(t, 200, "").Data(t, &storage)
		if storage.FilesCount != 0 || storage.PhysicalBytes != 0 {
			t.Fatalf("storage after reconcile = %+v", storage)
		}
		// The same bytes uploaded again are stored again.
		again := b.env.Upload(t, b.admin, b.tenantID, "again.txt", []byte("soon gone"))
		b.env.Get(t, "/api/tenants/"+b.tenantID+"/documents/"+again.ID+"/download", b.admin.AccessToken).Expect(t, 200, "")
	})
}

func TestReconcilerReportsRowsWithoutBlobs(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		ctx := context.Background()
		doc := b.env.Upload(t, b.admin, b.tenantID, "lost.txt", []byte("storage lost this"))
		if err := b.env.App.Blobs.Delete(ctx, doc.File.S3Path); err != nil {
			t.Fatal(err)
		}
		rep, err := b.env.App.Reconciler.Run(ctx)
		if err != nil || !slices.Equal(rep.MissingBlobs, []string{doc.FileID}) {
			t.Fatalf("reconcile: %+v, %v", rep, err)
		}
		b.env.Get(t, "/api/tenants/"+b.tenantID+"/documents/"+doc.ID+"/download", b.admin.AccessToken).Expect(t, 404, "NOT_FOUND")
	})
}

// Ensure that a reconciliation closes again the tenant databases it had to
// open: a pass over every tenant, which runs at start-up and hourly, must
// not leave them all open, each holding its connections and page cache.
func TestReconcilerClosesTheDatabasesItOpened(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		ctx := context.Background()
		b.env.Upload(t, b.admin, b.tenantID, "kept.txt", []byte("kept"))
		// A manager of its own, which holds no database yet and which the
		// app's own background work does not touch.
		m, err := tenantdb.NewManager(b.env.App.Engines.Tenants, tenantdb.Config{MaxConns: 8, ConnsPerDB: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		rec := document.NewReconciler(b.env.App.Engines.Control, m, b.env.App.Blobs, b.env.App.Streams, time.Hour, slog.New(slog.DiscardHandler))
		rep, err := rec.Run(ctx)
		if err != nil || rep.Tenants != 1 || len(rep.MissingBlobs) != 0 {
			t.Fatalf("reconcile: %+v, %v", rep, err)
		}
		if s := m.Stats(); s.Open != 0 {
			t.Fatalf("%d tenant databases open after the reconciliation, want none", s.Open)
		}
	})
}

// Ensure the lookups the reconciler makes per blob, and the one that finds
// unreferenced files, are served by indexes: a scan of the files table per
// lookup, tens of milliseconds at 100,000 files, held the tenant database for
// minutes.
func TestReconcilerQueriesUseIndexes(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		ctx := context.Background()
		// Enough rows that the queries have something to choose from.
		for i := range 3 {
			b.env.Upload(t, b.admin, b.tenantID, "f.txt", []byte("content "+strconv.Itoa(i)))
		}
		lease, err := b.env.App.Tenants.Acquire(ctx, tenantdb.Ref{Name: b.database})
		if err != nil {
			t.Fatal(err)
		}
		defer lease.Release()
		for _, c := range []struct {
			name, query, index string
			arg                any
		}{
			{"file with key", document.FileWithKeyQuery, "files_storage_key", b.prefix + "files/00/00/00"},
			{"orphan files", document.OrphanFilesQuery(lease.DB().Dialect()), "files_orphaned", time.Now()},
		} {
			if plan := explain(t, lease.DB(), c.query, c.arg); !strings.Contains(plan, c.index) {
				t.Errorf("%s: plan does not use %s:\n%s", c.name, c.index, plan)
			}
		}
	})
}

// explain returns the plan the engine picks for query.
func explain(t *testing.T, db sqldb.DB, query string, args ...any) string {
	t.Helper()
	var plan []string
	err := db.InTx(context.Background(), func(tx sqldb.Tx) error {
		prefix := "EXPLAIN QUERY PLAN "
		if db.Dialect() == sqldb.Postgres {
			// On a table this small PostgreSQL rightly prefers reading it
			// whole; forbidding that shows whether an index can serve the
			// query, which is what matters once the table is large. For
			// the same reason, bitmap scans and sorts, cheap on a few rows,
			// are ruled out: what matters is whether an index yields the
			// rows in order.
			for _, set := range []string{"enable_seqscan", "enable_bitmapscan", "enable_sort"} {
				if _, err := tx.Exec(context.Background(), "SET LOCAL "+set+" = off"); err != nil {
					return err
				}
			}
			prefix = "EXPLAIN "
		}
		rows, err := tx.Query(context.Background(), prefix+query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			var err error
			if db.Dialect() == sqldb.Postgres {
				err = rows.Scan(&line)
			} else {
				var id, parent, unused int64
				err = rows.Scan(&id, &parent, &unused, &line)
			}
			if err != nil {
				return err
			}
			plan = append(plan, line)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	return strings.Join(plan, "\n")
}

// Ensure every page of a listing walked by cursor seeks through an index
// on its order, without sorting: a page 2,500 deep then reads what the
// first page reads.
func TestListingSeeksUseIndexes(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		ctx := context.Background()
		for i := range 3 {
			b.env.Upload(t, b.admin, b.tenantID, "f.txt", []byte("content "+strconv.Itoa(i)))
		}
		lease, err := b.env.App.Tenants.Acquire(ctx, tenantdb.Ref{Name: b.database})
		if err != nil {
			t.Fatal(err)
		}
		defer lease.Release()
		d := lease.DB().Dialect()
		id := "00000000-0000-4000-8000-000000000000"
		for _, c := range []struct {
			name, query, index string
			args               []any
		}{
			{"newest first", document.DocumentsQuery(d, "-created_at", false, true), "documents_created", []any{0, time.Now(), id}},
			{"oldest first", document.DocumentsQuery(d, "created_at", false, true), "documents_created", []any{0, time.Now(), id}},
			{"by name", document.DocumentsQuery(d, "filename", false, true), "documents_filename_id", []any{0, "f.txt", id}},
			{"by name, filtered", document.DocumentsQuery(d, "-filename", true, true), "documents_filename_id", []any{0, "%f%", "f.txt", id}},
			{"files", document.FilesQuery(d, true), "files_created", []any{0, time.Now(), id}},
		} {
			plan := explain(t, lease.DB(), c.query, c.args...)
			if !strings.Contains(plan, c.index) || strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "Sort") {
				t.Errorf("%s: plan does not seek through %s alone:\n%s", c.name, c.index, plan)
			}
		}
	})
}
