package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/keyring"
)

func (c *cli) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Inspect and rotate the keys that encrypt stored secrets",
		Long: "Each tenant, and the platform, has its own series of data keys, stored wrapped by the master key " +
			"(TENANTRY_MASTER_KEY, or in the embedded shape the key generated in the data directory). The newest " +
			"version encrypts; older versions keep decrypting.",
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "List every key scope with its versions and what wraps them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withKeys(cmd.Context(), func(a *app.App, keys *keyring.Keyring) error {
				list, err := keys.Status(cmd.Context())
				if err != nil {
					return err
				}
				if l, ok := keys.Wrapper().(*keyring.Local); ok {
					fmt.Fprintf(c.stdout, "wrapped by the local master key %s\n", l.Fingerprint())
				}
				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SCOPE\tVERSIONS\tNEWEST\tWRAPPED BY")
				for _, s := range list {
					fmt.Fprintf(w, "%s\t%d\t%d\t%v\n", s.Scope, s.Versions, s.Newest, s.Wrappers)
				}
				if len(list) == 0 {
					fmt.Fprintln(w, "(no key made yet: keys are made when something is first encrypted)")
				}
				if err := w.Flush(); err != nil {
					return err
				}
				old, err := keys.OldVersionsInUse(cmd.Context(), a.SealedValues())
				if err != nil {
					return err
				}
				if len(old) == 0 {
					fmt.Fprintln(c.stdout, "every stored secret is sealed with its scope's newest key version")
					return nil
				}
				fmt.Fprintln(c.stdout, "stored secrets still sealed with an older version (moved by `tenantry keys rotate` or the key job):")
				w = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "WHERE\tSCOPE\tVERSION\tVALUES")
				for _, u := range old {
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", u.Values, u.Scope, u.Version, u.Count)
				}
				return w.Flush()
			})
		},
	}
	var tenantID string
	rotate := &cobra.Command{
		Use:   "rotate [--tenant ID]",
		Short: "Make a new key version for one tenant, or for every scope that has keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withKeys(cmd.Context(), func(a *app.App, keys *keyring.Keyring) error {
				scopes := []string{tenantID}
				if tenantID == "" {
					list, err := keys.Status(cmd.Context())
					if err != nil {
						return err
					}
					scopes = scopes[:0]
					for _, s := range list {
						scopes = append(scopes, s.Scope)
					}
				} else if _, err := uuid.Parse(tenantID); err != nil {
					return fmt.Errorf("--tenant: %q is not a tenant id", tenantID)
				} else if n, err := countTenant(cmd.Context(), a, tenantID); err != nil {
					return err
				} else if n == 0 {
					return fmt.Errorf("no tenant %s", tenantID)
				}
				for _, scope := range scopes {
					v, err := keys.Rotate(cmd.Context(), scope)
					if err != nil {
						return err
					}
					if err := auditCommand(cmd.Context(), a, "keys.rotate", "key_scope", scope, map[string]any{"version": v}); err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "%s: version %d encrypts from now on\n", scope, v)
				}
				rep, err := keys.Maintain(cmd.Context(), 0, a.SealedValues())
				if rep.Rewrapped > 0 {
					fmt.Fprintf(c.stdout, "re-wrapped %d stored keys with the newest wrapping key\n", rep.Rewrapped)
				}
				if rep.Resealed > 0 {
					fmt.Fprintf(c.stdout, "moved %d stored secrets to the newest key version\n", rep.Resealed)
				}
				return err
			})
		},
	}
	rotate.Flags().StringVar(&tenantID, "tenant", "", "rotate only this tenant's key")
	cmd.AddCommand(status, rotate)
	return cmd
}

// withKeys runs fn with the application and its key service.
func (c *cli) withKeys(ctx context.Context, fn func(*app.App, *keyring.Keyring) error) error {
	return c.withApp(ctx, func(a *app.App) error {
		if a.Keys == nil {
			return errors.New("no key service: set TENANTRY_MASTER_KEY (32 bytes, base64 or hex) in the production shape")
		}
		return fn(a, a.Keys)
	})
}

func countTenant(ctx context.Context, a *app.App, tenantID string) (int, error) {
	var n int
	err := a.Engines.Control.QueryRow(ctx, `SELECT count(*) FROM tenants WHERE id = $1`, tenantID).Scan(&n)
	return n, err
}
