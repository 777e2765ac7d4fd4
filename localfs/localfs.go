// Package localfs stores blobs as files under a directory on local disk, the
// embedded shape's blob store. A key maps to the file at the same relative
// path; blob.ValidKey keeps every key inside the root. Writes are durable
// before they are acknowledged: temporary files are synced before PutTemp
// returns, and a promoted file's directory entry before Promote does.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tenantry/tenantry/blob"
)

var _ blob.Store = (*BlobStore)(nil)

// copyBufferSize is the fixed amount of memory one PutTemp uses for copying,
// whatever the size of the body.
const copyBufferSize = 256 << 10

// Modes of what the store creates: blobs are private to the service's user.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// BlobStore is a blob.Store on local disk. It is safe for concurrent use, also
// by several processes sharing the root.
type BlobStore struct {
	root string
	// buffers recycles copy buffers between uploads, so that a busy server
	// does not allocate one per upload.
	buffers sync.Pool
}

// NewBlobStore returns the store keeping its objects under root, creating the
// directory if needed.
func NewBlobStore(root string) (*BlobStore, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("localfs: blob root %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return nil, fmt.Errorf("localfs: create blob root: %w", err)
	}
	s := &BlobStore{root: abs}
	s.buffers.New = func() any {
		b := make([]byte, copyBufferSize)
		return &b
	}
	return s, nil
}

// path returns the file holding key, which must have been validated.
func (s *BlobStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// PutTemp implements blob.Store.
func (s *BlobStore) PutTemp(ctx context.Context, prefix string, r io.Reader) (string, int64, error) {
	key, err := blob.NewTempKey(prefix)
	if err != nil {
		return "", 0, err
	}
	p := s.path(key)
	if err := os.MkdirAll(filepath.Dir(p), dirMode); err != nil {
		return "", 0, fmt.Errorf("localfs: create temp directory: %w", err)
	}
	// O_EXCL: a name collision must fail rather than share a file with
	// another upload.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return "", 0, fmt.Errorf("localfs: create temp object: %w", err)
	}
	bufp := s.buffers.Get().(*[]byte)
	size, err := writeFile(ctx, f, r, *bufp)
	// Writes are synchronous: nothing holds the buffer any more.
	s.buffers.Put(bufp)
	if err != nil {
		_ = os.Remove(p)
		return "", 0, fmt.Errorf("localfs: write temp object: %w", err)
	}
	return key, size, nil
}

// writeFile copies r into f through buf, syncs and closes it. The buffer is
// filled before each write: readers such as a multipart part hand out a few
// KiB at a time, and writing each of those at once would cost a system call
// apiece.
func writeFile(ctx context.Context, f *os.File, r io.Reader, buf []byte) (int64, error) {
	r = blob.ContextReader(ctx, r)
	wb := newWriteback(f)
	var size int64
	var err error
	for err == nil {
		var n int
		n, err = fill(r, buf)
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				err = werr
			}
			size += int64(n)
			wb.wrote(size)
		}
	}
	if errors.Is(err, io.EOF) {
		if err = f.Sync(); err == nil {
			wb.synced()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return size, err
}

// fill reads from r until buf is full or r fails, unlike io.ReadFull
// passing r's own errors through as they are, io.EOF included, so that a
// source's io.ErrUnexpectedEOF is never mistaken for the end of the body.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Promote implements blob.Store.
func (s *BlobStore) Promote(ctx context.Context, tempKey, key string) error {
	if err := blob.CheckKeys(tempKey, key); err != nil {
		return err
	}
	src, dst := s.path(tempKey), s.path(key)
	// Renew the time before the rename rather than after it, so that the
	// object never appears at key with a stale time the reconciler could act
	// on, and so that a concurrent replacement cannot make Chtimes fail.
	now := time.Now()
	if err := os.Chtimes(src, now, now); notExist(err) {
		return fmt.Errorf("localfs: promote %s: %w", tempKey, blob.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("localfs: promote %s: %w", tempKey, err)
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("localfs: promote to %s: %w", key, err)
	}
	if err := os.Rename(src, dst); notExist(err) {
		return fmt.Errorf("localfs: promote %s: %w", tempKey, blob.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("localfs: promote %s to %s: %w", tempKey, key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("localfs: promote to %s: %w", key, err)
	}
	return nil
}

// syncDir makes a rename into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open implements blob.Store.
func (s *BlobStore) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := blob.CheckKeys(key); err != nil {
		return nil, err
	}
	if err := blob.CheckRange(offset, length); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, fileError("open", key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err == nil && offset > 0 {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fileError("open", key, err)
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// Stat implements blob.Store.
func (s *BlobStore) Stat(ctx context.Context, key string) (blob.Info, error) {
	if err := blob.CheckKeys(key); err != nil {
		return blob.Info{}, err
	}
	fi, err := os.Stat(s.path(key))
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return blob.Info{}, fileError("stat", key, err)
	}
	return blob.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements blob.Store. Directories left empty stay: removing them
// would race with a Promote creating a file in them.
func (s *BlobStore) Delete(ctx context.Context, key string) error {
	if err := blob.CheckKeys(key); err != nil {
		return err
	}
	p := s.path(key)
	// A directory is no object: never remove one, even empty.
	if fi, err := os.Lstat(p); notExist(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err := os.Remove(p); err != nil && !notExist(err) {
		return fmt.Errorf("localfs: delete %s: %w", key, err)
	}
	return nil
}

// List implements blob.Store. Objects created or deleted during the walk may
// or may not be reported.
func (s *BlobStore) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.CheckPrefix(prefix); err != nil {
		return err
	}
	// Walk the deepest directory that contains every match: the prefix up
	// to its last slash.
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = s.path(prefix[:i])
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// Gone since its parent was read, or never there: nothing
			// to report.
			if notExist(err) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Skip directories that cannot hold a match.
			if p != start && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if notExist(err) {
			return nil
		} else if err != nil {
			return err
		}
		return fn(blob.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("localfs: list %s: %w", prefix, err)
	}
	return nil
}

// PresignGet implements blob.Store: files on disk have no URL of their own.
func (s *BlobStore) PresignGet(ctx context.Context, key string, ttl time.Duration, contentDisposition, contentType string) (string, error) {
	if err := blob.CheckKeys(key); err != nil {
		return "", err
	}
	return "", blob.ErrPresignUnsupported
}

// Ping implements blob.Store: the root must be a directory the process can
// create files in.
func (s *BlobStore) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(s.root, ".ping-*")
	if err != nil {
		return fmt.Errorf("localfs: blob root not writable: %w", err)
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("localfs: blob root not writable: %w", err)
	}
	return nil
}

// fileError translates a file system error about key.
func fileError(op, key string, err error) error {
	if notExist(err) {
		return fmt.Errorf("localfs: %s %s: %w", op, key, blob.ErrNotFound)
	}
	return fmt.Errorf("localfs: %s %s: %w", op, key, err)
}

// notExist reports whether err says a path does not exist, including because
// one of its parents is a file: key a/b is absent when a is an object.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
