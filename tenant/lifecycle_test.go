package tenant_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/blob/blobtest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/sealedblob"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
)

// doomed is a tenant with members, documents (one content uploaded twice)
// and an audit trail, deleted through the API.
type doomed struct {
	id, database, server string
	admin, member        *apptest.User
	docs                 []*apptest.Document
	content              map[string][]byte // by document id
	chainLength          int64
	// A secret sealed with the tenant's key, and its wrapped data key,
	// kept aside.
	sealed, wrappedKey []byte
	// With blob encryption on, the stored (sealed) objects of its
	// documents, kept aside by key.
	sealedBlobs map[string][]byte
}

func createDoomed(t *testing.T, env *apptest.Env, name string) *doomed {
	t.Helper()
	d := &doomed{admin: env.SignUp(t, name+"Admin"), member: env.SignUp(t, name+"Member"), content: map[string][]byte{}}
	d.id = env.CreateTenant(t, d.admin, name)
	env.AddMember(t, d.admin, d.id, d.member, "user")
	for i, body := range [][]byte{[]byte("shared content"), []byte("shared content"), []byte(name + " own content")} {
		doc := env.Upload(t, d.admin, d.id, fmt.Sprintf("%s-%d.pdf", name, i), body)
		d.docs = append(d.docs, doc)
		d.content[doc.ID] = body
	}
	if err := env.App.Engines.Control.QueryRow(context.Background(),
		`SELECT database_name, COALESCE(server, '') FROM tenants WHERE id = $1`, d.id).Scan(&d.database, &d.server); err != nil {
		t.Fatal(err)
	}
	// A secret of the tenant's, sealed with its key, and the wrapped key
	// copied aside, as a backup would hold them.
	sealed, err := env.App.Keys.Encrypt(context.Background(), d.id, []byte(name+" secret"), keyring.AAD{"test"})
	if err != nil {
		t.Fatal(err)
	}
	d.sealed = sealed
	if err := env.App.Engines.Control.QueryRow(context.Background(),
		`SELECT wrapped FROM data_keys WHERE scope = $1`, d.id).Scan(&d.wrappedKey); err != nil {
		t.Fatal(err)
	}
	if env.App.Config.EncryptsBlobs() {
		d.keepSealedBlobs(t, env)
	}
	env.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + d.id, Token: d.admin.AccessToken}).Expect(t, http.StatusOK, "")
	v, err := env.App.Audit.Verify(context.Background(), d.id)
	if err != nil || !v.Intact || v.Entries == 0 {
		t.Fatalf("the tenant's audit chain before the purge: %+v, %v", v, err)
	}
	d.chainLength = v.Entries
	return d
}

// readable checks that every document of d downloads with its content.
func (d *doomed) readable(t *testing.T, env *apptest.Env, u *apptest.User) {
	t.Helper()
	for _, doc := range d.docs {
		res := env.Get(t, "/api/tenants/"+d.id+"/documents/"+doc.ID+"/download", u.AccessToken).Expect(t, http.StatusOK, "")
		if !bytes.Equal(res.Body, d.content[doc.ID]) {
			t.Fatalf("document %s reads %q, want %q", doc.ID, res.Body, d.content[doc.ID])
		}
	}
}

func count(t *testing.T, env *apptest.Env, query string, args ...any) int {
	t.Helper()
	var n int
	if err := env.App.Engines.Control.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// checkPurged checks the end state of a purge: no database, no blob, no
// membership, no pending event, no audit chain, no tenant row, exactly one
// tombstone saying what was removed, and a platform chain still intact.
func (d *doomed) checkPurged(t *testing.T, env *apptest.Env) {
	t.Helper()
	ctx := context.Background()
	if ok, err := env.App.Tenants.Engine().Exists(ctx, tenantdb.Ref{Server: d.server, Name: d.database}); err != nil || ok {
		t.Fatalf("the tenant's database still exists (%v)", err)
	}
	blobs := 0
	if err := env.App.Blobs.List(ctx, blob.TenantPrefix(d.database), func(blob.Info) error { blobs++; return nil }); err != nil || blobs != 0 {
		t.Fatalf("%d blobs left (%v)", blobs, err)
	}
	for query, want := range map[string]int{
		`SELECT count(*) FROM tenants WHERE id = $1`:                                          0,
		`SELECT count(*) FROM memberships WHERE tenant_id = $1`:                               0,
		`SELECT count(*) FROM outbox WHERE tenant_id = $1`:                                    0,
		`SELECT count(*) FROM outbox_pending WHERE stream = $1`:                               0,
		`SELECT count(*) FROM audit_log WHERE chain = $1`:                                     0,
		`SELECT count(*) FROM audit_chains WHERE chain = $1`:                                  0,
		`SELECT count(*) FROM tenant_purges WHERE tenant_id = $1 AND step = 5`:                1,
		`SELECT count(*) FROM data_keys WHERE scope = $1`:                                     0,
		`SELECT count(*) FROM local_wrapping_keys WHERE scope = $1`:                           0,
		`SELECT count(*) FROM tenant_purges WHERE tenant_id = $1 AND finished_at IS NOT NULL`: 1,
	} {
		if n := count(t, env, query, d.id); n != want {
			t.Errorf("%s: %d, want %d", query, n, want)
		}
	}
	entries, total, err := env.App.Audit.List(ctx, audit.PlatformChain, audit.Filter{Action: tenant.TombstoneAction, PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	var tombstones []audit.Entry
	for _, e := range entries {
		if e.TargetID == d.id {
			tombstones = append(tombstones, e)
		}
	}
	if len(tombstones) != 1 {
		t.Fatalf("%d tombstones for the tenant (of %d), want 1", len(tombstones), total)
	}
	var details struct {
		Database string         `json:"database_name"`
		Removed  tenant.Removed `json:"removed"`
	}
	if err := json.Unmarshal(tombstones[0].Details, &details); err != nil {
		t.Fatal(err)
	}
	r := details.Removed
	if details.Database != d.database || r.Documents != 3 || r.Files != 2 || r.Blobs != 2 || r.Memberships != 2 ||
		r.AuditHeadSeq != d.chainLength || r.AuditEntries != d.chainLength || len(r.AuditHeadHash) != 64 || !r.KeysDestroyed {
		t.Fatalf("the tombstone says %s", tombstones[0].Details)
	}
	if v, err := env.App.Audit.Verify(ctx, audit.PlatformChain); err != nil || !v.Intact {
		t.Fatalf("the platform chain after the purge: %+v, %v", v, err)
	}
	d.checkShredded(t, env)
}

// checkShredded puts the wrapped data key kept aside back where it was and
// checks that the secret sealed with it still cannot be read with anything
// tenantry holds: its wrapping key is gone.
func (d *doomed) checkShredded(t *testing.T, env *apptest.Env) {
	t.Helper()
	ctx := context.Background()
	if _, err := env.App.Engines.Control.Exec(ctx, `
		INSERT INTO data_keys (scope, version, wrapped, wrapper, created_at) VALUES ($1, 1, $2, $3, $4)
		ON CONFLICT (scope, version) DO NOTHING`,
		d.id, d.wrappedKey, env.App.Keys.Wrapper().Name(), sqldb.Now()); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = env.App.Engines.Control.Exec(ctx, `DELETE FROM data_keys WHERE scope = $1`, d.id) }()
	fresh := keyring.New(env.App.Engines.Control, env.App.Keys.Wrapper(), keyring.Options{})
	if got, err := fresh.Decrypt(ctx, d.id, d.sealed, keyring.AAD{"test"}); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("the purged tenant's secret, with its wrapped key restored from a copy: %q, %v", got, err)
	}
	d.checkShreddedBlobs(t, env, fresh)
}

// keepSealedBlobs copies the tenant's stored objects aside, as a backup or
// a forgotten bucket version would keep them, and checks they hold none of
// the content in clear.
func (d *doomed) keepSealedBlobs(t *testing.T, env *apptest.Env) {
	t.Helper()
	raw, err := app.OpenBlobs(context.Background(), env.App.Config)
	if err != nil {
		t.Fatal(err)
	}
	d.sealedBlobs = map[string][]byte{}
	for _, doc := range d.docs {
		stored := blobtest.Read(t, raw, doc.File.S3Path, 0, -1)
		if bytes.Contains(stored, d.content[doc.ID]) {
			t.Fatalf("the stored object of %s holds its content in clear", doc.ID)
		}
		d.sealedBlobs[doc.File.S3Path] = stored
	}
}

// checkShreddedBlobs puts the objects kept aside back where they were and
// checks that nothing tenantry holds opens them, the tenant's wrapped data
// key restored from its copy included.
func (d *doomed) checkShreddedBlobs(t *testing.T, env *apptest.Env, keys *keyring.Keyring) {
	t.Helper()
	raw, err := app.OpenBlobs(context.Background(), env.App.Config)
	if err != nil {
		t.Fatal(err)
	}
	prefix := blob.TenantPrefix(d.database)
	opened := sealedblob.New(raw, keys, func(context.Context, string) (string, error) { return d.id, nil })
	for key, stored := range d.sealedBlobs {
		blobtest.Store(t, raw, prefix, key, stored)
		rc, err := opened.Open(context.Background(), key, 0, -1)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("a copy of the purged tenant's object %s opened: %v", key, err)
		}
		if err := raw.Delete(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	}
}

func refused(t *testing.T, err error, code, says string) {
	t.Helper()
	var te *tenantry.Error
	if !errors.As(err, &te) || te.Code != code || !strings.Contains(te.Message, says) {
		t.Fatalf("got %v, want %s saying %q", err, code, says)
	}
}

// Ensure a deleted tenant answers 404 to everyone and comes back whole when
// restored within its retention period: members, documents, downloads; that
// a tenant only deactivated is not restored; and that once the retention
// period is over the tenant is refused, then purged by the periodic pass.
func TestDeleteThenRestore(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		// Content sealed at rest, so that the purge below also shows
		// copies of it unreadable once the tenant's keys are destroyed.
		cfg := apptest.Config(t, shape)
		cfg.BlobEncryption = "on"
		env := apptest.Start(t, cfg)
		ctx := context.Background()
		d := createDoomed(t, env, "Restored")
		for _, u := range []*apptest.User{d.admin, d.member} {
			env.Get(t, "/api/tenants/"+d.id, u.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
			env.Get(t, "/api/tenants/"+d.id+"/documents/"+d.docs[0].ID+"/download", u.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
		}
		listed, err := env.App.Lifecycle.List(ctx, true)
		if err != nil || len(listed) != 1 || listed[0].ID != d.id || listed[0].State != tenant.StateDeleted ||
			!listed[0].PurgeDue.Equal(listed[0].DeletedAt.Add(30*24*time.Hour)) {
			t.Fatalf("deleted tenants: %+v, %v", listed, err)
		}

		if _, err := env.App.Lifecycle.Restore(ctx, d.id); err != nil {
			t.Fatal(err)
		}
		for _, u := range []*apptest.User{d.admin, d.member} {
			env.Get(t, "/api/tenants/"+d.id, u.AccessToken).Expect(t, http.StatusOK, "")
			d.readable(t, env, u)
		}
		var detail struct {
			Members []json.RawMessage `json:"members"`
		}
		env.Get(t, "/api/tenants/"+d.id, d.admin.AccessToken).Data(t, &detail)
		if len(detail.Members) != 2 {
			t.Fatalf("%d members after the restore, want 2", len(detail.Members))
		}
		env.Upload(t, d.member, d.id, "after.pdf", []byte("written after the restore"))
		_, err = env.App.Lifecycle.Restore(ctx, d.id)
		refused(t, err, tenantry.EConflict, "is not deleted")
		_, err = env.App.Lifecycle.Purge(ctx, d.id)
		refused(t, err, tenantry.EConflict, "is not deleted")

		// Deactivated is not deleted: it is kept, and not restored.
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/tenants/" + d.id, Token: d.admin.AccessToken,
			Body: map[string]any{"is_active": false}}).Expect(t, http.StatusOK, "")
		_, err = env.App.Lifecycle.Restore(ctx, d.id)
		refused(t, err, tenantry.EConflict, "deactivated, not deleted")
		_, err = env.App.Lifecycle.Purge(ctx, d.id)
		refused(t, err, tenantry.EConflict, "is not deleted")

		// With no retention left, a deleted tenant is refused, then
		// purged by the periodic pass, and refused for good.
		other := createDoomed(t, env, "Expired")
		expired := tenant.NewLifecycle(env.App.Engines.Control, env.App.Tenants, env.App.Blobs, env.App.Audit, env.App.Streams,
			tenant.LifecycleConfig{Retention: 0, Keys: env.App.Keys})
		_, err = expired.Restore(ctx, other.id)
		refused(t, err, tenantry.EConflict, "retention period ended")
		if n, err := expired.PurgeDue(ctx); err != nil || n != 1 {
			t.Fatalf("PurgeDue: %d, %v; want the expired tenant alone", n, err)
		}
		other.checkPurged(t, env)
		_, err = expired.Restore(ctx, other.id)
		refused(t, err, tenantry.EConflict, "was purged")
		if p, err := expired.Purge(ctx, other.id); err != nil || !p.Already {
			t.Fatalf("purging again: %+v, %v", p, err)
		}
		if n, err := expired.PurgeDue(ctx); err != nil || n != 0 {
			t.Fatalf("PurgeDue again: %d, %v", n, err)
		}
		other.checkPurged(t, env)
		// The deactivated tenant was left alone.
		if n := count(t, env, `SELECT count(*) FROM tenants WHERE id = $1`, d.id); n != 1 {
			t.Fatal("the deactivated tenant was purged")
		}
		_, err = env.App.Lifecycle.Restore(ctx, "0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11")
		refused(t, err, tenantry.ENotFound, "not found")
	})
}

// Ensure a purge stopped after any of its steps, as by a crash, is finished
// by running it again or by the periodic pass, to the same end state; that a tenant being purged
// cannot be restored; and that the content another tenant shares stays.
func TestPurgeResumesAfterACrashAtEveryStep(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		ctx := context.Background()
		// A lifecycle of its own, so that the crashes it plays never
		// land in the worker's periodic purge.
		lc := tenant.NewLifecycle(env.App.Engines.Control, env.App.Tenants, env.App.Blobs, env.App.Audit, env.App.Streams,
			tenant.LifecycleConfig{Retention: time.Duration(env.App.Config.TenantRetention), Keys: env.App.Keys})
		bystander := createDoomed(t, env, "Bystander")
		if _, err := lc.Restore(ctx, bystander.id); err != nil {
			t.Fatal(err)
		}
		crash := errors.New("crash")
		for k := 0; k <= tenant.PurgeSteps; k++ {
			d := createDoomed(t, env, fmt.Sprintf("Crash%d", k))
			var once sync.Once
			tenant.SetAfterStep(lc, func(step int) error {
				var err error
				if step == k {
					once.Do(func() { err = crash })
				}
				return err
			})
			if _, err := lc.Purge(ctx, d.id); !errors.Is(err, crash) {
				t.Fatalf("step %d: purge = %v, want the crash", k, err)
			}
			if k < tenant.PurgeSteps {
				_, err := lc.Restore(ctx, d.id)
				refused(t, err, tenantry.EConflict, "is being purged")
				listed, err := lc.List(ctx, true)
				if err != nil || len(listed) == 0 || listed[0].ID != d.id || listed[0].State != tenant.StatePurging {
					t.Fatalf("step %d: listed %+v, %v", k, listed, err)
				}
			}
			if k == tenant.PurgeDatabaseDropped {
				// The periodic pass finishes a purge that stopped, even
				// one started within the retention period.
				if n, err := lc.PurgeDue(ctx); err != nil || n != 1 {
					t.Fatalf("step %d: PurgeDue = %d, %v; want the stopped purge finished", k, n, err)
				}
			} else if p, err := lc.Purge(ctx, d.id); err != nil || p.Already != (k == tenant.PurgeSteps) {
				t.Fatalf("step %d: resumed purge = %+v, %v", k, p, err)
			}
			d.checkPurged(t, env)
			// Once more changes nothing.
			if p, err := lc.Purge(ctx, d.id); err != nil || !p.Already {
				t.Fatalf("step %d: purge after the end = %+v, %v", k, p, err)
			}
			d.checkPurged(t, env)
		}
		tenant.SetAfterStep(lc, nil)
		bystander.readable(t, env, bystander.member)
		if v, err := env.App.Audit.Verify(ctx, bystander.id); err != nil || !v.Intact {
			t.Fatalf("another tenant's chain: %+v, %v", v, err)
		}
	})
}

// Ensure a tenant with a move under way is not purged, and that the purge
// goes ahead once the move has ended.
func TestPurgeWaitsForAMove(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		ctx := context.Background()
		d := createDoomed(t, env, "Moving")
		now := time.Now().UTC()
		if _, err := env.App.Engines.Control.Exec(ctx, `
			INSERT INTO tenant_moves (id, tenant_id, state, owner, started_at, heartbeat_at)
			VALUES ('6fdf95f3-0a69-4f7a-9b4a-a4aba465efec', $1, 'copying', 'test', $2, $2)`, d.id, now); err != nil {
			t.Fatal(err)
		}
		_, err := env.App.Lifecycle.Purge(ctx, d.id)
		refused(t, err, tenantry.EConflict, "move of tenant")
		if n := count(t, env, `SELECT count(*) FROM tenant_purges WHERE tenant_id = $1`, d.id); n != 0 {
			t.Fatal("the refused purge was recorded")
		}
		if _, err := env.App.Engines.Control.Exec(ctx, `UPDATE tenant_moves SET state = 'failed' WHERE tenant_id = $1`, d.id); err != nil {
			t.Fatal(err)
		}
		if _, err := env.App.Lifecycle.Purge(ctx, d.id); err != nil {
			t.Fatal(err)
		}
		d.checkPurged(t, env)
	})
}

// Ensure a restore and a purge of the same tenant at once never both
// succeed: either the tenant is back, whole, or it is purged.
func TestRestoreRacesPurge(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		ctx := context.Background()
		for i := range 4 {
			d := createDoomed(t, env, fmt.Sprintf("Raced%d", i))
			var wg sync.WaitGroup
			var restoreErr, purgeErr error
			wg.Go(func() { _, restoreErr = env.App.Lifecycle.Restore(ctx, d.id) })
			wg.Go(func() { _, purgeErr = env.App.Lifecycle.Purge(ctx, d.id) })
			wg.Wait()
			switch {
			case restoreErr == nil && purgeErr == nil:
				t.Fatalf("round %d: both the restore and the purge succeeded", i)
			case restoreErr == nil:
				refused(t, purgeErr, tenantry.EConflict, "is not deleted")
				d.readable(t, env, d.member)
			case purgeErr == nil:
				refused(t, restoreErr, tenantry.EConflict, "purge")
				d.checkPurged(t, env)
			default:
				t.Fatalf("round %d: restore %v, purge %v", i, restoreErr, purgeErr)
			}
		}
	})
}
