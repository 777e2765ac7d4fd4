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
