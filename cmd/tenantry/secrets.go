package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/vault"
)

// vaultReadTimeout bounds reading the configuration secrets at start.
const vaultReadTimeout = 15 * time.Second

// environWithSecrets returns the environment the configuration is read
// from: with VAULT_SECRETS_PATH set, the configuration secrets the
// environment leaves unset are filled from that KV v2 secret, and sources
// says where each came from. Values never leave this function but in the
// map returned.
func (c *cli) environWithSecrets() (map[string]string, map[string]vault.Source, error) {
	environ := c.environ
	if environ == nil {
		environ = env.ToMap(os.Environ())
	}
	path := environ["VAULT_SECRETS_PATH"]
	if path == "" {
		return environ, nil, nil
	}
	// The Vault settings themselves come from the environment only.
	cfg, err := config.Parse(environ)
	if err != nil {
		return nil, nil, err
	}
	if cfg.VaultAddr == "" {
		return nil, nil, fmt.Errorf("VAULT_SECRETS_PATH needs VAULT_ADDR")
	}
	ctx, cancel := context.WithTimeout(context.Background(), vaultReadTimeout)
	defer cancel()
	client, err := vault.Open(ctx, vault.Config{
		Addr: cfg.VaultAddr, Namespace: cfg.VaultNamespace, Token: cfg.VaultToken,
		RoleID: cfg.VaultRoleID, SecretID: cfg.VaultSecretID,
	})
	if err != nil {
		return nil, nil, err
	}
	defer client.Close()
	secrets, err := client.ReadSecrets(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	merged, sources := vault.Overlay(environ, secrets, config.VaultSecretNames)
	return merged, sources, nil
}

// logSecretSources says at start where each configuration secret came
// from, never its value.
func logSecretSources(logger *slog.Logger, sources map[string]vault.Source) {
	for _, name := range config.VaultSecretNames {
		if s, ok := sources[name]; ok && s != vault.Unset {
			logger.Info("configuration secret", "name", name, "source", string(s))
		}
	}
}

func (c *cli) secretsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Show where the configuration secrets come from",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "List each configuration secret and whether it comes from the environment, Vault, or nowhere",
		Long: "With VAULT_SECRETS_PATH set, secrets the environment leaves unset are read from that KV v2 " +
			"secret; the environment always wins. Values are never shown.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			environ, sources, err := c.environWithSecrets()
			if err != nil {
				return err
			}
			if sources == nil {
				_, sources = vault.Overlay(environ, nil, config.VaultSecretNames)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SECRET\tSOURCE")
			for _, name := range config.VaultSecretNames {
				fmt.Fprintf(w, "%s\t%s\n", name, sources[name])
			}
			if err := w.Flush(); err != nil {
				return err
			}
			_, err = config.Load(environ)
			return err
		},
	})
	return cmd
}
