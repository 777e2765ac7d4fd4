package sealedblob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/blob/blobtest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/localfs"
	"github.com/tenantry/tenantry/s3"
	"github.com/tenantry/tenantry/s3/s3test"
	"github.com/tenantry/tenantry/sealedblob"
)

// byDatabase scopes each tenant prefix by its database name, as the
// application scopes it by the tenant that database belongs to.
func byDatabase(_ context.Context, key string) (string, error) {
	return sealedblob.TenantDatabase(key)
}

func newKeyring(t testing.TB) *keyring.Keyring {
	t.Helper()
	control := apptest.Engines(t, apptest.Config(t, config.Embedded)).Control
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	w, err := keyring.NewLocal(master, control)
	if err != nil {
		t.Fatal(err)
	}
	return keyring.New(control, w, keyring.Options{})
}

func newLocal(t testing.TB) blob.Store {
	t.Helper()
	s, err := localfs.NewBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The sealed store keeps every promise of a blob.Store, on local disk and,
// when a test server is configured, on S3.
func TestConformance(t *testing.T) {
	t.Parallel()
	keys := newKeyring(t)
	t.Run("localfs", func(t *testing.T) {
		t.Parallel()
		blobtest.Exercise(t, func(t *testing.T) blob.Store {
			return sealedblob.New(newLocal(t), keys, byDatabase)
		})
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		s3test.Require(t)
		inner, err := s3.NewBlobStore(t.Context(), s3test.NewBucket(t))
		if err != nil {
			t.Fatal(err)
		}
		blobtest.Exercise(t, func(t *testing.T) blob.Store {
			return sealedblob.New(inner, keys, byDatabase)
		})
	})
}

const prefix = "tenants/tenant_acme_0001/"

func store(t *testing.T, s blob.Store, data []byte) string {
	t.Helper()
	key := blobtest.ContentKey(prefix, data)
	blobtest.Store(t, s, prefix, key, data)
	return key
}

func read(s blob.Store, key string, offset, length int64) ([]byte, error) {
	rc, err := s.Open(context.Background(), key, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Ranges are read across package boundaries, at the edges of packages and of
// the object, for objects ending on a boundary and within a package.
func TestRangesAcrossPackages(t *testing.T) {
	t.Parallel()
	inner := newLocal(t)
	s := sealedblob.New(inner, newKeyring(t), byDatabase)
	const pkg = 1 << 16
	for _, size := range []int{pkg, 3*pkg + 17} {
		data := make([]byte, size)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		key := store(t, s, data)
		ranges := [][2]int64{{0, pkg}, {pkg - 1, 2}, {pkg, -1}, {pkg, pkg}, {int64(size) - 1, -1}, {int64(size), 5}, {int64(size) + pkg, -1}, {2*pkg + 3, 70000}}
		rng := mathrand.New(mathrand.NewPCG(uint64(size), 7))
		for range 50 {
			off := rng.Int64N(int64(size))
			ranges = append(ranges, [2]int64{off, rng.Int64N(int64(size)-off) + 1})
		}
		for _, r := range ranges {
			got, err := read(s, key, r[0], r[1])
			if err != nil {
				t.Fatalf("size %d: Open(%d, %d): %v", size, r[0], r[1], err)
			}
			end := int64(size)
			if r[1] >= 0 {
				end = min(end, r[0]+r[1])
			}
			var want []byte
			if r[0] < end {
				want = data[r[0]:end]
			}
			if !bytes.Equal(got, want) {
				t.Errorf("size %d: Open(%d, %d) read %d bytes, want %d, or different bytes", size, r[0], r[1], len(got), len(want))
			}
		}
	}
}

// What reaches the underlying store is not the content: no run of it
// survives, and its size is the content's plus the format's overhead.
func TestStoredBytesAreCiphertext(t *testing.T) {
	t.Parallel()
	inner := newLocal(t)
	s := sealedblob.New(inner, newKeyring(t), byDatabase)
	data := bytes.Repeat([]byte("confidential drawing of part 42 "), 10000)
	key := store(t, s, data)
	stored, err := read(inner, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte("confidential")) || bytes.Contains(stored, []byte("part 42")) {
		t.Fatal("the stored object holds the content in clear")
	}
	if len(stored) <= len(data) || len(stored) > len(data)+len(data)/100+200 {
		t.Errorf("stored %d bytes for %d of content", len(stored), len(data))
	}
	if _, err := s.PresignGet(t.Context(), key, 60, "", ""); !errors.Is(err, blob.ErrPresignUnsupported) {
		t.Errorf("PresignGet error = %v, want ErrPresignUnsupported: a presigned URL would serve ciphertext", err)
	}
}

// A sealed object opens only as itself, under its own tenant, unaltered.
func TestTamperingIsDetected(t *testing.T) {
	t.Parallel()
	inner := newLocal(t)
	s := sealedblob.New(inner, newKeyring(t), byDatabase)
	data := make([]byte, 200000)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	key := store(t, s, data)
	stored, err := read(inner, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, b []byte) {
		t.Helper()
		p, _ := tenantPrefixOf(key)
		blobtest.Store(t, inner, p, key, b)
	}
	expectDecryptFailure := func(what, key string, offset, length int64) {
		t.Helper()
		got, err := read(s, key, offset, length)
		if !errors.Is(err, keyring.ErrDecrypt) {
			t.Errorf("%s: read %d bytes, error %v; want keyring.ErrDecrypt", what, len(got), err)
		}
	}

	flipped := bytes.Clone(stored)
	flipped[len(flipped)-100] ^= 1
	put(prefix+"files/flipped", flipped)
	expectDecryptFailure("a flipped bit in the last package", prefix+"files/flipped", 0, -1)
	expectDecryptFailure("a range over the flipped bit", prefix+"files/flipped", int64(len(data))-200, -1)

	truncated := stored[:len(stored)-1000]
	put(prefix+"files/truncated", truncated)
	expectDecryptFailure("a truncated object", prefix+"files/truncated", 0, -1)

	// Packages 0 and 1 swapped: each is authenticated with its number.
	const pkgSize, headerSize = 1<<16 + 32, 112
	swapped := bytes.Clone(stored)
	copy(swapped[headerSize:], stored[headerSize+pkgSize:headerSize+2*pkgSize])
	copy(swapped[headerSize+pkgSize:], stored[headerSize:headerSize+pkgSize])
	put(prefix+"files/swapped", swapped)
	expectDecryptFailure("reordered packages", prefix+"files/swapped", 0, 10)

	put("tenants/tenant_other_0002/files/copied", stored)
	expectDecryptFailure("an object copied to another tenant", "tenants/tenant_other_0002/files/copied", 0, -1)
}

func tenantPrefixOf(key string) (string, error) {
	db, err := sealedblob.TenantDatabase(key)
	return "tenants/" + db + "/", err
}

// Objects written before encryption was turned on are read as they are.
func TestPlainObjectsStayReadable(t *testing.T) {
	t.Parallel()
	inner := newLocal(t)
	data := []byte("written before encryption was turned on")
	key := store(t, inner, data)
	s := sealedblob.New(inner, newKeyring(t), byDatabase)
	for _, r := range [][2]int64{{0, -1}, {8, 6}, {8, -1}} {
		got, err := read(s, key, r[0], r[1])
		end := int64(len(data))
		if r[1] >= 0 {
			end = r[0] + r[1]
		}
		if err != nil || !bytes.Equal(got, data[r[0]:end]) {
			t.Errorf("Open(%d, %d) = %q, %v", r[0], r[1], got, err)
		}
	}
	if info, err := s.Stat(t.Context(), key); err != nil || info.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, %v; want size %d", info, err, len(data))
	}
}

// Once a tenant's keys are destroyed, a copy of its object kept aside opens
// with nothing the keyring still holds.
func TestDestroyedKeysLeaveCopiesUnreadable(t *testing.T) {
	t.Parallel()
	inner := newLocal(t)
	keys := newKeyring(t)
	s := sealedblob.New(inner, keys, byDatabase)
	key := store(t, s, []byte("the only copy that escaped the purge"))
	stored, err := read(inner, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Destroy(t.Context(), "tenant_acme_0001"); err != nil {
		t.Fatal(err)
	}
	blobtest.Store(t, inner, prefix, prefix+"files/escaped", stored)
	if got, err := read(s, prefix+"files/escaped", 0, -1); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("after the keys were destroyed: read %q, error %v; want keyring.ErrDecrypt", got, err)
	}
}
