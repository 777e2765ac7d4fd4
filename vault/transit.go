package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"

	"github.com/tenantry/tenantry/keyring"
)

// Transit wraps the keyring's data keys with Vault Transit, one Transit key
// per scope (tenant). One key per tenant, rather than one for all, is what
// makes crypto-shredding a single act Vault records: deleting a tenant's
// Transit key leaves every copy of its wrapped data keys, and so of its
// data, unreadable, whoever kept them. Data keys, not the data, go to
// Vault: a stored secret is decrypted with a cached data key, and Vault is
// asked once per key per cache period, not once per value.
type Transit struct {
	c     *Client
	mu    sync.Mutex
	known map[string]bool // Transit keys known to exist
}

// NewTransit returns the wrapper using c's Transit mount.
func NewTransit(c *Client) *Transit { return &Transit{c: c, known: map[string]bool{}} }

var _ keyring.Wrapper = (*Transit)(nil)

// Name implements keyring.Wrapper.
func (*Transit) Name() string { return "vault" }

// KeyName is the Transit key of scope.
func KeyName(scope string) string { return "tenantry-" + scope }

func (t *Transit) path(parts ...string) string {
	return t.c.cfg.TransitMount + "/" + strings.Join(parts, "/")
}

// Wrap implements keyring.Wrapper. The version is sealed with the key, so
// that a wrapped key relabelled with another version is refused.
func (t *Transit) Wrap(ctx context.Context, scope string, version int, key []byte) ([]byte, error) {
	if err := t.ensureKey(ctx, scope); err != nil {
		return nil, err
	}
	plain := append([]byte(versionPrefix(version)), key...)
	defer clear(plain)
	secret, err := t.c.do(ctx, func(ctx context.Context) (*api.Secret, error) {
		return t.c.api.Logical().WriteWithContext(ctx, t.path("encrypt", KeyName(scope)), map[string]any{
			"plaintext": base64.StdEncoding.EncodeToString(plain),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("vault transit encrypt: %w", err)
	}
	ct, _ := secret.Data["ciphertext"].(string)
	if ct == "" {
		return nil, errors.New("vault transit encrypt returned no ciphertext")
	}
	return []byte(ct), nil
}

// Unwrap implements keyring.Wrapper.
func (t *Transit) Unwrap(ctx context.Context, scope string, version int, wrapped []byte) ([]byte, error) {
	secret, err := t.c.do(ctx, func(ctx context.Context) (*api.Secret, error) {
		return t.c.api.Logical().WriteWithContext(ctx, t.path("decrypt", KeyName(scope)), map[string]any{
			"ciphertext": string(wrapped),
		})
	})
	if err != nil {
		if errors.Is(err, keyring.ErrUnavailable) {
			return nil, err
		}
		// The key deleted, or the ciphertext not its own.
		return nil, keyring.ErrDecrypt
	}
	encoded, _ := secret.Data["plaintext"].(string)
	plain, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, keyring.ErrDecrypt
	}
	prefix := []byte(versionPrefix(version))
	if !bytes.HasPrefix(plain, prefix) {
		clear(plain)
		return nil, keyring.ErrDecrypt
	}
	return plain[len(prefix):], nil
}

// Destroy implements keyring.Wrapper: the scope's Transit key is deleted,
// every version of it.
func (t *Transit) Destroy(ctx context.Context, scope string) error {
	name := KeyName(scope)
	if _, err := t.c.do(ctx, func(ctx context.Context) (*api.Secret, error) {
		return t.c.api.Logical().WriteWithContext(ctx, t.path("keys", name, "config"), map[string]any{"deletion_allowed": true})
	}); err != nil && !notFound(err) {
		return fmt.Errorf("vault transit: allow deleting %s: %w", name, err)
	}
	if _, err := t.c.do(ctx, func(ctx context.Context) (*api.Secret, error) {
		return t.c.api.Logical().DeleteWithContext(ctx, t.path("keys", name))
	}); err != nil && !notFound(err) {
		return fmt.Errorf("vault transit: delete %s: %w", name, err)
	}
	t.mu.Lock()
	delete(t.known, scope)
	t.mu.Unlock()
	return nil
}

// RotateWrapping makes a new version of the scope's Transit key; what it
// wraps from then on uses it, and Rewrap moves older wrapped keys to it.
func (t *Transit) RotateWrapping(ctx context.Context, scope string) error {
	if err := t.ensureKey(ctx, scope); err != nil {
		return err
	}
	_, err := t.c.do(ctx, func(ctx context.Context) (*api.Secret, error) {
		return t.c.api.Logical().WriteWithContext(ctx, t.path("keys", KeyName(scope), "rotate"), nil)
	})
	return err
}

// Rewrap re-encrypts a wrapped key with the newest version of its Transit
// key, without the data key leaving Vault.
func (t *Transit) Rewrap(ctx context.Context, scope string, wrapped []byte) ([]byte, error) {
	secret, err := t.c.do(ctx, func(ctx context.Context) (*api.Secret, error) {
		return t.c.api.Logical().WriteWithContext(ctx, t.path("rewrap", KeyName(scope)), map[string]any{"ciphertext": string(wrapped)})
	})
	if err != nil {
		return nil, fmt.Errorf("vault transit rewrap: %w", err)
	}
	ct, _ := secret.Data["ciphertext"].(string)
	if ct == "" {
		return nil, errors.New("vault transit rewrap returned no ciphertext")
	}
	return []byte(ct), nil
}

// ensureKey creates the scope's Transit key the first time; creating one
// that exists changes nothing.
func (t *Transit) ensureKey(ctx context.Context, scope string) error {
	t.mu.Lock()
	ok := t.known[scope]
	t.mu.Unlock()
	if ok {
		return nil
	}
	if _, err := t.c.do(ctx, func(ctx context.Context) (*api.Secret, error) {
		return t.c.api.Logical().WriteWithContext(ctx, t.path("keys", KeyName(scope)), map[string]any{"type": "aes256-gcm96"})
	}); err != nil {
		return fmt.Errorf("vault transit: create key for %s: %w", scope, err)
	}
	t.mu.Lock()
	t.known[scope] = true
	t.mu.Unlock()
	return nil
}

func versionPrefix(version int) string { return "tenantry data key v" + strconv.Itoa(version) + ":" }

func notFound(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}
