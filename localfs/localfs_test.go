package localfs_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/blob/blobtest"
	"github.com/tenantry/tenantry/localfs"
)

func mustOpenStore(t *testing.T, root string) *localfs.BlobStore {
	t.Helper()
	s, err := localfs.NewBlobStore(root)
	if err != nil {
		t.Fatalf("NewBlobStore: %v", err)
	}
	return s
}

func TestBlobStore(t *testing.T) {
	t.Parallel()
	blobtest.Exercise(t, func(t *testing.T) blob.Store {
		return mustOpenStore(t, t.TempDir())
	})
}

// Ensure keys map to private files at their relative path, and temporary
// files live under the prefix's tmp directory.
func TestLayout(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "blobs")
	s := mustOpenStore(t, root)
	const prefix = "tenants/tenant_acme_1a2b3c4d/"
	data := []byte("hello")
	tmp, _, err := s.PutTemp(t.Context(), prefix, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(tmp)))
	if err != nil {
		t.Fatalf("temp file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("temp file mode = %v, want 0600", fi.Mode().Perm())
	}
	key := blobtest.ContentKey(prefix, data)
	if err := s.Promote(t.Context(), tmp, key); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, filepath.FromSlash(key))
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file at %s: %q, %v; want %q", p, got, err, data)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Ensure Promote renews a file whose content predates the grace period, even
// when the temporary file itself is old.
func TestPromoteRenewsOldFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	s := mustOpenStore(t, root)
	const prefix = "p/"
	data := []byte("same bytes")
	key := blobtest.ContentKey(prefix, data)
	blobtest.Store(t, s, prefix, key, data)
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(key)), old, old); err != nil {
		t.Fatal(err)
	}
	tmp, _, err := s.PutTemp(t.Context(), prefix, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(tmp)), old, old); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := s.Promote(t.Context(), tmp, key); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if info.ModTime.Before(before.Add(-time.Second)) {
		t.Errorf("ModTime after Promote = %v, want at least %v", info.ModTime, before)
	}
}

// Ensure a key whose parent is an object reads as absent rather than failing.
func TestKeyUnderObject(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t, t.TempDir())
	blobtest.Store(t, s, "p/", "p/a", []byte("a"))
	if _, err := s.Stat(t.Context(), "p/a/b"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat(p/a/b) error = %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), "p/a/b"); err != nil {
		t.Errorf("Delete(p/a/b) = %v, want nil", err)
	}
	if got := blobtest.Keys(t, s, "p/a/"); len(got) != 0 {
		t.Errorf("List(p/a/) = %v, want nothing", got)
	}
}

func TestPresignUnsupported(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t, t.TempDir())
	if _, err := s.PresignGet(t.Context(), "p/a", time.Minute, "", ""); !errors.Is(err, blob.ErrPresignUnsupported) {
		t.Errorf("PresignGet error = %v, want ErrPresignUnsupported", err)
	}
}

func TestPingFails(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	s := mustOpenStore(t, root)
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	// A file where the root should be: not writable as a directory, even
	// by root, which ignores permission bits.
	if err := os.WriteFile(root, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Errorf("Ping with the root replaced by a file = %v, want an error", err)
	}
	if _, err := localfs.NewBlobStore(root); err == nil {
		t.Error("NewBlobStore on a file succeeded")
	}
}

// Ensure PutTemp's memory does not grow with the body. Not parallel, so that
// no other test's allocations are counted.
func TestPutTempMemoryBounded(t *testing.T) {
	s := mustOpenStore(t, t.TempDir())
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, n, err := s.PutTemp(t.Context(), "p/", io.LimitReader(zeros{}, size))
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("PutTemp = %d, %v; want %d bytes", n, err, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("PutTemp of %d MiB allocated %d KiB", size>>20, alloc>>10)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Ensure a source handing out a few KiB at a time, as a multipart part does,
// is stored whole and exact across many writes and writeback windows.
func TestPutTempFromSmallReads(t *testing.T) {
	t.Parallel()
	s := mustOpenStore(t, t.TempDir())
	const size = 20<<20 + 12345
	want := sha256.New()
	src := io.TeeReader(smallReads{io.LimitReader(mathrand.NewChaCha8([32]byte{7}), size)}, want)
	tmp, n, err := s.PutTemp(t.Context(), "p/", src)
	if err != nil || n != size {
		t.Fatalf("PutTemp = %d, %v; want %d bytes", n, err, size)
	}
	rc, err := s.Open(t.Context(), tmp, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := sha256.New()
	if _, err := io.Copy(got, rc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("the stored bytes differ from the source's")
	}
}

// smallReads hands out at most an odd, small number of bytes per read.
type smallReads struct{ r io.Reader }

func (s smallReads) Read(p []byte) (int, error) {
	return s.r.Read(p[:min(len(p), 4093)])
}
