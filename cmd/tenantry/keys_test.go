package main

import (
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/vault/vaulttest"
)

// encryptWith starts the application of env, as a process would, and
// encrypts plaintext for scope, or decrypts sealed when it is not nil.
func encryptWith(t *testing.T, env map[string]string, scope string, plaintext, sealed []byte) []byte {
	t.Helper()
	cfg, err := config.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if sealed != nil {
		out, err := a.Keys.Decrypt(context.Background(), scope, sealed, keyring.AAD{"test"})
		if err != nil {
			t.Fatalf("decrypt in another process: %v", err)
		}
		return out
	}
	out, err := a.Keys.Encrypt(context.Background(), scope, plaintext, keyring.AAD{"test"})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The embedded shape makes its master key once, private to its owner, and
// what one process encrypts the next one decrypts; rotation makes a new
// version that status lists.
func TestKeysOnTheEmbeddedShape(t *testing.T) {
	t.Parallel()
	env := apptest.Environ(t, config.Embedded)
	if code, out := runCLI(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", out)
	}
	if code, out := runCLI(t, env, "keys", "status"); code != 0 || !strings.Contains(out, "no key made yet") {
		t.Fatalf("keys status before any key: %d\n%s", code, out)
	}
	sealed := encryptWith(t, env, keyring.Platform, []byte("kept secret"), nil)
	info, err := os.Stat(filepath.Join(env["TENANTRY_DATA_DIR"], "secrets", "master_key"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("master key file mode %v, want 0600", info.Mode().Perm())
	}
	if got := encryptWith(t, env, keyring.Platform, nil, sealed); string(got) != "kept secret" {
		t.Fatalf("decrypted %q after a restart", got)
	}
	if code, out := runCLI(t, env, "keys", "rotate"); code != 0 || !strings.Contains(out, "platform: version 2") {
		t.Fatalf("keys rotate: %d\n%s", code, out)
	}
	code, out := runCLI(t, env, "keys", "status")
	if code != 0 || !strings.Contains(out, "platform") || !strings.Contains(out, "local master key") {
		t.Fatalf("keys status: %d\n%s", code, out)
	}
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "platform 2 2 [local]") {
		t.Fatalf("keys status does not show two versions of the platform key:\n%s", out)
	}
	if got := encryptWith(t, env, keyring.Platform, nil, sealed); string(got) != "kept secret" {
		t.Fatalf("decrypted %q after the rotation", got)
	}
	if code, out := runCLI(t, env, "keys", "rotate", "--tenant", uuid.NewString()); code == 0 || !strings.Contains(out, "no tenant") {
		t.Fatalf("rotating an unknown tenant's key: %d\n%s", code, out)
	}
	if code, out := runCLI(t, env, "keys", "rotate", "--tenant", "nope"); code == 0 || !strings.Contains(out, "not a tenant id") {
		t.Fatalf("rotating with a malformed id: %d\n%s", code, out)
	}
}

// In production processes on several hosts must share the master key: none
// is generated, and a malformed one stops the process naming the variable.
func TestKeysInProductionNeedTheMasterKey(t *testing.T) {
	t.Parallel()
	env := apptest.Environ(t, config.Production)
	delete(env, "TENANTRY_MASTER_KEY")
	if code, out := runCLI(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", out)
	}
	if code, out := runCLI(t, env, "keys", "status"); code == 0 || !strings.Contains(out, "TENANTRY_MASTER_KEY") {
		t.Fatalf("keys status without a master key: %d\n%s", code, out)
	}
	env["TENANTRY_MASTER_KEY"] = "too short"
	if code, out := runCLI(t, env, "keys", "status"); code == 0 || !strings.Contains(out, "TENANTRY_MASTER_KEY") {
		t.Fatalf("keys status with a malformed master key: %d\n%s", code, out)
	}
	master := make([]byte, 32)
	for i := range master {
		master[i] = byte(i)
	}
	env["TENANTRY_MASTER_KEY"] = base64.StdEncoding.EncodeToString(master)
	scope := uuid.NewString()
	sealed := encryptWith(t, env, scope, []byte("shared"), nil)
	if got := encryptWith(t, env, scope, nil, sealed); string(got) != "shared" {
		t.Fatalf("another process decrypted %q", got)
	}
	code, out := runCLI(t, env, "keys", "status")
	if code != 0 || !strings.Contains(out, scope) {
		t.Fatalf("keys status: %d\n%s", code, out)
	}
	if strings.Contains(out, env["TENANTRY_MASTER_KEY"]) {
		t.Fatal("keys status prints the master key")
	}
}

// Configuration secrets the environment leaves unset come from Vault's KV,
// the environment winning, and nothing prints their values.
func TestSecretsFromVault(t *testing.T) {
	t.Parallel()
	server := vaulttest.Start(t)
	jwtKey := "jwt-key-from-vault-" + strings.Repeat("k", 32)
	redisURL := "redis://:vault-password@127.0.0.1:1/0"
	if _, err := server.Client(t).KVv2("secret").Put(context.Background(), "tenantry", map[string]any{
		"JWT_SECRET_KEY": jwtKey, "REDIS_URL": redisURL, "S3_SECRET_ACCESS_KEY": "from vault",
	}); err != nil {
		t.Fatal(err)
	}
	env := apptest.Environ(t, config.Embedded)
	env["VAULT_ADDR"], env["VAULT_TOKEN"], env["VAULT_SECRETS_PATH"] = server.Addr, server.RootToken, "secret/tenantry"
	for _, name := range []string{"S3_SECRET_ACCESS_KEY", "REDIS_URL", "JWT_SECRET_KEY"} {
		delete(env, name)
	}
	code, out := runCLI(t, env, "secrets", "check")
	if code != 0 {
		t.Fatalf("secrets check: %d\n%s", code, out)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			fields[f[0]] = f[1]
		}
	}
	if fields["JWT_SECRET_KEY"] != "vault" || fields["REDIS_URL"] != "vault" || fields["DATABASE_URL"] != "unset" {
		t.Fatalf("sources:\n%s", out)
	}
	for _, secret := range []string{jwtKey, redisURL, "vault-password", server.RootToken} {
		if strings.Contains(out, secret) {
			t.Fatalf("secrets check printed a secret:\n%s", out)
		}
	}
	env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
	if _, out := runCLI(t, env, "secrets", "check"); !strings.Contains(strings.Join(strings.Fields(out), " "), "REDIS_URL environment") {
		t.Fatalf("the environment does not win:\n%s", out)
	}
	env["VAULT_SECRETS_PATH"] = "secret/missing"
	if code, out := runCLI(t, env, "secrets", "check"); code == 0 || !strings.Contains(out, "VAULT_SECRETS_PATH") {
		t.Fatalf("a missing secret: %d\n%s", code, out)
	}
}
