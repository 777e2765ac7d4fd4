package keyring

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/tenantry/tenantry/sqldb"
)

// current returns the newest key of scope, creating the first one.
func (k *Keyring) current(ctx context.Context, scope string) (int, []byte, error) {
	if v, ok := k.cache.newestVersion(scope); ok {
		if key, ok := k.cache.key(scope, v); ok {
			return v, key, nil
		}
	}
	v, key, err := k.loadNewest(ctx, scope)
	if errors.Is(err, sqldb.ErrNoRows) {
		k.creating.Lock()
		defer k.creating.Unlock()
		if _, err := k.insert(ctx, scope, 1); err != nil {
			return 0, nil, err
		}
		v, key, err = k.loadNewest(ctx, scope)
	}
	if err != nil {
		return 0, nil, err
	}
	return v, key, nil
}

func (k *Keyring) loadNewest(ctx context.Context, scope string) (int, []byte, error) {
	var version int
	var wrapped []byte
	err := k.control.QueryRow(ctx, `
		SELECT version, wrapped FROM data_keys WHERE scope = $1 ORDER BY version DESC `+sqldb.Limit(1), scope).
		Scan(&version, &wrapped)
	if err != nil {
		return 0, nil, err
	}
	key, err := k.unwrap(ctx, scope, version, wrapped)
	if err != nil {
		return 0, nil, err
	}
	k.cache.put(scope, version, key, true)
	return version, key, nil
}

// key returns version of scope's key.
func (k *Keyring) key(ctx context.Context, scope string, version int) ([]byte, error) {
	if key, ok := k.cache.key(scope, version); ok {
		return key, nil
	}
	var wrapped []byte
	err := k.control.QueryRow(ctx, `SELECT wrapped FROM data_keys WHERE scope = $1 AND version = $2`, scope, version).Scan(&wrapped)
	if errors.Is(err, sqldb.ErrNoRows) {
		// Destroyed, or never made: either way nothing can open it.
		return nil, ErrDecrypt
	} else if err != nil {
		return nil, err
	}
	key, err := k.unwrap(ctx, scope, version, wrapped)
	if err != nil {
		return nil, err
	}
	k.cache.put(scope, version, key, false)
	return key, nil
}

func (k *Keyring) unwrap(ctx context.Context, scope string, version int, wrapped []byte) ([]byte, error) {
	key, err := k.wrapper.Unwrap(ctx, scope, version, wrapped)
	if err != nil {
		return nil, fmt.Errorf("unwrap the data key of %s, version %d: %w", scope, version, err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("unwrap the data key of %s, version %d: %w", scope, version, ErrDecrypt)
	}
	return key, nil
}

// insert stores a new random key as version of scope. Another process
// inserting the same version first wins; inserted says whether this one did.
func (k *Keyring) insert(ctx context.Context, scope string, version int) (inserted bool, err error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return false, err
	}
	defer clear(key)
	wrapped, err := k.wrapper.Wrap(ctx, scope, version, key)
	if err != nil {
		return false, fmt.Errorf("wrap a data key for %s: %w", scope, err)
	}
	n, err := k.control.Exec(ctx, `
		INSERT INTO data_keys (scope, version, wrapped, wrapper, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (scope, version) DO NOTHING`, scope, version, wrapped, k.wrapper.Name(), sqldb.Now())
	return n == 1, err
}

// Rotate makes a new version of scope's key, which encrypts from now on in
// this process (and in others once their cache expires); older versions
// keep decrypting. It returns the new version.
func (k *Keyring) Rotate(ctx context.Context, scope string) (int, error) {
	if rw, ok := k.wrapper.(Rewrapper); ok {
		if err := rw.RotateWrapping(ctx, scope); err != nil {
			return 0, fmt.Errorf("rotate the wrapping key of %s: %w", scope, err)
		}
	}
	for {
		var newest int
		if err := k.control.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM data_keys WHERE scope = $1`, scope).Scan(&newest); err != nil {
			return 0, err
		}
		inserted, err := k.insert(ctx, scope, newest+1)
		if err != nil {
			return 0, err
		}
		if inserted {
			k.cache.forget(scope)
			return newest + 1, nil
		}
		// Another rotation took that version: the newest is newer still.
	}
}

// Rewrap moves up to batch stored data keys, those after the position
// after, to the newest version of their wrapping key, and returns the
// position to go on from (the zero Position when done). Re-wrapping a key twice is
// harmless, so a pass cut short is resumed from its last position, or
// started again. With a wrapper whose keys have no versions it does
// nothing.
func (k *Keyring) Rewrap(ctx context.Context, after Position, batch int) (next Position, done int, err error) {
	rw, ok := k.wrapper.(Rewrapper)
	if !ok {
		return Position{}, 0, nil
	}
	rows, err := k.control.Query(ctx, `
		SELECT scope, version, wrapped FROM data_keys
		WHERE wrapper = $1 AND (scope > $2 OR (scope = $2 AND version > $3))
		ORDER BY scope, version `+sqldb.Limit(batch), k.wrapper.Name(), after.Scope, after.Version)
	if err != nil {
		return after, 0, err
	}
	type row struct {
		pos     Position
		wrapped []byte
	}
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.pos.Scope, &r.pos.Version, &r.wrapped); err != nil {
			rows.Close()
			return after, 0, err
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return after, 0, err
	}
	for _, r := range todo {
		wrapped, err := rw.Rewrap(ctx, r.pos.Scope, r.wrapped)
		if err != nil {
			return after, done, err
		}
		if _, err := k.control.Exec(ctx, `UPDATE data_keys SET wrapped = $1 WHERE scope = $2 AND version = $3`,
			wrapped, r.pos.Scope, r.pos.Version); err != nil {
			return after, done, err
		}
		after, done = r.pos, done+1
	}
	if len(todo) < batch {
		return Position{}, done, nil
	}
	return after, done, nil
}

// Position is where a re-wrapping pass stands: the last key it moved.
type Position struct {
	Scope   string
	Version int
}

// Destroy destroys every key of scope: what they encrypted can no longer be
// decrypted by anyone, wherever it was copied. It is what purging a tenant
// ends with, and cannot be undone.
func (k *Keyring) Destroy(ctx context.Context, scope string) error {
	if err := k.wrapper.Destroy(ctx, scope); err != nil {
		return fmt.Errorf("destroy the keys of %s: %w", scope, err)
	}
	k.cache.forget(scope)
	if _, err := k.control.Exec(ctx, `DELETE FROM data_keys WHERE scope = $1`, scope); err != nil {
		return fmt.Errorf("destroy the keys of %s: %w", scope, err)
	}
	return nil
}

// ScopeStatus describes a scope's keys.
type ScopeStatus struct {
	Scope    string
	Versions int
	Newest   int
	// NewestAt is when the newest version was made.
	NewestAt time.Time
	Wrappers []string
}

// Status lists every scope with keys.
func (k *Keyring) Status(ctx context.Context) ([]ScopeStatus, error) {
	rows, err := k.control.Query(ctx, `
		SELECT scope, version, wrapper, created_at FROM data_keys ORDER BY scope, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ScopeStatus
	for rows.Next() {
		var scope, wrapper string
		var version int
		var createdAt time.Time
		if err := rows.Scan(&scope, &version, &wrapper, &createdAt); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Scope != scope {
			out = append(out, ScopeStatus{Scope: scope})
		}
		s := &out[len(out)-1]
		s.Versions++
		s.Newest, s.NewestAt = version, createdAt
		if len(s.Wrappers) == 0 || s.Wrappers[len(s.Wrappers)-1] != wrapper {
			s.Wrappers = append(s.Wrappers, wrapper)
		}
	}
	return out, rows.Err()
}
