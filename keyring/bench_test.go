package keyring_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/keyring"
)

// BenchmarkSecret encrypts and decrypts a small secret (an OAuth client
// secret's size) with a warm key cache, on each key service: what storing
// or reading one stored secret costs. The cold case, a first use of a
// tenant's key in a process, adds one unwrap (a Vault round trip with
// Vault) and is measured apart.
func BenchmarkSecret(b *testing.B) {
	secret := []byte("a client secret of forty characters....")
	aad := keyring.AAD{"table", "sso_configs", "column", "client_secret", "row", "1"}
	for name, maker := range map[string]wrapperMaker{"local": localWrappers, "vault": vaultWrappers} {
		b.Run(name, func(b *testing.B) {
			cfg := apptest.Config(b, config.Embedded)
			control := apptest.Engines(b, cfg).Control
			newWrapper := maker(b, control)
			wrapper := newWrapper(b)
			ring := keyring.New(control, wrapper, keyring.Options{})
			ctx := context.Background()
			scope := uuid.NewString()
			sealed, err := ring.Encrypt(ctx, scope, secret, aad)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("encrypt", func(b *testing.B) {
				for b.Loop() {
					if _, err := ring.Encrypt(ctx, scope, secret, aad); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("decrypt", func(b *testing.B) {
				for b.Loop() {
					if _, err := ring.Decrypt(ctx, scope, sealed, aad); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("decrypt-cold", func(b *testing.B) {
				for b.Loop() {
					cold := keyring.New(control, wrapper, keyring.Options{})
					if _, err := cold.Decrypt(ctx, scope, sealed, aad); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
