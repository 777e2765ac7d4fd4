// Package blob defines the storage engine under documents: a flat space of
// immutable objects addressed by slash-separated keys, with local disk
// (package localfs) and S3-compatible object storage (package s3) behind one
// Store interface. Content addressing happens above it: an upload is streamed
// into a temporary object while its SHA-256 is computed, then promoted to the
// key derived from that hash, so that a blob is complete before any row
// references it and identical content always lands on the same key.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Errors reported by every Store.
var (
	// ErrNotFound is returned when the object asked for does not exist.
	ErrNotFound = errors.New("blob: not found")
	// ErrInvalidKey is returned, before any I/O, for a key or prefix that
	// ValidKey or ValidPrefix refuses.
	ErrInvalidKey = errors.New("blob: invalid key")
	// ErrInvalidRange is returned by Open for a negative offset or a length
	// below -1.
	ErrInvalidRange = errors.New("blob: invalid range")
	// ErrPresignUnsupported is returned by PresignGet on stores that cannot
	// hand out credential-free URLs; the HTTP layer then serves the object
	// itself behind URLs it signs.
	ErrPresignUnsupported = errors.New("blob: presigned URLs not supported")
)

// MaxKeyLength is the longest key, in bytes, that S3 accepts and therefore
// the longest any store accepts, so that blobs can move between stores.
const MaxKeyLength = 1024

// TempDir is the segment, appended to a caller's prefix, under which PutTemp
// writes temporary objects.
const TempDir = "tmp/"

// Info describes a stored object.
type Info struct {
	Key  string
	Size int64
	// ModTime is when the object was written or last promoted to its key,
	// as precisely as the store keeps it: S3 reports whole seconds, so it
	// may be up to ModTimeResolution earlier than the write.
	ModTime time.Time
}

// ModTimeResolution is the coarsest ModTime a store reports.
const ModTimeResolution = time.Second

// WrittenBefore reports whether the object was surely written or promoted
// before t, however coarse its ModTime.
func (i Info) WrittenBefore(t time.Time) bool {
	return i.ModTime.Add(ModTimeResolution).Before(t)
}

// Store keeps objects by key. Implementations are safe for concurrent use.
type Store interface {
	// PutTemp streams r into a new temporary object under prefix+"tmp/" and
	// returns its key and size. It never holds the whole body in memory. A
	// failed or cancelled write leaves nothing behind (best effort delete).
	PutTemp(ctx context.Context, prefix string, r io.Reader) (key string, size int64, err error)
	// Promote moves a temporary object to key, replacing any object there;
	// ErrNotFound if tempKey does not exist. The object at key afterwards
	// has a fresh modification time: the reconciler only deletes row-less
	// blobs older than a grace period, and an upload that re-promotes
	// identical content over an old blob must renew it.
	Promote(ctx context.Context, tempKey, key string) error
	// Open streams the object, or the byte range [offset, offset+length) of
	// it when length >= 0 (length -1 reads to the end). A range running past
	// the end is cut short there, so one starting at or past the end reads
	// nothing. ErrNotFound if the object is absent.
	Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat describes the object; ErrNotFound if it is absent.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object; deleting an absent object is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in no
	// particular order, temporary objects included. An error from fn stops
	// the walk and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// PresignGet returns a URL that serves the object without credentials
	// for ttl, with the given Content-Disposition and Content-Type response
	// headers; ErrPresignUnsupported for stores that cannot.
	PresignGet(ctx context.Context, key string, ttl time.Duration, contentDisposition, contentType string) (string, error)
	// Ping reports whether the store is ready to serve.
	Ping(ctx context.Context) error
}

// TenantPrefix is where a tenant's blobs live, named by its database as in
// the original platform. Database names are unique, so no two tenants share
// a prefix, and content is deduplicated within a tenant only.
func TenantPrefix(databaseName string) string { return "tenants/" + databaseName + "/" }

// ValidKey reports whether key is safe to use on every store: non-empty,
// relative, slash-separated segments none of which is empty, "." or "..", no
// backslash, valid UTF-8 without control characters, at most MaxKeyLength
// bytes. The local disk store relies on this to keep keys inside its root, and
// S3 would otherwise normalise some of these keys to other objects.
func ValidKey(key string) bool {
	if key == "" || len(key) > MaxKeyLength || !utf8.ValidString(key) {
		return false
	}
	for _, r := range key {
		if r == '\\' || unicode.IsControl(r) {
			return false
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// ValidPrefix reports whether prefix may be passed to List or PutTemp: empty,
// or a valid key, optionally followed by one slash.
func ValidPrefix(prefix string) bool {
	return prefix == "" || ValidKey(strings.TrimSuffix(prefix, "/"))
}

// NewTempKey returns a fresh key for a temporary object under prefix, or
// ErrInvalidKey. The random name lets concurrent uploads of the same content
// write side by side until each promotes its own copy.
func NewTempKey(prefix string) (string, error) {
	key := prefix + TempDir + uuid.NewString()
	if !ValidPrefix(prefix) || !ValidKey(key) {
		return "", invalidKey(prefix)
	}
	return key, nil
}

// CheckKeys returns an error wrapping ErrInvalidKey that names the first of
// keys ValidKey refuses, or nil if it accepts them all.
func CheckKeys(keys ...string) error {
	for _, k := range keys {
		if !ValidKey(k) {
			return invalidKey(k)
		}
	}
	return nil
}

// CheckPrefix returns an error wrapping ErrInvalidKey when ValidPrefix
// refuses prefix, or nil.
func CheckPrefix(prefix string) error {
	if !ValidPrefix(prefix) {
		return invalidKey(prefix)
	}
	return nil
}

// CheckRange returns an error wrapping ErrInvalidRange unless offset and
// length describe a range Open accepts: offset >= 0 and length >= -1.
func CheckRange(offset, length int64) error {
	if offset < 0 || length < -1 {
		return fmt.Errorf("%w: offset %d, length %d", ErrInvalidRange, offset, length)
	}
	return nil
}

func invalidKey(key string) error {
	// Quoted because a refused key may hold control characters, and cut
	// because it may be arbitrarily long.
	if len(key) > 100 {
		key = key[:100] + "..."
	}
	return fmt.Errorf("%w: %q", ErrInvalidKey, key)
}

// ContextReader returns a reader of r that fails at the first read after
// ctx is done, so that a copy driven by a reader that never blocks on the
// context (a body already in memory, a fast disk) still stops when asked.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return contextReader{ctx: ctx, r: r}
}

type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
