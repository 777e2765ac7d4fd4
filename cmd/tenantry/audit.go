package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/tenant"
)

func (c *cli) auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Inspect the audit trail"}

	var tenantID string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check that the audit trail's hash chains are intact",
		Long: "Recomputes the hash chain of the platform's audit trail and of every tenant's (or one tenant's, " +
			"with --tenant) and prints one line per chain, naming the first entry found edited, deleted, inserted " +
			"or out of place. The exit status is non-zero if any chain is broken.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadAdminConfig(false)
			if err != nil {
				return err
			}
			jwtKey, err := app.JWTKey(cfg)
			if err != nil {
				return err
			}
			return c.withEnginesOf(cmd.Context(), cfg, func(e *app.Engines) error {
				return verifyAudit(cmd.Context(), c.stdout, e, app.AuditKey(jwtKey), tenantID)
			})
		},
	}
	verify.Flags().StringVar(&tenantID, "tenant", "", "verify only the chain of the tenant with this id")
	cmd.AddCommand(verify)
	return cmd
}

func verifyAudit(ctx context.Context, w io.Writer, e *app.Engines, key []byte, tenantID string) error {
	if err := requireMigratedControl(ctx, e); err != nil {
		return err
	}

	log := audit.NewLog(e.Control, key, nil)
	var chains []string
	if tenantID != "" {
		if _, err := uuid.Parse(tenantID); err != nil {
			return fmt.Errorf("--tenant %q is not a tenant id", tenantID)
		}
		t, err := tenant.FindProvisioned(ctx, e.Control, strings.ToLower(tenantID))
		if err != nil {
			return fmt.Errorf("tenant %s: %w", tenantID, err)
		}
		chains = []string{t.ID}
	} else {
		var err error
		if chains, err = log.Chains(ctx); err != nil {
			return err
		}
		if !slices.Contains(chains, audit.PlatformChain) {
			// Reported even before its first entry, so that the
			// answer always covers the platform.
			chains = append([]string{audit.PlatformChain}, chains...)
		}
	}

	broken := 0
	for _, chain := range chains {
		v, err := log.Verify(ctx, chain)
		if err != nil {
			return err
		}
		label := chain
		if chain != audit.PlatformChain {
			label = "tenant " + chain
		}
		if b := v.FirstBroken; b != nil {
			broken++
			at := fmt.Sprintf("seq %d", b.Seq)
			if b.ID != "" {
				at += " (" + b.ID + ")"
			}
			fmt.Fprintf(w, "%s: BROKEN at %s: %s\n", label, at, b.Reason)
			continue
		}
		fmt.Fprintf(w, "%s: intact, %d %s\n", label, v.Entries, plural(v.Entries, "entry", "entries"))
	}
	if broken > 0 {
		return fmt.Errorf("%d of %d audit %s broken", broken, len(chains), plural(int64(len(chains)), "chain is", "chains are"))
	}
	return nil
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
