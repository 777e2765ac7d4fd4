// Package sealedblob encrypts document content at rest: a blob.Store that
// seals every object it writes with a key of the object's tenant, on top of
// any other store (local disk, S3).
//
// Each object gets a random content key. The content is encrypted with it in
// the DARE 2.0 format (github.com/minio/sio): 64 KiB packages, each
// authenticated on its own and numbered, so a byte range is read by fetching
// and opening only the packages it covers, and packages cannot be reordered,
// dropped or moved between objects unnoticed. The content key is sealed by
// the keyring with the tenant's data key and kept in a fixed-size header at
// the start of the object, so an object is readable exactly as long as its
// tenant's keys exist: destroying them (a purge) leaves every copy of it,
// wherever it went, unreadable.
//
// Rotation leaves objects as they are: a content key stays sealed with the
// data key version current when its object was written, and versions are
// kept until the tenant's keys are destroyed, so rotating costs no rewrite
// of content, as with envelope encryption in object stores generally.
//
// Deduplication is untouched: content is addressed by the SHA-256 of its
// plaintext, computed above this store, and a re-upload of the same content
// promotes its own sealed copy over the existing one.
//
// Objects written before encryption was turned on have no header and are
// read as they are, so turning it on needs no migration. Sealed objects
// cannot be served by presigned URLs (they would hand out ciphertext):
// PresignGet reports it unsupported and downloads go through tenantry.
package sealedblob

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/minio/sio"

	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/keyring"
)

// magic opens every sealed object. It is long and unlikely enough that no
// plaintext object written before encryption was turned on starts with it.
var magic = []byte("\x00tenantry-dare2\x01")

const (
	// headerSize is fixed, so that a stored size converts to a content
	// size without reading the object.
	headerSize = 112
	// maxSealedKey is the room the header leaves for the sealed content
	// key, after the magic and a length byte.
	maxSealedKey   = headerSize - 17
	contentKeySize = 32
	// DARE 2.0 packages: a 16-byte header and a 16-byte tag around up to
	// 64 KiB of content.
	packagePayload = 1 << 16
	packageSize    = packagePayload + 32
)

// Keys seals and opens content keys: the keyring.
type Keys interface {
	Encrypt(ctx context.Context, scope string, plaintext []byte, aad keyring.AAD) ([]byte, error)
	Decrypt(ctx context.Context, scope string, sealed []byte, aad keyring.AAD) ([]byte, error)
}

// ScopeFunc names the keyring scope, the tenant, that owns the object at key
// or under prefix.
type ScopeFunc func(ctx context.Context, keyOrPrefix string) (string, error)

// ErrNoScope is what a ScopeFunc returns for a key that belongs to no known
// tenant.
var ErrNoScope = errors.New("sealedblob: object belongs to no tenant")

// Store seals what it writes to an underlying store.
type Store struct {
	inner blob.Store
	keys  Keys
	scope ScopeFunc
}

var _ blob.Store = (*Store)(nil)

// New returns a store sealing objects written to inner with the keys of the
// scope that scope names for them.
func New(inner blob.Store, keys Keys, scope ScopeFunc) *Store {
	return &Store{inner: inner, keys: keys, scope: scope}
}

// aad binds a sealed content key to its tenant's prefix: the scope already
// separates tenants, and the purpose keeps the key from being mistaken for
// any other secret of the tenant.
func aad(prefix string) keyring.AAD {
	return keyring.AAD{"purpose", "blob content key", "prefix", prefix}
}

// PutTemp implements blob.Store; the size it returns is the content's.
func (s *Store) PutTemp(ctx context.Context, prefix string, r io.Reader) (string, int64, error) {
	if err := blob.CheckPrefix(prefix); err != nil {
		return "", 0, err
	}
	scope, err := s.scope(ctx, prefix)
	if err != nil {
		return "", 0, err
	}
	contentKey := make([]byte, contentKeySize)
	if _, err := rand.Read(contentKey); err != nil {
		return "", 0, err
	}
	sealedKey, err := s.keys.Encrypt(ctx, scope, contentKey, aad(prefix))
	if err != nil {
		return "", 0, err
	}
	header, err := encodeHeader(sealedKey)
	if err != nil {
		return "", 0, err
	}
	counted := &countingReader{r: r}
	sealed, err := sio.EncryptReader(counted, sio.Config{Key: contentKey, MinVersion: sio.Version20, MaxVersion: sio.Version20, CipherSuites: []byte{sio.AES_256_GCM}})
	if err != nil {
		return "", 0, err
	}
	key, _, err := s.inner.PutTemp(ctx, prefix, io.MultiReader(bytes.NewReader(header), sealed))
	if err != nil {
		return "", 0, err
	}
	return key, counted.n, nil
}

// Promote implements blob.Store.
func (s *Store) Promote(ctx context.Context, tempKey, key string) error {
	return s.inner.Promote(ctx, tempKey, key)
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error { return s.inner.Delete(ctx, key) }

// Ping implements blob.Store.
func (s *Store) Ping(ctx context.Context) error { return s.inner.Ping(ctx) }

// PresignGet implements blob.Store: a presigned URL would serve ciphertext.
func (s *Store) PresignGet(_ context.Context, key string, _ time.Duration, _, _ string) (string, error) {
	if err := blob.CheckKeys(key); err != nil {
		return "", err
	}
	return "", blob.ErrPresignUnsupported
}

// Stat implements blob.Store, with the content's size.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	info, err := s.inner.Stat(ctx, key)
	if err != nil {
		return info, err
	}
	head, err := s.readHead(ctx, key)
	if err != nil {
		return blob.Info{}, err
	}
	if head.sealed() {
		info.Size = contentSize(info.Size)
	}
	return info, nil
}

// List implements blob.Store. Sizes are the contents': for every object the
// size of a sealed object of the same stored size. An object written before
// encryption was turned on, whose size happens not to be one a sealed object
// can have, keeps its stored size.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	return s.inner.List(ctx, prefix, func(info blob.Info) error {
		info.Size = contentSize(info.Size)
		return fn(info)
	})
}

// contentSize is the size of the content of a sealed object of the given
// stored size, or size itself when no sealed object has that size.
func contentSize(stored int64) int64 {
	if stored < headerSize {
		return stored
	}
	n, err := sio.DecryptedSize(uint64(stored - headerSize))
	if err != nil {
		return stored
	}
	return int64(n)
}

// Open implements blob.Store. A whole read fetches the object once; a range
// fetches the header, then only the packages the range covers.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := blob.CheckRange(offset, length); err != nil {
		return nil, err
	}
	if offset == 0 && length == -1 {
		return s.openWhole(ctx, key)
	}
	head, err := s.readHead(ctx, key)
	if err != nil {
		return nil, err
	}
	if !head.sealed() {
		return s.inner.Open(ctx, key, offset, length)
	}
	if length == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	contentKey, err := s.openKey(ctx, key, head)
	if err != nil {
		return nil, err
	}
	first := offset / packagePayload
	cipherLength := int64(-1)
	if length > 0 {
		last := (offset + length - 1) / packagePayload
		cipherLength = (last - first + 1) * packageSize
	}
	rc, err := s.inner.Open(ctx, key, headerSize+first*packageSize, cipherLength)
	if err != nil {
		return nil, err
	}
	plain, err := decrypter(rc, contentKey, uint32(first))
	if err != nil {
		rc.Close()
		return nil, err
	}
	// Packages are opened whole: skip what precedes the range in the
	// first, and stop within the last without asking for the next, which
	// was not fetched.
	if _, err := io.CopyN(io.Discard, plain, offset-first*packagePayload); err != nil {
		rc.Close()
		if errors.Is(err, io.EOF) {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, openError(err)
	}
	var r io.Reader = plain
	if length > 0 {
		r = io.LimitReader(plain, length)
	}
	return readCloser{Reader: errorReader{r}, Closer: rc}, nil
}

func (s *Store) openWhole(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.inner.Open(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, headerSize)
	n, err := io.ReadFull(rc, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		rc.Close()
		return nil, err
	}
	head := header(buf[:n])
	if !head.sealed() {
		return readCloser{Reader: io.MultiReader(bytes.NewReader(buf[:n]), rc), Closer: rc}, nil
	}
	contentKey, err := s.openKey(ctx, key, head)
	if err != nil {
		rc.Close()
		return nil, err
	}
	plain, err := decrypter(rc, contentKey, 0)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return readCloser{Reader: errorReader{plain}, Closer: rc}, nil
}

func (s *Store) readHead(ctx context.Context, key string) (header, error) {
	rc, err := s.inner.Open(ctx, key, 0, headerSize)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return header(buf), nil
}

// openKey opens the content key in head, for the object at key.
func (s *Store) openKey(ctx context.Context, key string, head header) ([]byte, error) {
	prefix, err := tenantPrefix(key)
	if err != nil {
		return nil, err
	}
	scope, err := s.scope(ctx, key)
	if err != nil {
		return nil, err
	}
	sealedKey, err := head.sealedKey()
	if err != nil {
		return nil, err
	}
	contentKey, err := s.keys.Decrypt(ctx, scope, sealedKey, aad(prefix))
	if err != nil {
		return nil, err
	}
	if len(contentKey) != contentKeySize {
		return nil, keyring.ErrDecrypt
	}
	return contentKey, nil
}

// decrypter opens the packages r yields, the first numbered sequence. No
// package at all is empty content, or a range starting past the last
// package, which DARE would take for a truncated stream.
func decrypter(r io.Reader, contentKey []byte, sequence uint32) (io.Reader, error) {
	var first [1]byte
	n, err := io.ReadFull(r, first[:])
	if n == 0 {
		if errors.Is(err, io.EOF) {
			return bytes.NewReader(nil), nil
		}
		return nil, err
	}
	return sio.DecryptReader(io.MultiReader(bytes.NewReader(first[:]), r), sio.Config{Key: contentKey, SequenceNumber: sequence,
		MinVersion: sio.Version20, MaxVersion: sio.Version20, CipherSuites: []byte{sio.AES_256_GCM}})
}

// header is the start of an object as read: sealed objects begin with
// magic, the sealed key's length and the sealed key, padded to headerSize.
type header []byte

func encodeHeader(sealedKey []byte) ([]byte, error) {
	if len(sealedKey) > maxSealedKey {
		return nil, fmt.Errorf("sealedblob: sealed key of %d bytes does not fit the header", len(sealedKey))
	}
	h := make([]byte, headerSize)
	copy(h, magic)
	h[len(magic)] = byte(len(sealedKey))
	copy(h[len(magic)+1:], sealedKey)
	return h, nil
}

func (h header) sealed() bool { return len(h) == headerSize && bytes.HasPrefix(h, magic) }

func (h header) sealedKey() ([]byte, error) {
	n := int(h[len(magic)])
	if n == 0 || n > maxSealedKey {
		return nil, keyring.ErrDecrypt
	}
	return h[len(magic)+1 : len(magic)+1+n], nil
}

// tenantPrefix is the "tenants/<database>/" a key lives under.
func tenantPrefix(key string) (string, error) {
	const root = "tenants/"
	rest, ok := strings.CutPrefix(key, root)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrNoScope, key)
	}
	i := strings.IndexByte(rest, '/')
	if i <= 0 {
		return "", fmt.Errorf("%w: %q", ErrNoScope, key)
	}
	return key[:len(root)+i+1], nil
}

// TenantDatabase is the database name a key's tenant prefix names, for
// ScopeFuncs that look tenants up by it.
func TenantDatabase(keyOrPrefix string) (string, error) {
	p, err := tenantPrefix(keyOrPrefix)
	if err != nil {
		return "", err
	}
	return p[len("tenants/") : len(p)-1], nil
}

// openError reports content that fails authentication as the keyring's
// ErrDecrypt: damaged, truncated, reordered or not this object's.
func openError(err error) error {
	var sioErr sio.Error
	if errors.As(err, &sioErr) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %v", keyring.ErrDecrypt, err)
	}
	return err
}

type errorReader struct{ r io.Reader }

func (e errorReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = openError(err)
	}
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
