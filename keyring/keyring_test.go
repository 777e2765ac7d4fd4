package keyring_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/vault"
	"github.com/tenantry/tenantry/vault/vaulttest"
)

// fixture is a keyring over a shape's control database, and what a test
// needs to make another process's keyring over the same database and key
// service.
type fixture struct {
	control sqldb.DB
	wrapper func(t testing.TB) keyring.Wrapper
	ring    *keyring.Keyring
}

func (f *fixture) another(t *testing.T, opts keyring.Options) *keyring.Keyring {
	t.Helper()
	return keyring.New(f.control, f.wrapper(t), opts)
}

// wrapperMaker returns, for one test, a maker of wrappers sharing one key
// service, as the processes of one deployment do.
type wrapperMaker func(t testing.TB, control sqldb.DB) func(t testing.TB) keyring.Wrapper

// eachKeyring runs fn with a fresh keyring on each shape's control database,
// wrapping its keys locally and, when a Vault binary is configured, with
// Vault Transit: the same behaviour is asked of both.
func eachKeyring(t *testing.T, fn func(t *testing.T, f *fixture)) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		for name, maker := range map[string]wrapperMaker{"local": localWrappers, "vault": vaultWrappers} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := &fixture{control: apptest.Engines(t, apptest.Config(t, shape)).Control}
				f.wrapper = maker(t, f.control)
				f.ring = f.another(t, keyring.Options{})
				fn(t, f)
			})
		}
	})
}

// localWrappers makes local wrappers sharing one master key.
func localWrappers(t testing.TB, control sqldb.DB) func(t testing.TB) keyring.Wrapper {
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	return func(t testing.TB) keyring.Wrapper {
		t.Helper()
		w, err := keyring.NewLocal(master, control)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
}

// vaultWrappers starts a Vault server for the test and makes Transit
// wrappers on it, each with a client of its own.
func vaultWrappers(t testing.TB, _ sqldb.DB) func(t testing.TB) keyring.Wrapper {
	server := vaulttest.Start(t)
	return func(t testing.TB) keyring.Wrapper {
		t.Helper()
		c, err := vault.Open(context.Background(), vault.Config{Addr: server.Addr, Token: server.RootToken})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return vault.NewTransit(c)
	}
}

func TestEncryptedBytesOpenOnlyWhereTheyBelong(t *testing.T) {
	eachKeyring(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		tenant, other := uuid.NewString(), uuid.NewString()
		aad := keyring.AAD{"table", "sso_configs", "column", "client_secret", "row", "1"}
		secret := []byte("the client secret")
		sealed, err := f.ring.Encrypt(ctx, tenant, secret, aad)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, secret) {
			t.Fatal("the ciphertext contains the plaintext")
		}
		got, err := f.ring.Decrypt(ctx, tenant, sealed, aad)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("decrypt: %q, %v", got, err)
		}
		// The same bytes elsewhere: another row, column, tenant.
		for name, try := range map[string]func() ([]byte, error){
			"another row": func() ([]byte, error) {
				return f.ring.Decrypt(ctx, tenant, sealed, keyring.AAD{"table", "sso_configs", "column", "client_secret", "row", "2"})
			},
			"another column": func() ([]byte, error) {
				return f.ring.Decrypt(ctx, tenant, sealed, keyring.AAD{"table", "sso_configs", "column", "other", "row", "1"})
			},
			"another tenant": func() ([]byte, error) {
				if _, err := f.ring.Encrypt(ctx, other, []byte("x"), aad); err != nil {
					t.Fatal(err)
				}
				return f.ring.Decrypt(ctx, other, sealed, aad)
			},
			"ambiguous names": func() ([]byte, error) {
				return f.ring.Decrypt(ctx, tenant, sealed, keyring.AAD{"table", "sso_configs", "column", "client_secret", "row1", ""})
			},
		} {
			if got, err := try(); !errors.Is(err, keyring.ErrDecrypt) {
				t.Errorf("%s: decrypted %q, %v; want ErrDecrypt", name, got, err)
			}
		}
		// Any single byte changed, header included, is refused.
		for i := range sealed {
			tampered := bytes.Clone(sealed)
			tampered[i] ^= 0x01
			if _, err := f.ring.Decrypt(ctx, tenant, tampered, aad); err == nil {
				t.Fatalf("byte %d changed and the ciphertext still opened", i)
			}
		}
		if _, err := f.ring.Decrypt(ctx, tenant, sealed[:len(sealed)-1], aad); !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("truncated: %v", err)
		}
	})
}

func TestRotationKeepsOldVersionsReadable(t *testing.T) {
	eachKeyring(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		scope := uuid.NewString()
		aad := keyring.AAD{"row", "1"}
		before, err := f.ring.Encrypt(ctx, scope, []byte("before"), aad)
		if err != nil {
			t.Fatal(err)
		}
		v, err := f.ring.Rotate(ctx, scope)
		if err != nil || v != 2 {
			t.Fatalf("rotate: version %d, %v; want 2", v, err)
		}
		after, err := f.ring.Encrypt(ctx, scope, []byte("after"), aad)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := keyring.SealedVersion(after); got != 2 {
			t.Fatalf("a write after the rotation used version %d", got)
		}
		// Re-wrapping, one key at a time as a resumed pass would, moves
		// every stored key to the newest wrapping version.
		var pos keyring.Position
		for {
			next, _, err := f.ring.Rewrap(ctx, pos, 1)
			if err != nil {
				t.Fatal(err)
			}
			if next == (keyring.Position{}) {
				break
			}
			pos = next
		}
		if f.ring.Wrapper().Name() == "vault" {
			rows, err := f.control.Query(ctx, `SELECT wrapped FROM data_keys WHERE scope = $1`, scope)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var wrapped []byte
				if err := rows.Scan(&wrapped); err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(wrapped, []byte("vault:v2:")) {
					t.Errorf("a data key is still wrapped by %q after re-wrapping", bytes.SplitN(wrapped, []byte(":"), 3)[1])
				}
			}
			rows.Close()
		}
		// Another process, with a cold cache, reads both.
		cold := f.another(t, keyring.Options{})
		for want, sealed := range map[string][]byte{"before": before, "after": after} {
			got, err := cold.Decrypt(ctx, scope, sealed, aad)
			if err != nil || string(got) != want {
				t.Fatalf("decrypt %s: %q, %v", want, got, err)
			}
		}
		status, err := f.ring.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range status {
			if s.Scope == scope {
				found = true
				if s.Versions != 2 || s.Newest != 2 {
					t.Fatalf("status of %s: %+v", scope, s)
				}
			}
		}
		if !found {
			t.Fatalf("status does not list %s: %+v", scope, status)
		}
	})
}

// Processes starting together on a new scope agree on one first key.
func TestFirstKeyIsMadeOnce(t *testing.T) {
	eachKeyring(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		scope := uuid.NewString()
		const processes = 8
		sealed := make([][]byte, processes)
		errs := make(chan error, processes)
		for i := range processes {
			ring := f.another(t, keyring.Options{})
			go func() {
				var err error
				sealed[i], err = ring.Encrypt(ctx, scope, []byte("x"), nil)
				errs <- err
			}()
		}
		for range processes {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for i, s := range sealed {
			if _, err := f.ring.Decrypt(ctx, scope, s, nil); err != nil {
				t.Fatalf("process %d's ciphertext: %v", i, err)
			}
		}
	})
}

// Destroying a scope's keys leaves nothing tenantry holds able to open what
// they encrypted, even with the wrapped data keys copied aside first.
func TestDestroyedKeysOpenNothing(t *testing.T) {
	eachKeyring(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		scope := uuid.NewString()
		sealed, err := f.ring.Encrypt(ctx, scope, []byte("gone for good"), nil)
		if err != nil {
			t.Fatal(err)
		}
		var wrapped []byte
		if err := f.control.QueryRow(ctx, `SELECT wrapped FROM data_keys WHERE scope = $1`, scope).Scan(&wrapped); err != nil {
			t.Fatal(err)
		}
		if err := f.ring.Destroy(ctx, scope); err != nil {
			t.Fatal(err)
		}
		if _, err := f.ring.Decrypt(ctx, scope, sealed, nil); !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("after destroy, this process: %v", err)
		}
		// The copy put back, read by a process with the same key service.
		if _, err := f.control.Exec(ctx, `INSERT INTO data_keys (scope, version, wrapped, wrapper, created_at) VALUES ($1, 1, $2, $3, $4)`,
			scope, wrapped, f.ring.Wrapper().Name(), sqldb.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.another(t, keyring.Options{}).Decrypt(ctx, scope, sealed, nil); !errors.Is(err, keyring.ErrDecrypt) {
			t.Fatalf("with the wrapped key restored from a copy: %v; want ErrDecrypt", err)
		}
	})
}

// Unwrapped keys leave memory after their time, and never exceed the bound.
func TestCachedKeysAreBounded(t *testing.T) {
	eachKeyring(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		ring := f.another(t, keyring.Options{TTL: 50 * time.Millisecond, MaxKeys: 3})
		for range 10 {
			if _, err := ring.Encrypt(ctx, uuid.NewString(), []byte("x"), nil); err != nil {
				t.Fatal(err)
			}
			if n := keyring.CachedKeys(ring); n > 3 {
				t.Fatalf("%d keys cached, bound 3", n)
			}
		}
		time.Sleep(60 * time.Millisecond)
		scope := uuid.NewString()
		sealed, err := ring.Encrypt(ctx, scope, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ring.Decrypt(ctx, scope, sealed, nil); err != nil {
			t.Fatal(err)
		}
		if n := keyring.CachedKeys(ring); n != 1 {
			t.Fatalf("%d keys cached after the others' time ran out, want 1", n)
		}
	})
}

func TestMasterKeyMustBe32Bytes(t *testing.T) {
	if _, err := keyring.NewLocal(make([]byte, 16), nil); err == nil {
		t.Fatal("a 16-byte master key was accepted")
	}
}

// A rotation's re-sealing pass moves every value an older version sealed to
// the newest, in batches it can resume from, and never overwrites a value
// written meanwhile.
func TestResealInBatches(t *testing.T) {
	eachKeyring(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		aad := func(id string) keyring.AAD { return keyring.AAD{"table", "tenant_servers", "row", id} }
		col := keyring.Column{DB: f.control, Table: "tenant_servers", Key: "name", Column: "url_template_sealed", Scope: keyring.Platform, AAD: aad}
		for i := range 5 {
			name := fmt.Sprintf("s%d", i)
			sealed, err := f.ring.Encrypt(ctx, keyring.Platform, []byte("secret "+name), aad(name))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.control.Exec(ctx, `INSERT INTO tenant_servers (name, url_template, url_template_sealed, weight, state, created_at)
				VALUES ($1, 'x', $2, 1, 'active', $3)`, name, sealed, sqldb.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.ring.Rotate(ctx, keyring.Platform); err != nil {
			t.Fatal(err)
		}
		next, moved, err := f.ring.Reseal(ctx, col, "", 2)
		if err != nil || next != "s1" || moved != 2 {
			t.Fatalf("first batch: next %q, moved %d, %v", next, moved, err)
		}
		old, err := f.ring.OldVersionsInUse(ctx, []keyring.SealedValues{col})
		if err != nil || len(old) != 1 || old[0].Count != 3 || old[0].Version != 1 {
			t.Fatalf("after one batch, older versions seal %+v, %v", old, err)
		}
		// A value written meanwhile is newer than the one the pass read.
		var stale []byte
		if err := f.control.QueryRow(ctx, `SELECT url_template_sealed FROM tenant_servers WHERE name = 's4'`).Scan(&stale); err != nil {
			t.Fatal(err)
		}
		fresh, err := f.ring.Encrypt(ctx, keyring.Platform, []byte("changed s4"), aad("s4"))
		if err != nil {
			t.Fatal(err)
		}
		if err := col.Replace(ctx, "s4", stale, fresh); err != nil {
			t.Fatal(err)
		}
		if err := col.Replace(ctx, "s4", stale, stale); err != nil {
			t.Fatal(err)
		}
		for next != "" {
			if next, _, err = f.ring.Reseal(ctx, col, next, 2); err != nil {
				t.Fatal(err)
			}
		}
		if old, err := f.ring.OldVersionsInUse(ctx, []keyring.SealedValues{col}); err != nil || len(old) != 0 {
			t.Fatalf("after the pass, older versions seal %+v, %v", old, err)
		}
		for i := range 5 {
			name := fmt.Sprintf("s%d", i)
			want := "secret " + name
			if i == 4 {
				want = "changed s4"
			}
			var sealed []byte
			if err := f.control.QueryRow(ctx, `SELECT url_template_sealed FROM tenant_servers WHERE name = $1`, name).Scan(&sealed); err != nil {
				t.Fatal(err)
			}
			if v, _ := keyring.SealedVersion(sealed); v != 2 {
				t.Errorf("%s is sealed with version %d, want 2", name, v)
			}
			if got, err := f.ring.Decrypt(ctx, keyring.Platform, sealed, aad(name)); err != nil || string(got) != want {
				t.Errorf("%s opens as %q, %v; want %q", name, got, err, want)
			}
		}
	})
}
