// Package keyring is the key service: it encrypts what tenantry stores that
// must not be readable by whoever reads the database or the blob store.
//
// Each scope (a tenant, or the platform) has its own series of data keys.
// A data key is stored only wrapped, by a Wrapper: the local master key in
// the embedded shape, Vault Transit in production. The newest version of a
// scope's key encrypts; older versions still decrypt until re-wrapping moves
// what they protect. Every ciphertext is bound to associated data naming
// what it belongs to, so bytes copied to another row, column or tenant do
// not decrypt. Destroying a scope's keys makes everything encrypted for it
// unreadable, wherever copies of it went.
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tenantry/tenantry/sqldb"
)

// Platform is the scope of what belongs to no tenant.
const Platform = "platform"

// Errors callers tell apart.
var (
	// ErrDecrypt means the ciphertext is damaged, was made for other
	// associated data, or its key is gone. Which one is deliberately
	// not said.
	ErrDecrypt = errors.New("keyring: cannot decrypt")
	// ErrUnavailable means the wrapping service cannot be reached.
	ErrUnavailable = errors.New("keyring: key service unavailable")
)

// Wrapper wraps data keys with a key it never hands out.
type Wrapper interface {
	// Name says which wrapper wrapped a stored key ("local", "vault").
	Name() string
	// Wrap encrypts key, a data key of scope at version.
	Wrap(ctx context.Context, scope string, version int, key []byte) ([]byte, error)
	// Unwrap decrypts what Wrap returned for the same scope and version.
	Unwrap(ctx context.Context, scope string, version int, wrapped []byte) ([]byte, error)
	// Destroy makes every key of scope impossible to unwrap, for good.
	Destroy(ctx context.Context, scope string) error
}

// Rewrapper is a Wrapper whose wrapping keys have versions of their own
// (Vault Transit): rotating one makes a new version, and Rewrap moves a
// wrapped key to the newest version without the key leaving the service.
type Rewrapper interface {
	Wrapper
	RotateWrapping(ctx context.Context, scope string) error
	Rewrap(ctx context.Context, scope string, wrapped []byte) ([]byte, error)
}

// Keyring encrypts and decrypts with per-scope data keys.
type Keyring struct {
	control sqldb.DB
	wrapper Wrapper
	cache   *cache
	// creating serializes the first key of a scope in this process;
	// the primary key serializes it between processes.
	creating sync.Mutex
}

// Options bound the cache of unwrapped data keys: keys leave memory after
// TTL, and no more than MaxKeys are held.
type Options struct {
	TTL     time.Duration
	MaxKeys int
}

// New returns a keyring storing its wrapped keys in control.
func New(control sqldb.DB, wrapper Wrapper, opts Options) *Keyring {
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 1024
	}
	return &Keyring{control: control, wrapper: wrapper, cache: newCache(opts.TTL, opts.MaxKeys)}
}

// Wrapper returns the wrapper the keyring uses.
func (k *Keyring) Wrapper() Wrapper { return k.wrapper }

// The sealed format: a format byte, the key version (uvarint), the GCM
// nonce, then the ciphertext with its tag.
const (
	formatV1  = 1
	nonceSize = 12
	keySize   = 32
)

// Encrypt seals plaintext with the newest key of scope, bound to aad.
func (k *Keyring) Encrypt(ctx context.Context, scope string, plaintext []byte, aad AAD) ([]byte, error) {
	version, key, err := k.current(ctx, scope)
	if err != nil {
		return nil, err
	}
	return seal(key, version, plaintext, aad.bytes(scope))
}

// Decrypt opens what Encrypt sealed for the same scope and aad.
func (k *Keyring) Decrypt(ctx context.Context, scope string, sealed []byte, aad AAD) ([]byte, error) {
	version, err := SealedVersion(sealed)
	if err != nil {
		return nil, err
	}
	key, err := k.key(ctx, scope, version)
	if err != nil {
		return nil, err
	}
	return open(key, sealed, aad.bytes(scope))
}

// SealedVersion returns the version of the key that sealed a ciphertext.
func SealedVersion(sealed []byte) (int, error) {
	if len(sealed) < 2 || sealed[0] != formatV1 {
		return 0, ErrDecrypt
	}
	v, n := binary.Uvarint(sealed[1:])
	if n <= 0 || v == 0 || v > 1<<31 {
		return 0, ErrDecrypt
	}
	return int(v), nil
}

func seal(key []byte, version int, plaintext, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := []byte{formatV1}
	out = binary.AppendUvarint(out, uint64(version))
	nonceAt := len(out)
	out = append(out, make([]byte, nonceSize)...)
	if _, err := rand.Read(out[nonceAt:]); err != nil {
		return nil, err
	}
	// The header is authenticated too: a ciphertext relabelled with
	// another version does not open.
	return gcm.Seal(out, out[nonceAt:], plaintext, append(aad, out[:nonceAt]...)), nil
}

func open(key, sealed, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	_, n := binary.Uvarint(sealed[1:])
	nonceAt := 1 + n
	if len(sealed) < nonceAt+nonceSize+gcm.Overhead() {
		return nil, ErrDecrypt
	}
	plain, err := gcm.Open(nil, sealed[nonceAt:nonceAt+nonceSize], sealed[nonceAt+nonceSize:], append(aad, sealed[:nonceAt]...))
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}
