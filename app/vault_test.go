package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/vault/vaulttest"
)

// With VAULT_ADDR the keyring wraps with Transit; Vault down makes
// readiness fail naming it and key operations report an unavailable key
// service (503, never 500), and the token is in no log line.
func TestVaultKeyService(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		server := vaulttest.Start(t)
		cfg := apptest.Config(t, shape)
		cfg.VaultAddr, cfg.VaultToken = server.Addr, server.RootToken
		env := apptest.Start(t, cfg)
		if env.App.Keys == nil || env.App.Keys.Wrapper().Name() != "vault" {
			t.Fatal("the keyring does not wrap with Vault")
		}
		var ready struct {
			Checks map[string]string `json:"checks"`
		}
		env.Get(t, "/ready", "").Expect(t, 200, "").Data(t, &ready)
		if ready.Checks["vault"] != "ok" {
			t.Fatalf("readiness does not check Vault: %+v", ready)
		}
		ctx := context.Background()
		scope := uuid.NewString()
		if _, err := env.App.Keys.Encrypt(ctx, scope, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}

		server.Stop()
		res := env.Get(t, "/ready", "").Expect(t, 503, "SERVICE_UNAVAILABLE")
		if !strings.Contains(string(res.Body), `"vault":"unavailable"`) {
			t.Fatalf("readiness does not name Vault: %s", res.Body)
		}
		if _, err := env.App.Keys.Encrypt(ctx, uuid.NewString(), []byte("x"), nil); !errors.Is(err, keyring.ErrUnavailable) {
			t.Fatalf("a new key with Vault down: %v", err)
		}
		if strings.Contains(env.Logs.String(), server.RootToken) {
			t.Fatal("the Vault token is in the log")
		}
	})
}
