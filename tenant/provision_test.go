package tenant_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
)

var errInjected = errors.New("injected failure")

// faultyDB fails every statement containing one of the given fragments,
// inside transactions too.
type faultyDB struct {
	sqldb.DB
	mu        sync.Mutex
	fragments []string
}

func (f *faultyDB) failOn(fragments ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fragments = fragments
}

func (f *faultyDB) fails(query string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, frag := range f.fragments {
		if strings.Contains(query, frag) {
			return true
		}
	}
	return false
}

func (f *faultyDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if f.fails(query) {
		return 0, errInjected
	}
	return f.DB.Exec(ctx, query, args...)
}

func (f *faultyDB) InTx(ctx context.Context, fn func(sqldb.Tx) error) error {
	return f.DB.InTx(ctx, func(tx sqldb.Tx) error { return fn(&faultyTx{Tx: tx, f: f}) })
}

type faultyTx struct {
	sqldb.Tx
	f *faultyDB
}

func (t *faultyTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if t.f.fails(query) {
		return 0, errInjected
	}
	return t.Tx.Exec(ctx, query, args...)
}

// faultyEngine records the databases it is asked to create and fails the
// steps it is told to.
type faultyEngine struct {
	tenantdb.Engine
	mu            sync.Mutex
	created       []string
	failCreate    bool // before creating
	failAfter     bool // after creating, as a lost connection would
	failDrop      bool
	brokenSchema  bool
	migrationsFor fs.FS
}

func (e *faultyEngine) Create(ctx context.Context, ref tenantdb.Ref) error {
	e.mu.Lock()
	e.created = append(e.created, ref.Name)
	e.mu.Unlock()
	if e.failCreate {
		return errInjected
	}
	if err := e.Engine.Create(ctx, ref); err != nil {
		return err
	}
	if e.failAfter {
		return errInjected
	}
	return nil
}

func (e *faultyEngine) Drop(ctx context.Context, ref tenantdb.Ref) error {
	if e.failDrop {
		return errInjected
	}
	return e.Engine.Drop(ctx, ref)
}

func (e *faultyEngine) Migrations() fs.FS {
	if !e.brokenSchema {
		return e.Engine.Migrations()
	}
	// The real schema, then a migration that fails half way.
	m := fstest.MapFS{}
	_ = fs.WalkDir(e.Engine.Migrations(), ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(e.Engine.Migrations(), path)
			m[path] = &fstest.MapFile{Data: b}
		}
		return nil
	})
	m["99999_broken.sql"] = &fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE broken (id INTEGER);\nSELECT * FROM no_such_table;\n")}
	return m
}

func (e *faultyEngine) lastCreated() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.created) == 0 {
		return ""
	}
	return e.created[len(e.created)-1]
}

type provisionBundle struct {
	control     *faultyDB
	engine      *faultyEngine
	provisioner *tenant.Provisioner
	real        tenantdb.Engine
	manager     *tenantdb.Manager
}

func setup(t *testing.T, shape config.Shape) *provisionBundle {
	t.Helper()
	engines := apptest.Engines(t, apptest.Config(t, shape))
	b := &provisionBundle{
		control: &faultyDB{DB: engines.Control},
		engine:  &faultyEngine{Engine: engines.Tenants},
		real:    engines.Tenants,
	}
	var err error
	b.manager, err = tenantdb.NewManager(b.engine, tenantdb.Config{MaxConns: 4, ConnsPerDB: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.manager.Close() })
	b.provisioner = tenant.NewProvisioner(b.control, b.manager, nil, slog.New(slog.DiscardHandler))
	return b
}

// assertNothingLeft checks that no tenant row and no database remain.
func (b *provisionBundle) assertNothingLeft(t *testing.T) {
	t.Helper()
	var rows int
	if err := b.control.DB.QueryRow(context.Background(), "SELECT count(*) FROM tenants").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("%d tenant rows left behind", rows)
	}
	if name := b.engine.lastCreated(); name != "" {
		exists, err := b.real.Exists(context.Background(), tenantdb.Ref{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s left behind", name)
		}
	}
}

func TestProvisionCompensatesEveryStep(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		activateFails := func(context.Context, sqldb.Tx, *tenantry.Tenant) error { return errInjected }
		tests := []struct {
			name     string
			inject   func(b *provisionBundle)
			activate tenant.ActivateFunc
		}{
			{"recording the tenant", func(b *provisionBundle) { b.control.failOn("INSERT INTO tenants") }, nil},
			{"creating the database", func(b *provisionBundle) { b.engine.failCreate = true }, nil},
			{"creating the database, reported after it was made", func(b *provisionBundle) { b.engine.failAfter = true }, nil},
			{"migrating the database", func(b *provisionBundle) { b.engine.brokenSchema = true }, nil},
			{"activating the tenant", func(b *provisionBundle) { b.control.failOn("SET provisioned_at") }, nil},
			{"work joined to the activation", func(b *provisionBundle) {}, activateFails},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, shape)
				tt.inject(b)
				_, err := b.provisioner.Provision(context.Background(), "Acme", "", tt.activate)
				if !errors.Is(err, errInjected) && !strings.Contains(err.Error(), "no_such_table") {
					t.Fatalf("Provision error = %v, want the injected failure", err)
				}
				b.assertNothingLeft(t)
			})
		}
	})
}

func TestReapRemovesAbandonedProvisioning(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		// Activation fails and so does every compensation, as if the
		// process had died right after creating the database.
		b.control.failOn("SET provisioned_at", "DELETE FROM tenants")
		b.engine.failDrop = true
		if _, err := b.provisioner.Provision(context.Background(), "Acme", "", nil); err == nil {
			t.Fatal("Provision succeeded")
		}
		name := b.engine.lastCreated()
		if exists, _ := b.real.Exists(context.Background(), tenantdb.Ref{Name: name}); !exists {
			t.Fatal("the scenario did not leave a database behind")
		}
		provisioned, err := tenant.ListProvisioned(context.Background(), b.control)
		if err != nil || len(provisioned) != 0 {
			t.Fatalf("a half-provisioned tenant is visible: %v %v", provisioned, err)
		}

		b.control.failOn()
		b.engine.failDrop = false
		n, err := b.provisioner.Reap(context.Background(), 0)
		if err != nil || n != 1 {
			t.Fatalf("Reap = %d, %v; want 1", n, err)
		}
		b.assertNothingLeft(t)
	})
}

func TestProvision(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		ctx := context.Background()
		var activatedWith string
		tn, err := b.provisioner.Provision(ctx, "Société Générale", "", func(ctx context.Context, tx sqldb.Tx, tn *tenantry.Tenant) error {
			activatedWith = tn.ID
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if activatedWith != tn.ID || !strings.HasPrefix(tn.DatabaseName, "tenant_societe_generale_") {
			t.Fatalf("tenant = %+v", tn)
		}
		got, err := tenant.FindProvisioned(ctx, b.control, tn.ID)
		if err != nil || got.DatabaseName != tn.DatabaseName || !got.IsActive {
			t.Fatalf("FindProvisioned = %+v, %v", got, err)
		}
		lease, err := b.manager.Acquire(ctx, tenantdb.Ref{Name: tn.DatabaseName})
		if err != nil {
			t.Fatal(err)
		}
		defer lease.Release()
		mig, err := tenantdb.Migrator(b.real, lease.DB())
		if err != nil {
			t.Fatal(err)
		}
		pending, err := mig.Pending(ctx)
		if err != nil || len(pending) != 1 || len(pending[0].Migrations) != 0 {
			t.Fatalf("tenant schema: %v pending, %v", pending, err)
		}
		applied, err := mig.History(ctx)
		if err != nil || len(applied) != 1 || len(applied[0].Migrations) == 0 {
			t.Fatalf("tenant schema: %v applied, %v", applied, err)
		}
	})
}
