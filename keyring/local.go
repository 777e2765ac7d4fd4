package keyring

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"

	"github.com/tenantry/tenantry/sqldb"
)

// Local wraps data keys with a wrapping key per scope, kept in the control
// database wrapped by a master key the process holds: the embedded shape's
// key service, and production's when no Vault is configured. Destroying a
// scope deletes its wrapping key, so a copy of its data keys kept aside no
// longer unwraps. Whoever has both the master key and a backup of the
// control database can read everything: keep the key file (or
// TENANTRY_MASTER_KEY) apart from database backups.
type Local struct {
	master  []byte
	control sqldb.DB
}

// NewLocal returns a wrapper using master, which must be 32 bytes, keeping
// its wrapping keys in control.
func NewLocal(master []byte, control sqldb.DB) (*Local, error) {
	if len(master) != keySize {
		return nil, fmt.Errorf("keyring: the master key must be %d bytes, not %d", keySize, len(master))
	}
	return &Local{master: master, control: control}, nil
}

// Name implements Wrapper.
func (*Local) Name() string { return "local" }

// Wrap implements Wrapper.
func (l *Local) Wrap(ctx context.Context, scope string, version int, key []byte) ([]byte, error) {
	kek, err := l.wrappingKey(ctx, scope, true)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	return wrapWith(kek, key, AAD{"data key version", strconv.Itoa(version)}.bytes(scope))
}

// Unwrap implements Wrapper.
func (l *Local) Unwrap(ctx context.Context, scope string, version int, wrapped []byte) ([]byte, error) {
	kek, err := l.wrappingKey(ctx, scope, false)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	return unwrapWith(kek, wrapped, AAD{"data key version", strconv.Itoa(version)}.bytes(scope))
}

// Destroy implements Wrapper.
func (l *Local) Destroy(ctx context.Context, scope string) error {
	_, err := l.control.Exec(ctx, `DELETE FROM local_wrapping_keys WHERE scope = $1`, scope)
	return err
}

// wrappingKey returns scope's wrapping key, making it first if create.
func (l *Local) wrappingKey(ctx context.Context, scope string, create bool) ([]byte, error) {
	aad := AAD{"wrapping key"}.bytes(scope)
	for {
		var wrapped []byte
		err := l.control.QueryRow(ctx, `SELECT wrapped FROM local_wrapping_keys WHERE scope = $1`, scope).Scan(&wrapped)
		if err == nil {
			return unwrapWith(l.master, wrapped, aad)
		}
		if !errors.Is(err, sqldb.ErrNoRows) {
			return nil, err
		}
		if !create {
			return nil, ErrDecrypt
		}
		kek := make([]byte, keySize)
		if _, err := rand.Read(kek); err != nil {
			return nil, err
		}
		wrapped, err = wrapWith(l.master, kek, aad)
		clear(kek)
		if err != nil {
			return nil, err
		}
		// Another process making it first wins; read theirs.
		if _, err := l.control.Exec(ctx, `
			INSERT INTO local_wrapping_keys (scope, wrapped, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (scope) DO NOTHING`, scope, wrapped, sqldb.Now()); err != nil {
			return nil, err
		}
	}
}

// Fingerprint identifies the master key without revealing it, so that an
// operator can tell whether two processes use the same one.
func (l *Local) Fingerprint() string {
	sum := sha256.Sum256(append([]byte("tenantry master key fingerprint\x00"), l.master...))
	return fmt.Sprintf("%x", sum[:6])
}

func wrapWith(kek, key, aad []byte) ([]byte, error) {
	gcm, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, nonceSize, nonceSize+len(key)+gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, key, aad), nil
}

func unwrapWith(kek, wrapped, aad []byte) ([]byte, error) {
	gcm, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < nonceSize+gcm.Overhead() {
		return nil, ErrDecrypt
	}
	key, err := gcm.Open(nil, wrapped[:nonceSize], wrapped[nonceSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return key, nil
}
