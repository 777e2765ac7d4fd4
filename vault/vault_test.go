package vault_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/vault"
	"github.com/tenantry/tenantry/vault/vaulttest"
)

// logs collects a client's log lines, to check that no secret is in them.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func open(t *testing.T, cfg vault.Config) (*vault.Client, *logs) {
	t.Helper()
	l := &logs{}
	cfg.Logger = slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := vault.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, l
}

// roundTrip wraps and unwraps a key through Transit, failing t if it cannot.
func roundTrip(t *testing.T, w *vault.Transit, scope string) {
	t.Helper()
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	wrapped, err := w.Wrap(ctx, scope, 1, key)
	if err != nil {
		t.Fatalf("wrap: %v", err)
	}
	got, err := w.Unwrap(ctx, scope, 1, wrapped)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unwrap: %x, %v", got, err)
	}
}

// A token whose time runs out while the process runs is renewed before.
func TestTokenIsRenewedBeforeItExpires(t *testing.T) {
	t.Parallel()
	server := vaulttest.Start(t)
	token := server.Token(t, "3s")
	c, l := open(t, vault.Config{Addr: server.Addr, Token: token})
	w := vault.NewTransit(c)
	roundTrip(t, w, "a")
	time.Sleep(7 * time.Second)
	roundTrip(t, w, "a")
	if strings.Contains(l.String(), token) {
		t.Fatal("the token is in the log")
	}
}

// With AppRole, a token that reaches its maximum life is replaced by
// signing in again, and requests go on working.
func TestAppRoleSignsInAgainWhenTheTokenEnds(t *testing.T) {
	t.Parallel()
	server := vaulttest.Start(t)
	roleID, secretID := server.AppRole(t, "tenantry", "2s", "3s")
	c, l := open(t, vault.Config{Addr: server.Addr, RoleID: roleID, SecretID: secretID})
	w := vault.NewTransit(c)
	roundTrip(t, w, "b")
	time.Sleep(7 * time.Second)
	roundTrip(t, w, "b")
	out := l.String()
	if strings.Count(out, "signed in to Vault with AppRole") < 2 {
		t.Fatalf("the client did not sign in again:\n%s", out)
	}
	if strings.Contains(out, secretID) {
		t.Fatal("the secret id is in the log")
	}
}

// Vault down is an unavailable key service, never a decryption failure:
// requests needing a key can answer 503 and readiness names Vault.
func TestVaultDownIsUnavailable(t *testing.T) {
	t.Parallel()
	server := vaulttest.Start(t)
	c, _ := open(t, vault.Config{Addr: server.Addr, Token: server.RootToken, Timeout: 2 * time.Second})
	w := vault.NewTransit(c)
	wrapped, err := w.Wrap(context.Background(), "c", 1, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	server.Stop()
	if err := c.Ping(context.Background()); !errors.Is(err, keyring.ErrUnavailable) {
		t.Fatalf("ping with Vault down: %v", err)
	}
	if _, err := w.Unwrap(context.Background(), "c", 1, wrapped); !errors.Is(err, keyring.ErrUnavailable) {
		t.Fatalf("unwrap with Vault down: %v", err)
	}
	if _, err := w.Wrap(context.Background(), "d", 1, bytes.Repeat([]byte{1}, 32)); !errors.Is(err, keyring.ErrUnavailable) {
		t.Fatalf("wrap with Vault down: %v", err)
	}
}

// A wrapped key opens only for its scope and version, and no more once
// its Transit key is destroyed; rotation and re-wrapping keep it readable.
func TestTransitBindsScopeAndVersion(t *testing.T) {
	t.Parallel()
	server := vaulttest.Start(t)
	c, _ := open(t, vault.Config{Addr: server.Addr, Token: server.RootToken})
	w := vault.NewTransit(c)
	ctx := context.Background()
	key := bytes.Repeat([]byte{9}, 32)
	wrapped, err := w.Wrap(ctx, "e", 1, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Unwrap(ctx, "e", 2, wrapped); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("another version: %v", err)
	}
	if _, err := w.Wrap(ctx, "f", 1, key); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Unwrap(ctx, "f", 1, wrapped); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("another scope: %v", err)
	}
	if err := w.RotateWrapping(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	rewrapped, err := w.Rewrap(ctx, "e", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(rewrapped), "vault:v2:") {
		t.Fatalf("re-wrapped with %q, want the key's version 2", strings.SplitN(string(rewrapped), ":", 3)[:2])
	}
	for _, ct := range [][]byte{wrapped, rewrapped} {
		if got, err := w.Unwrap(ctx, "e", 1, ct); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("after rotation: %v", err)
		}
	}
	if err := w.Destroy(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Unwrap(ctx, "e", 1, rewrapped); !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("after destroy: %v", err)
	}
	if err := w.Destroy(ctx, "e"); err != nil {
		t.Fatalf("destroying again: %v", err)
	}
}

// Configuration secrets come from KV v2 where the environment is silent.
func TestSecretsFromKV(t *testing.T) {
	t.Parallel()
	server := vaulttest.Start(t)
	root := server.Client(t)
	if _, err := root.KVv2("secret").Put(context.Background(), "tenantry", map[string]any{
		"JWT_SECRET_KEY": "from-vault-0123456789abcdef0123456789", "REDIS_URL": "redis://vault",
	}); err != nil {
		t.Fatal(err)
	}
	c, _ := open(t, vault.Config{Addr: server.Addr, Token: server.RootToken})
	secrets, err := c.ReadSecrets(context.Background(), "secret/tenantry")
	if err != nil {
		t.Fatal(err)
	}
	merged, sources := vault.Overlay(map[string]string{"REDIS_URL": "redis://env"}, secrets,
		[]string{"JWT_SECRET_KEY", "REDIS_URL", "DATABASE_URL"})
	if merged["JWT_SECRET_KEY"] != secrets["JWT_SECRET_KEY"] || sources["JWT_SECRET_KEY"] != vault.FromVault {
		t.Fatalf("JWT_SECRET_KEY: from %s", sources["JWT_SECRET_KEY"])
	}
	if merged["REDIS_URL"] != "redis://env" || sources["REDIS_URL"] != vault.FromEnvironment {
		t.Fatalf("REDIS_URL: the environment must win, got it from %s", sources["REDIS_URL"])
	}
	if sources["DATABASE_URL"] != vault.Unset {
		t.Fatalf("DATABASE_URL: %s", sources["DATABASE_URL"])
	}
	if _, err := c.ReadSecrets(context.Background(), "secret/missing"); err == nil || !strings.Contains(err.Error(), "no secret") {
		t.Fatalf("a missing secret: %v", err)
	}
	if _, err := c.ReadSecrets(context.Background(), "secret"); err == nil {
		t.Fatal("a path without MOUNT/PATH was accepted")
	}
}
