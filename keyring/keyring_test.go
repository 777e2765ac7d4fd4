package keyring_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/sqldb"
)

// fixture is a keyring over a shape's control database, and what a test
// needs to make another process's keyring over the same database.
type fixture struct {
	control sqldb.DB
	master  []byte
	ring    *keyring.Keyring
}

func (f *fixture) another(t *testing.T, opts keyring.Options) *keyring.Keyring {
	t.Helper()
	w, err := keyring.NewLocal(f.master, f.control)
	if err != nil {
		t.Fatal(err)
	}
	return keyring.New(f.control, w, opts)
}

// eachKeyring runs fn with a fresh keyring on each shape's control database.
func eachKeyring(t *testing.T, fn func(t *testing.T, f *fixture)) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := &fixture{control: apptest.Engines(t, apptest.Config(t, shape)).Control, master: make([]byte, 32)}
		if _, err := rand.Read(f.master); err != nil {
			t.Fatal(err)
		}
		f.ring = f.another(t, keyring.Options{})
		fn(t, f)
	})
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
		// The copy put back, read by a process with the same master key.
		if _, err := f.control.Exec(ctx, `INSERT INTO data_keys (scope, version, wrapped, wrapper, created_at) VALUES ($1, 1, $2, 'local', $3)`,
			scope, wrapped, sqldb.Now()); err != nil {
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
